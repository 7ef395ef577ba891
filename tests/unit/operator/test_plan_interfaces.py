"""plan_interface: (desired, observed) -> operations, as a table; matching state plans nothing."""

from __future__ import annotations

import dataclasses

import pytest

from kubevpc_operator.planning.interfaces import plan_interface, plan_interfaces, rule_matches
from kubevpc_operator.planning.ops import (
    CreateFirewallRule,
    CreateInterface,
    CreateLoadBalancerPrefix,
    CreateNat,
    CreatePrefix,
    CreateVip,
    DeleteFirewallRule,
    DeleteInterface,
    DeleteLoadBalancerPrefix,
    DeleteNat,
    DeletePrefix,
    DeleteVip,
    Op,
)
from kubevpc_operator.planning.simulate import after
from kubevpc_operator.planning.state import FirewallRuleState, InterfaceState, Nat, NodeState, Pxe

SSH = FirewallRuleState("ssh", "ingress", 100, "0.0.0.0/0", "10.0.0.5/32", "tcp", (-1, -1), (22, 22))
WEB = FirewallRuleState("web", "ingress", 200, "0.0.0.0/0", "0.0.0.0/0", "tcp", (-1, -1), (80, 80))
OUT = FirewallRuleState("out", "egress", 300, "0.0.0.0/0", "0.0.0.0/0")
NAT = Nat("203.0.113.1", 1024, 3072)
BARE = InterfaceState("if-1", 100, "tap0", "10.0.0.5", "")
FULL = dataclasses.replace(
    BARE,
    vip="203.0.113.9",
    nat=NAT,
    prefixes=frozenset({"10.1.0.0/24"}),
    lb_prefixes=frozenset({"10.0.100.1/32"}),
    firewall_rules=(SSH, WEB),
)


def replace(state: InterfaceState, **changes: object) -> InterfaceState:
    return dataclasses.replace(state, **changes)  # type: ignore[arg-type]


CASES: list[tuple[str, InterfaceState | None, InterfaceState | None, list[Op]]] = [
    ("absent and unwanted", None, None, []),
    ("converged, bare", BARE, BARE, []),
    ("converged, everything", FULL, FULL, []),
    (
        "new interface with every child, parents first",
        FULL,
        None,
        [
            CreateInterface("if-1", 100, "tap0", "10.0.0.5", ""),
            CreateFirewallRule("if-1", SSH),
            CreateFirewallRule("if-1", WEB),
            CreateVip("if-1", "203.0.113.9"),
            CreateNat("if-1", "203.0.113.1", 1024, 3072),
            CreatePrefix("if-1", "10.1.0.0/24"),
            CreateLoadBalancerPrefix("if-1", "10.0.100.1/32"),
        ],
    ),
    (
        "deleted: children first, the interface last",
        None,
        FULL,
        [
            DeleteLoadBalancerPrefix("if-1", "10.0.100.1/32"),
            DeletePrefix("if-1", "10.1.0.0/24"),
            DeleteNat("if-1"),
            DeleteVip("if-1"),
            DeleteInterface("if-1"),
        ],
    ),
    (
        "virtual IP changed",
        replace(FULL, vip="203.0.113.10"),
        FULL,
        [DeleteVip("if-1"), CreateVip("if-1", "203.0.113.10")],
    ),
    ("NAT slot removed", replace(FULL, nat=None), FULL, [DeleteNat("if-1")]),
    (
        "NAT slot moved",
        replace(FULL, nat=Nat("203.0.113.1", 3072, 5120)),
        FULL,
        [DeleteNat("if-1"), CreateNat("if-1", "203.0.113.1", 3072, 5120)],
    ),
    (
        "prefixes swapped",
        replace(FULL, prefixes=frozenset({"10.2.0.0/24"})),
        FULL,
        [DeletePrefix("if-1", "10.1.0.0/24"), CreatePrefix("if-1", "10.2.0.0/24")],
    ),
    (
        "load balancer prefix added",
        replace(FULL, lb_prefixes=frozenset({"10.0.100.1/32", "10.0.100.2/32"})),
        FULL,
        [CreateLoadBalancerPrefix("if-1", "10.0.100.2/32")],
    ),
    (
        "a rule inserted in the middle rebuilds from there",
        replace(FULL, firewall_rules=(SSH, OUT, WEB)),
        FULL,
        [DeleteFirewallRule("if-1", "web"), CreateFirewallRule("if-1", OUT), CreateFirewallRule("if-1", WEB)],
    ),
    (
        "the last rule removed",
        replace(FULL, firewall_rules=(SSH,)),
        FULL,
        [DeleteFirewallRule("if-1", "web")],
    ),
    (
        "device changed: recreated with its children",
        replace(BARE, device="tap1", vip="203.0.113.9"),
        replace(BARE, vip="203.0.113.9"),
        [
            DeleteVip("if-1"),
            DeleteInterface("if-1"),
            CreateInterface("if-1", 100, "tap1", "10.0.0.5", ""),
            CreateVip("if-1", "203.0.113.9"),
        ],
    ),
    (
        "address changed: recreated",
        replace(BARE, ipv6="fd00::5"),
        BARE,
        [DeleteInterface("if-1"), CreateInterface("if-1", 100, "tap0", "10.0.0.5", "fd00::5")],
    ),
    (
        "PXE changed: recreated",
        replace(BARE, pxe=Pxe("10.0.0.1", "boot.ipxe")),
        BARE,
        [
            DeleteInterface("if-1"),
            CreateInterface("if-1", 100, "tap0", "10.0.0.5", "", "", Pxe("10.0.0.1", "boot.ipxe")),
        ],
    ),
    (
        "PXE unknown (operator restarted): not recreated",
        replace(BARE, pxe=Pxe("10.0.0.1", "boot.ipxe")),
        replace(BARE, pxe_known=False),
        [],
    ),
]


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_interface(
    description: str, desired: InterfaceState | None, observed: InterfaceState | None, expected: list[Op]
) -> None:
    assert plan_interface(desired, observed) == expected


@pytest.mark.parametrize(("description", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_applying_the_plan_converges(
    description: str, desired: InterfaceState | None, observed: InterfaceState | None, expected: list[Op]
) -> None:
    before = NodeState(interfaces={observed.id: observed} if observed else {})
    wanted = {desired.id: desired} if desired else {}
    state = after(before, plan_interfaces(wanted, before.interfaces))
    assert plan_interfaces(wanted, state.interfaces) == []


def test_protected_interfaces_are_left_alone() -> None:
    assert plan_interfaces({}, {"if-1": FULL}, protected=frozenset({"if-1"})) == []
    assert plan_interfaces({}, {"if-1": FULL}) != []


def test_ipv6_rule_read_back_with_truncated_length_matches() -> None:
    desired = FirewallRuleState("v6", "ingress", 1, "2001:db8::/64", "::/0")
    reported = dataclasses.replace(desired, source="2001:db8::/32")
    assert rule_matches(desired, reported)
    assert not rule_matches(desired, dataclasses.replace(desired, source="2001:db9::/32"))
    assert (
        plan_interface(replace(BARE, firewall_rules=(desired,)), replace(BARE, firewall_rules=(reported,)))
        == []
    )


def test_owner_does_not_take_part_in_equality() -> None:
    from kubevpc_operator.planning.state import Kind, Owner

    owned = replace(BARE, owner=Owner(Kind.NETWORK_INTERFACE, "ns", "n", "if-1"))
    assert plan_interface(owned, BARE) == []
    ops = plan_interface(owned, None)
    assert ops[0].owner == owned.owner
