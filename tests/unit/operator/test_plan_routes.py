"""plan_routes: a set difference per (VNI, prefix); a changed next hop is replaced."""

from __future__ import annotations

import pytest

from kubevpc_operator.planning.ops import CreateRoute, DeleteRoute, Op
from kubevpc_operator.planning.routes import plan_routes
from kubevpc_operator.planning.simulate import after
from kubevpc_operator.planning.state import NodeState, RouteState

A = RouteState(100, "10.0.0.2/32", 100, "fc00:2::d000:0:0:1")
B = RouteState(100, "10.0.0.3/32", 100, "fc00:2::d000:0:0:2")
PEER = RouteState(100, "10.9.0.2/32", 200, "fc00:3::d000:0:0:1")
V6 = RouteState(100, "fd00::2/128", 100, "fc00:2::d000:0:0:1")
MOVED = RouteState(100, "10.0.0.2/32", 100, "fc00:2::d000:0:0:9")


def table(*routes: RouteState) -> dict[tuple[int, str], RouteState]:
    return {r.key: r for r in routes}


CASES: list[tuple[str, list[RouteState], list[RouteState], list[Op]]] = [
    ("nothing", [], [], []),
    ("converged", [A, B, PEER, V6], [A, B, PEER, V6], []),
    (
        "new routes",
        [A, PEER],
        [],
        [CreateRoute(100, "10.0.0.2/32", 100, A.nexthop), CreateRoute(100, "10.9.0.2/32", 200, PEER.nexthop)],
    ),
    ("stale route", [A], [A, B], [DeleteRoute(100, "10.0.0.3/32")]),
    (
        "next hop moved",
        [MOVED],
        [A],
        [DeleteRoute(100, "10.0.0.2/32"), CreateRoute(100, "10.0.0.2/32", 100, MOVED.nexthop)],
    ),
    ("IPv6 added", [A, V6], [A], [CreateRoute(100, "fd00::2/128", 100, V6.nexthop)]),
]


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_routes(
    description: str, desired: list[RouteState], observed: list[RouteState], expected: list[Op]
) -> None:
    assert plan_routes(table(*desired), table(*observed)) == expected


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_applying_the_plan_converges(
    description: str, desired: list[RouteState], observed: list[RouteState], expected: list[Op]
) -> None:
    state = after(NodeState(routes=table(*observed)), plan_routes(table(*desired), table(*observed)))
    assert plan_routes(table(*desired), state.routes) == []


def test_routes_to_protected_next_hops_stay() -> None:
    assert plan_routes({}, table(A, B), protected=frozenset({A.nexthop})) == [DeleteRoute(100, "10.0.0.3/32")]
    # A protected next hop does not stop a desired replacement.
    assert plan_routes(table(MOVED), table(A), protected=frozenset({A.nexthop})) != []
