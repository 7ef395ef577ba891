"""Plan a node's routes: a level-triggered set difference per (VNI, prefix).

A route whose next hop changed is deleted and created again (the agent has no update). Routes whose
next hop belongs to an object with an invalid spec (``protected``) are never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubevpc_operator.planning.keyed import plan_keyed
from kubevpc_operator.planning.ops import CreateRoute, DeleteRoute, Op
from kubevpc_operator.planning.state import RouteState


def plan_routes(
    desired: Mapping[tuple[int, str], RouteState],
    observed: Mapping[tuple[int, str], RouteState],
    protected: frozenset[str] = frozenset(),
) -> list[Op]:
    return plan_keyed(
        desired,
        observed,
        protected,
        underlay=lambda route: route.nexthop,
        delete=lambda have, owner: DeleteRoute(have.vni, have.prefix, owner=owner),
        create=lambda want: CreateRoute(
            want.vni, want.prefix, want.nexthop_vni, want.nexthop, owner=want.owner
        ),
    )
