"""VPC handlers: VNI allocation, peerings, agent polling, and deletion once nothing uses the VPC.

The VPC timer also drives the agents' CheckInitialized poll (rate-limited per node): a timer stops
while kopf peering pauses this replica, so a standby never initializes or replays an agent.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubevpc_operator import GROUP, VERSION, conditions, config
from kubevpc_operator.handlers.support import (
    Indexed,
    Reconciling,
    Status,
    Trigger,
    from_memo,
    index_entry,
    reconciles,
    write_status,
)
from kubevpc_operator.models import VPC
from kubevpc_operator.planning.report import vpc_status

PLURAL = "vpcs"


@kopf.index(GROUP, VERSION, PLURAL)
def kubevpc_vpcs(body: kopf.Body, **_: Any) -> dict[str, Indexed]:
    return index_entry("VPC", body)


async def poll_agents(context: Reconciling) -> None:
    """The agents' CheckInitialized poll rides on the VPC timer (which peering pauses on a standby)."""
    if context.trigger is Trigger.TIMER:
        await context.fabric.poll()


@reconciles(PLURAL, "VPC", interval=config.active().poll_interval, before=poll_agents)
async def reconcile_vpc(context: Reconciling, vpc: VPC) -> Status:
    fabric = context.fabric
    vni = vpc.effective_vni
    if vni is None:
        # Case: no VNI yet. Allocate one that no other VPC holds; the status records it for good.
        view = fabric.view()
        taken = {v.effective_vni for v in view.vpcs if v.meta.uid != vpc.meta.uid and v.effective_vni}
        vni = fabric.allocate_vni(vpc.meta.uid, taken)
        context.logger.info("Allocated VNI %d to VPC %s", vni, vpc.key)
    elif vpc.status_vni == vni:
        fabric.release_vni_reservation(vpc.meta.uid)
    if context.trigger is Trigger.CHANGE:
        # Peerings changed routes in this VPC's and its peers' VNIs: bring every node up to date.
        await fabric.sync(fabric.pool.nodes())
    topology = fabric.topology()
    conflict = vpc.meta.uid in topology.problems
    fields, outcome = vpc_status(vpc, topology, None if conflict else vni)
    if conflict and vpc.status_vni is not None:
        fields["vni"] = vpc.status_vni  # a recorded VNI is never taken back
    return fields, outcome


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete_vpc(*, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Wait until no NetworkInterface, LoadBalancer or NATGateway uses the VPC any more."""
    fabric, settings = from_memo(memo)
    meta = body.get("metadata", {})
    namespace, name = meta.get("namespace", "default"), meta.get("name", "")
    view = fabric.view()
    users = [
        f"{kind} {obj.meta.name}"
        for kind, objs in (
            ("NetworkInterface", view.interfaces),
            ("LoadBalancer", view.load_balancers),
            ("NATGateway", view.nat_gateways),
        )
        for obj in objs
        if obj.vpc.namespace == namespace and obj.vpc.name == name
    ]
    if users:
        listed = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        message = f"VPC is still used by {listed}"
        write_status(patch, body, {}, conditions.pending("InUse", message))
        raise kopf.TemporaryError(message, delay=max(settings.retry_delay, 5.0))
    fabric.release_vni_reservation(str(meta.get("uid", "")))
