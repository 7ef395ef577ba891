"""plan_neighbor_nats: set difference by (ip, vni, range); a moved underlay is replaced."""

from __future__ import annotations

import dataclasses

import pytest

from kubevpc_operator.planning.nat import plan_neighbor_nats
from kubevpc_operator.planning.ops import CreateNeighborNat, DeleteNeighborNat, Op
from kubevpc_operator.planning.simulate import after
from kubevpc_operator.planning.state import InterfaceState, NeighborNatState, NodeState

N1 = NeighborNatState("203.0.113.1", 100, 1024, 3072, "fc00:2::d000:0:0:7")
N2 = NeighborNatState("203.0.113.1", 100, 3072, 5120, "fc00:3::d000:0:0:7")
N1_MOVED = dataclasses.replace(N1, underlay="fc00:2::d000:0:0:8")


def table(*entries: NeighborNatState) -> dict[tuple[str, int, int, int], NeighborNatState]:
    return {e.key: e for e in entries}


CASES: list[tuple[str, list[NeighborNatState], list[NeighborNatState], list[Op]]] = [
    ("nothing", [], [], []),
    ("converged", [N1, N2], [N1, N2], []),
    ("new", [N1], [], [CreateNeighborNat("203.0.113.1", 100, 1024, 3072, N1.underlay)]),
    ("freed slot", [N1], [N1, N2], [DeleteNeighborNat("203.0.113.1", 100, 3072, 5120)]),
    (
        "owner's NAT recreated elsewhere",
        [N1_MOVED],
        [N1],
        [
            DeleteNeighborNat("203.0.113.1", 100, 1024, 3072),
            CreateNeighborNat("203.0.113.1", 100, 1024, 3072, N1_MOVED.underlay),
        ],
    ),
]


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_neighbor_nats(
    description: str, desired: list[NeighborNatState], observed: list[NeighborNatState], expected: list[Op]
) -> None:
    assert plan_neighbor_nats(table(*desired), table(*observed)) == expected


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_applying_the_plan_converges(
    description: str, desired: list[NeighborNatState], observed: list[NeighborNatState], expected: list[Op]
) -> None:
    keeper = {"if": InterfaceState("if", 100, "tap0", "10.0.0.1", "")}
    before = NodeState(interfaces=keeper, neighbor_nats=table(*observed))
    state = after(before, plan_neighbor_nats(table(*desired), before.neighbor_nats))
    assert plan_neighbor_nats(table(*desired), state.neighbor_nats) == []


def test_entries_of_protected_owners_stay() -> None:
    assert plan_neighbor_nats({}, table(N1), protected=frozenset({N1.underlay})) == []
