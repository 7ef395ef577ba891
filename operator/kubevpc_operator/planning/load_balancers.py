"""Plan a node's load balancer instances and their target sets.

A load balancer whose VNI, IP or ports changed is recreated (its targets go with it and are added
again); otherwise only the target set is diffed.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubevpc_operator.planning.ops import (
    CreateLoadBalancer,
    CreateLoadBalancerTarget,
    DeleteLoadBalancer,
    DeleteLoadBalancerTarget,
    Op,
    ordered,
)
from kubevpc_operator.planning.state import LoadBalancerState


def plan_load_balancer(
    desired: LoadBalancerState | None,
    observed: LoadBalancerState | None,
    protected_targets: frozenset[str] = frozenset(),
) -> list[Op]:
    if desired is None and observed is None:
        return []
    if desired is None:
        assert observed is not None
        return [DeleteLoadBalancer(observed.id, owner=observed.owner)]
    owner = desired.owner
    create = [
        CreateLoadBalancer(desired.id, desired.vni, desired.ip, desired.ports, owner=owner),
        *(CreateLoadBalancerTarget(desired.id, t, owner=owner) for t in sorted(desired.targets)),
    ]
    if observed is None:
        return ordered(create)
    if (desired.vni, desired.ip, desired.ports) != (observed.vni, observed.ip, observed.ports):
        return ordered([DeleteLoadBalancer(observed.id, owner=owner), *create])
    stale = observed.targets - desired.targets - protected_targets
    return ordered(
        [DeleteLoadBalancerTarget(desired.id, t, owner=owner) for t in sorted(stale)]
        + [
            CreateLoadBalancerTarget(desired.id, t, owner=owner)
            for t in sorted(desired.targets - observed.targets)
        ]
    )


def plan_load_balancers(
    desired: Mapping[str, LoadBalancerState],
    observed: Mapping[str, LoadBalancerState],
    protected_ids: frozenset[str] = frozenset(),
    protected_targets: frozenset[str] = frozenset(),
) -> list[Op]:
    ops: list[Op] = []
    for lb_id in sorted(desired.keys() | observed.keys()):
        if lb_id in protected_ids and lb_id not in desired:
            continue
        ops += plan_load_balancer(desired.get(lb_id), observed.get(lb_id), protected_targets)
    return ordered(ops)
