"""LoadBalancer handlers: instances on the selected nodes, targets kept in step with the interfaces.

Target changes need no handler of their own: an interface that starts or stops matching the
target selector changes the topology, and every sync of an affected node plans against it.
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
from kubevpc_operator.models import LoadBalancer
from kubevpc_operator.planning.report import load_balancer_status

PLURAL = "loadbalancers"


@kopf.index(GROUP, VERSION, PLURAL)
def kubevpc_load_balancers(body: kopf.Body, **_: Any) -> dict[str, Indexed]:
    return index_entry("LoadBalancer", body)


@reconciles(PLURAL, "LoadBalancer", interval=config.active().status_interval)
async def reconcile_load_balancer(context: Reconciling, lb: LoadBalancer) -> Status:
    fabric, settings = context.fabric, context.settings
    topology = fabric.topology()
    resolved = topology.load_balancers.get(lb.uid)
    nodes = fabric.related_nodes(lb.uid, None, [resolved.vni] if resolved else [])
    max_age = settings.status_interval if context.trigger is Trigger.TIMER else None
    await fabric.sync(nodes, max_age=max_age)
    return load_balancer_status(lb.uid, fabric.topology(), fabric.reports())


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def delete_load_balancer(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    fabric, settings = from_memo(memo)
    uid = str(body.get("metadata", {}).get("uid", ""))
    vni = (body.get("status") or {}).get("vni")
    reports = await fabric.sync(fabric.related_nodes(uid, None, [vni] if isinstance(vni, int) else []))
    raise_unless_removed(uid, reports, settings.retry_delay)
