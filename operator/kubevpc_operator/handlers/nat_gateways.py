"""NATGateway handlers: port slices for the selected interfaces, recorded in status.

The slices themselves are programmed by the node syncs (CreateNat on the interface's node,
CreateNeighborNat on the other nodes of the VNI); this handler triggers those syncs and records
the allocation, which a restarted operator reads back so no slice moves.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubevpc_operator import GROUP, VERSION, config
from kubevpc_operator.handlers.support import (
    Indexed,
    Reconciling,
    Status,
    Trigger,
    from_memo,
    index_entry,
    reconciles,
)
from kubevpc_operator.models import NATGateway
from kubevpc_operator.planning.report import nat_gateway_status

PLURAL = "natgateways"


@kopf.index(GROUP, VERSION, PLURAL)
def kubevpc_nat_gateways(body: kopf.Body, **_: Any) -> dict[str, Indexed]:
    return index_entry("NATGateway", body)


@reconciles(PLURAL, "NATGateway", interval=config.active().status_interval)
async def reconcile_nat_gateway(context: Reconciling, gateway: NATGateway) -> Status:
    fabric = context.fabric
    topology = fabric.topology()
    membership = topology.nat_gateways.get(gateway.uid)
    if context.trigger is Trigger.CHANGE and membership is not None:
        await fabric.sync(topology.nodes_serving([membership.vni]))
        topology = fabric.topology()
    allocation = fabric.nat_allocations(topology).get(gateway.uid)
    return nat_gateway_status(gateway.uid, topology, allocation, fabric.reports())


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete_nat_gateway(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    fabric, settings = from_memo(memo)
    vpc_name = str((body.get("spec") or {}).get("vpcRef", {}).get("name", ""))
    namespace = str(body.get("metadata", {}).get("namespace", "default"))
    topology = fabric.topology()
    vni = next(
        (v for key, v in topology.vnis.items() if key.name == vpc_name and key.namespace == namespace), None
    )
    nodes = topology.nodes_serving([vni]) if vni is not None else fabric.pool.nodes()
    reports = await fabric.sync(nodes)
    problems = [f"{node}: {report.error}" for node, report in sorted(reports.items()) if report.error]
    if problems:
        raise kopf.TemporaryError("Removing NAT state: " + "; ".join(problems), delay=settings.retry_delay)
