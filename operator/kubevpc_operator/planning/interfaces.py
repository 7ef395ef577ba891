"""Plan one node's interfaces: the interface itself, its VIP, NAT, prefixes, LB prefixes and rules.

An interface whose identity changed (VNI, device, addresses, hostname, PXE) is recreated: the agent
cannot change those in place. Everything else is diffed child by child. Firewall rules are an
ordered list (first match wins): the longest common leading run is kept and the rest is rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    ordered,
)
from kubevpc_operator.planning.state import FirewallRuleState, InterfaceState


def plan_interface(desired: InterfaceState | None, observed: InterfaceState | None) -> list[Op]:
    """Operations that turn ``observed`` (None: absent) into ``desired`` (None: delete it)."""
    if desired is None and observed is None:
        return []
    if desired is None:
        assert observed is not None
        return ordered(_teardown(observed, owner_of=observed))
    if observed is None:
        return ordered(_build(desired))
    if _needs_recreate(desired, observed):
        return ordered(_teardown(observed, owner_of=desired) + _build(desired))
    return ordered(_diff_children(desired, observed))


def plan_interfaces(
    desired: Mapping[str, InterfaceState],
    observed: Mapping[str, InterfaceState],
    protected: frozenset[str] = frozenset(),
) -> list[Op]:
    """All interfaces of a node; observed interfaces in ``protected`` are left untouched."""
    ops: list[Op] = []
    for interface_id in sorted(desired.keys() | observed.keys()):
        if interface_id in protected and interface_id not in desired:
            continue
        ops += plan_interface(desired.get(interface_id), observed.get(interface_id))
    return ordered(ops)


def _needs_recreate(desired: InterfaceState, observed: InterfaceState) -> bool:
    identity_changed = (desired.vni, desired.device, desired.ipv4, desired.ipv6, desired.hostname) != (
        observed.vni,
        observed.device,
        observed.ipv4,
        observed.ipv6,
        observed.hostname,
    )
    pxe_changed = observed.pxe_known and desired.pxe != observed.pxe
    return identity_changed or pxe_changed


def _build(desired: InterfaceState) -> list[Op]:
    owner = desired.owner
    iid = desired.id
    ops: list[Op] = [
        CreateInterface(
            iid,
            desired.vni,
            desired.device,
            desired.ipv4,
            desired.ipv6,
            desired.hostname,
            desired.pxe,
            owner=owner,
        )
    ]
    ops += [CreateFirewallRule(iid, rule, owner=owner) for rule in desired.firewall_rules]
    if desired.vip is not None:
        ops.append(CreateVip(iid, desired.vip, owner=owner))
    if desired.nat is not None:
        nat = desired.nat
        ops.append(CreateNat(iid, nat.ip, nat.min_port, nat.max_port, owner=owner))
    ops += [CreatePrefix(iid, prefix, owner=owner) for prefix in sorted(desired.prefixes)]
    ops += [CreateLoadBalancerPrefix(iid, prefix, owner=owner) for prefix in sorted(desired.lb_prefixes)]
    return ops


def _teardown(observed: InterfaceState, owner_of: InterfaceState) -> list[Op]:
    """Children first, then the interface (which takes its firewall rules with it)."""
    owner = owner_of.owner
    iid = observed.id
    ops: list[Op] = [DeleteLoadBalancerPrefix(iid, p, owner=owner) for p in sorted(observed.lb_prefixes)]
    ops += [DeletePrefix(iid, p, owner=owner) for p in sorted(observed.prefixes)]
    if observed.nat is not None:
        ops.append(DeleteNat(iid, owner=owner))
    if observed.vip is not None:
        ops.append(DeleteVip(iid, owner=owner))
    ops.append(DeleteInterface(iid, owner=owner))
    return ops


def _diff_children(desired: InterfaceState, observed: InterfaceState) -> list[Op]:
    owner = desired.owner
    iid = desired.id
    ops: list[Op] = []
    if desired.vip != observed.vip:
        if observed.vip is not None:
            ops.append(DeleteVip(iid, owner=owner))
        if desired.vip is not None:
            ops.append(CreateVip(iid, desired.vip, owner=owner))
    if desired.nat != observed.nat:
        if observed.nat is not None:
            ops.append(DeleteNat(iid, owner=owner))
        if desired.nat is not None:
            nat = desired.nat
            ops.append(CreateNat(iid, nat.ip, nat.min_port, nat.max_port, owner=owner))
    ops += [DeletePrefix(iid, p, owner=owner) for p in sorted(observed.prefixes - desired.prefixes)]
    ops += [CreatePrefix(iid, p, owner=owner) for p in sorted(desired.prefixes - observed.prefixes)]
    ops += [
        DeleteLoadBalancerPrefix(iid, p, owner=owner)
        for p in sorted(observed.lb_prefixes - desired.lb_prefixes)
    ]
    ops += [
        CreateLoadBalancerPrefix(iid, p, owner=owner)
        for p in sorted(desired.lb_prefixes - observed.lb_prefixes)
    ]
    ops += _diff_rules(desired, observed)
    return ops


def _diff_rules(desired: InterfaceState, observed: InterfaceState) -> list[Op]:
    owner = desired.owner
    iid = desired.id
    want, have = desired.firewall_rules, observed.firewall_rules
    keep = 0
    while keep < min(len(want), len(have)) and rule_matches(want[keep], have[keep]):
        keep += 1
    ops: list[Op] = [DeleteFirewallRule(iid, rule.id, owner=owner) for rule in have[keep:]]
    ops += [CreateFirewallRule(iid, rule, owner=owner) for rule in want[keep:]]
    return ops


def rule_matches(desired: FirewallRuleState, observed: FirewallRuleState) -> bool:
    """Whether an observed rule is the desired one, allowing for the agent's read-back quirks.

    dpservice re-computes an IPv6 prefix length from only the first 32 mask bits when it reports a
    rule (a /64 reads back as /32); such a rule is still the one that was programmed.
    """
    if desired == observed:
        return True
    return desired == FirewallRuleState(
        id=observed.id,
        direction=observed.direction,
        priority=observed.priority,
        source=_as_reported(desired.source, observed.source),
        destination=_as_reported(desired.destination, observed.destination),
        protocol=observed.protocol,
        source_ports=observed.source_ports,
        destination_ports=observed.destination_ports,
        icmp=observed.icmp,
        action=observed.action,
    )


def _as_reported(desired_prefix: str, observed_prefix: str) -> str:
    """``observed_prefix`` with the desired length when it is the truncated IPv6 read-back."""
    want_ip, _, want_len = desired_prefix.partition("/")
    have_ip, _, have_len = observed_prefix.partition("/")
    if ":" in want_ip and want_ip == have_ip and int(have_len) == min(int(want_len), 32):
        return desired_prefix
    return observed_prefix
