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
    Trigger,
    from_memo,
    index_entry,
    parse,
    reconciles,
    settle,
    write_status,
)
from kubevpc_operator.models import NATGateway
from kubevpc_operator.planning.report import nat_gateway_status

PLURAL = "natgateways"


@kopf.index(GROUP, VERSION, PLURAL)
def kubevpc_nat_gateways(body: kopf.Body, **_: Any) -> dict[str, Indexed]:
    return index_entry("NATGateway", body)


@reconciles(PLURAL, interval=config.active().status_interval)
async def reconcile_nat_gateway(
    *,
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: Any,
    param: Trigger = Trigger.CHANGE,
    retry: int = 0,
    **_: Any,
) -> None:
    fabric, settings = from_memo(memo)
    gateway: NATGateway | None = parse("NATGateway", body, patch, param, logger)
    if gateway is None:
        return
    topology = fabric.topology()
    membership = topology.nat_gateways.get(gateway.uid)
    if param is Trigger.CHANGE and membership is not None:
        await fabric.sync(topology.nodes_serving([membership.vni]))
        topology = fabric.topology()
    allocation = fabric.nat_allocations(topology).get(gateway.uid)
    fields, outcome = nat_gateway_status(gateway.uid, topology, allocation, fabric.reports())
    write_status(patch, body, fields, outcome)
    settle(outcome, param, settings.retry_delay, retry)


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
