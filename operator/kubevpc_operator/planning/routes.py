"""Plan a node's routes: a level-triggered set difference per (VNI, prefix).

A route whose next hop changed is deleted and created again (the agent has no update). Routes whose
next hop belongs to an object with an invalid spec (``protected``) are never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubevpc_operator.planning.ops import CreateRoute, DeleteRoute, Op
from kubevpc_operator.planning.state import RouteState


def plan_routes(
    desired: Mapping[tuple[int, str], RouteState],
    observed: Mapping[tuple[int, str], RouteState],
    protected: frozenset[str] = frozenset(),
) -> list[Op]:
    deletes: list[Op] = []
    creates: list[Op] = []
    for key in sorted(observed.keys() | desired.keys()):
        want, have = desired.get(key), observed.get(key)
        if want == have:
            continue
        if have is not None:
            if want is None and have.nexthop in protected:
                continue
            deletes.append(DeleteRoute(have.vni, have.prefix, owner=(want or have).owner))
        if want is not None:
            creates.append(
                CreateRoute(want.vni, want.prefix, want.nexthop_vni, want.nexthop, owner=want.owner)
            )
    return deletes + creates
