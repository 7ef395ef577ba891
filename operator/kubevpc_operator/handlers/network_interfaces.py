"""NetworkInterface handlers: program the interface on its node and routes to it everywhere else.

Handlers stay thin: validate the object, ask the fabric to sync the nodes it touches (its own
and every node that serves its VNI or a peered VNI; syncs coalesce per node), then write status
from the nodes' reports. Deletion syncs the other nodes first (routes, neighbor NATs and load
balancer targets that point at it go), then its own node (children first, the interface last).
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
    raise_unless_removed,
    reconciles,
)
from kubevpc_operator.models import NetworkInterface
from kubevpc_operator.planning.report import interface_status, nat_of_interface

PLURAL = "networkinterfaces"


@kopf.index(GROUP, VERSION, PLURAL)
def kubevpc_interfaces(body: kopf.Body, **_: Any) -> dict[str, Indexed]:
    return index_entry("NetworkInterface", body)


@reconciles(PLURAL, "NetworkInterface", interval=config.active().status_interval)
async def reconcile_network_interface(context: Reconciling, nic: NetworkInterface) -> Status:
    fabric, settings = context.fabric, context.settings
    topology = fabric.topology()
    resolved = topology.interfaces.get(nic.uid)
    nodes = fabric.related_nodes(nic.uid, nic.node_name, [resolved.vni] if resolved else [])
    max_age = settings.status_interval if context.trigger is Trigger.TIMER else None
    await fabric.sync(nodes, scope={nic.uid}, max_age=max_age)
    topology = fabric.topology()
    nat, exhausted = nat_of_interface(
        topology, fabric.nat_allocations(topology), nic.meta.name, nic.meta.namespace
    )
    device = fabric.device_of(nic.node_name, nic.uid)
    return interface_status(
        nic, topology, fabric.reports(), nat=nat, nat_exhausted=exhausted, device_name=device
    )


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete_network_interface(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    fabric, settings = from_memo(memo)
    uid = str(body.get("metadata", {}).get("uid", ""))
    home = str(body.get("spec", {}).get("nodeName", ""))
    vni = (body.get("status") or {}).get("vni")
    nodes = fabric.related_nodes(uid, home, [vni] if isinstance(vni, int) else [])
    reports = await fabric.sync(nodes - {home})
    reports.update(await fabric.sync(nodes & {home}))
    raise_unless_removed(uid, reports, settings.retry_delay)
