"""plan_load_balancer: instance and target set; changed identity recreates with every target."""

from __future__ import annotations

import dataclasses

import pytest

from kubevpc_operator.planning.load_balancers import plan_load_balancer, plan_load_balancers
from kubevpc_operator.planning.ops import (
    CreateLoadBalancer,
    CreateLoadBalancerTarget,
    DeleteLoadBalancer,
    DeleteLoadBalancerTarget,
    Op,
)
from kubevpc_operator.planning.simulate import after
from kubevpc_operator.planning.state import InterfaceState, LoadBalancerState, NodeState

T1, T2, T3 = "fc00:1::d000:0:0:10", "fc00:2::d000:0:0:10", "fc00:3::d000:0:0:10"
LB = LoadBalancerState("lb-1", 100, "10.0.100.1", ((6, 80),), frozenset({T1, T2}))


CASES: list[tuple[str, LoadBalancerState | None, LoadBalancerState | None, list[Op]]] = [
    ("nothing", None, None, []),
    ("converged", LB, LB, []),
    (
        "new: the instance, then its targets",
        LB,
        None,
        [
            CreateLoadBalancer("lb-1", 100, "10.0.100.1", ((6, 80),)),
            CreateLoadBalancerTarget("lb-1", T1),
            CreateLoadBalancerTarget("lb-1", T2),
        ],
    ),
    ("deleted", None, LB, [DeleteLoadBalancer("lb-1")]),
    (
        "a target came and one went",
        dataclasses.replace(LB, targets=frozenset({T1, T3})),
        LB,
        [DeleteLoadBalancerTarget("lb-1", T2), CreateLoadBalancerTarget("lb-1", T3)],
    ),
    (
        "ports changed: recreated with its targets",
        dataclasses.replace(LB, ports=((6, 80), (6, 443))),
        LB,
        [
            DeleteLoadBalancer("lb-1"),
            CreateLoadBalancer("lb-1", 100, "10.0.100.1", ((6, 80), (6, 443))),
            CreateLoadBalancerTarget("lb-1", T1),
            CreateLoadBalancerTarget("lb-1", T2),
        ],
    ),
]


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_load_balancer(
    description: str,
    desired: LoadBalancerState | None,
    observed: LoadBalancerState | None,
    expected: list[Op],
) -> None:
    assert plan_load_balancer(desired, observed) == expected


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_applying_the_plan_converges(
    description: str,
    desired: LoadBalancerState | None,
    observed: LoadBalancerState | None,
    expected: list[Op],
) -> None:
    # Another user of the VNI keeps it alive, as on a real node.
    keeper = {"if": InterfaceState("if", 100, "tap0", "10.0.0.1", "")}
    before = NodeState(interfaces=keeper, load_balancers={observed.id: observed} if observed else {})
    wanted = {desired.id: desired} if desired else {}
    state = after(before, plan_load_balancers(wanted, before.load_balancers))
    assert plan_load_balancers(wanted, state.load_balancers) == []


def test_protected_instances_and_targets_stay() -> None:
    assert plan_load_balancers({}, {"lb-1": LB}, protected_ids=frozenset({"lb-1"})) == []
    fewer = dataclasses.replace(LB, targets=frozenset({T1}))
    assert plan_load_balancer(fewer, LB, protected_targets=frozenset({T2})) == []
