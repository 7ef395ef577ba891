"""Compiled firewall rules against a plain reference evaluation (hypothesis), plus the documented cases.

The reference (``testkit.firewall_reference``) walks the rules one by one with ``ipaddress``
containment, the way docs/network-functions.md states them; the compiled, vectorized evaluation
must agree with it on the verdict and on which rule decided, for random rules and flows.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_agent.tables import firewall_eval
from kubevpc_agent.tables.firewall_eval import CompiledRules, FlowView, Verdict, sorted_rules
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, IPAddress, PortRange, Protocol
from testkit.firewall_reference import Flow, reference_verdict


def view(flows: list[Flow]) -> FlowView:
    def halves(a: IPAddress) -> tuple[int, int]:
        v = int(a)
        return (v >> 64, v & ((1 << 64) - 1)) if a.version == 6 else (0, v)

    src = np.array([halves(f.src) for f in flows], dtype=np.uint64).reshape(-1, 2)
    dst = np.array([halves(f.dst) for f in flows], dtype=np.uint64).reshape(-1, 2)
    return FlowView(
        is_v6=np.array([f.src.version == 6 for f in flows], dtype=bool),
        src_hi=src[:, 0].copy(),
        src_lo=src[:, 1].copy(),
        dst_hi=dst[:, 0].copy(),
        dst_lo=dst[:, 1].copy(),
        proto=np.array([f.proto for f in flows], dtype=np.uint8),
        sport=np.array([f.sport for f in flows], dtype=np.uint16),
        dport=np.array([f.dport for f in flows], dtype=np.uint16),
        icmp_type=np.array([f.icmp_type for f in flows], dtype=np.uint8),
        icmp_code=np.array([f.icmp_code for f in flows], dtype=np.uint8),
    )


def evaluate(rules: list[FirewallRule], flows: list[Flow]) -> list[tuple[Verdict, FirewallRule | None]]:
    """The compiled evaluation of ``rules`` (ingress rules of port 0) over ``flows``."""
    compiled = CompiledRules({0: rules}, n_ports=1)
    sets = compiled.rule_set(np.zeros(len(flows), dtype=np.int16), Direction.INGRESS)
    verdict, matched = compiled.evaluate(sets, view(flows))
    return [
        (Verdict(int(v)), compiled.rules[int(m)] if m >= 0 else None)
        for v, m in zip(verdict, matched, strict=True)
    ]


# --- strategies: addresses from a small pool so prefixes and flows meet often -------------------

V4_POOL = [IPv4Address(a) for a in ("10.0.0.1", "10.0.0.200", "10.0.1.7", "192.168.5.5", "45.86.6.6")]
V6_POOL = [IPv6Address(a) for a in ("2000:100:1::1", "2000:100:1::2", "2000:200::9", "2001:db8::1")]


@st.composite
def prefixes(draw: st.DrawFn, v6: bool) -> object:
    addr = draw(st.sampled_from(V6_POOL if v6 else V4_POOL))
    length = draw(st.sampled_from([0, 8, 16, 24, 64, 127, 128] if v6 else [0, 8, 16, 24, 31, 32]))
    return ip_network((addr, length), strict=False)


port_ranges = st.one_of(
    st.just(PortRange()),
    st.tuples(st.integers(0, 2000), st.integers(0, 2000)).map(lambda t: PortRange(min(t), max(t))),
    st.integers(0, 2000).map(lambda p: PortRange(p, -1)),  # upper -1: up to 0xffffffff (dpservice)
)


@st.composite
def rules(draw: st.DrawFn, index: int) -> FirewallRule:
    v6 = draw(st.booleans())
    protocol = draw(st.sampled_from([None, Protocol.TCP, Protocol.UDP, Protocol.ICMP]))
    icmp = protocol is Protocol.ICMP
    return FirewallRule(
        id=f"r{index}",
        direction=Direction.INGRESS,
        action=draw(st.sampled_from(list(Action))),
        priority=draw(st.sampled_from([0, 10, 1000, 1000, 1000, 65535])),
        source=draw(prefixes(v6)),  # type: ignore[arg-type]
        destination=draw(prefixes(v6)),  # type: ignore[arg-type]
        protocol=protocol,
        src_ports=draw(port_ranges) if protocol in (Protocol.TCP, Protocol.UDP) else PortRange(),
        dst_ports=draw(port_ranges) if protocol in (Protocol.TCP, Protocol.UDP) else PortRange(),
        icmp_type=draw(st.sampled_from([-1, 0, 3, 8, 128])) if icmp else -1,
        icmp_code=draw(st.sampled_from([-1, 0, 4])) if icmp else -1,
    )


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    v6 = draw(st.booleans())
    pool = V6_POOL if v6 else V4_POOL
    proto = draw(st.sampled_from([Protocol.TCP, Protocol.UDP, Protocol.ICMPV6 if v6 else Protocol.ICMP]))
    return Flow(
        src=draw(st.sampled_from(pool)),
        dst=draw(st.sampled_from(pool)),
        proto=proto,
        sport=draw(st.integers(0, 2100)),
        dport=draw(st.integers(0, 2100)),
        icmp_type=draw(st.sampled_from([0, 3, 8, 128, 129])),
        icmp_code=draw(st.sampled_from([0, 3, 4])),
    )


@st.composite
def rule_lists(draw: st.DrawFn) -> list[FirewallRule]:
    n = draw(st.integers(0, 12))
    return [draw(rules(i)) for i in range(n)]


@settings(max_examples=400, deadline=None)
@given(rule_lists(), st.lists(flows(), min_size=1, max_size=40))
def test_compiled_evaluation_equals_reference(rule_list: list[FirewallRule], flow_list: list[Flow]) -> None:
    got = evaluate(rule_list, flow_list)
    want = [reference_verdict(rule_list, f) for f in flow_list]
    assert got == want


@settings(max_examples=100, deadline=None)
@given(rule_lists(), st.lists(flows(), min_size=1, max_size=40))
def test_rule_blocks_and_row_chunks_do_not_change_the_result(
    rule_list: list[FirewallRule], flow_list: list[Flow]
) -> None:
    """Tiny blocks and chunks (many passes, flows leaving between blocks) give the same answers."""
    with (
        mock.patch.object(firewall_eval, "RULE_BLOCK", 2),
        mock.patch.object(firewall_eval, "MATCH_CELLS", 6),
    ):
        got = evaluate(rule_list, flow_list)
    assert got == [reference_verdict(rule_list, f) for f in flow_list]


# --- the documented cases, one by one -----------------------------------------------------------

ANY4 = ip_network("0.0.0.0/0")
ANY6 = ip_network("::/0")


def rule(
    rule_id: str = "r",
    *,
    action: Action = Action.ACCEPT,
    priority: int = 1000,
    src: str = "0.0.0.0/0",
    dst: str = "0.0.0.0/0",
    protocol: Protocol | None = None,
    dports: tuple[int, int] = (-1, -1),
    icmp: tuple[int, int] = (-1, -1),
) -> FirewallRule:
    return FirewallRule(
        rule_id,
        Direction.INGRESS,
        action,
        priority,
        ip_network(src, strict=False),
        ip_network(dst, strict=False),
        protocol,
        dst_ports=PortRange(*dports),
        icmp_type=icmp[0],
        icmp_code=icmp[1],
    )


TCP_FLOW = Flow(IPv4Address("10.100.1.1"), IPv4Address("10.100.1.2"), Protocol.TCP, 1001, 1234)
ECHO6 = Flow(IPv6Address("2000:100:1::1"), IPv6Address("2000:100:1::2"), Protocol.ICMPV6, icmp_type=128)


@pytest.mark.parametrize(
    ("rules_", "flow", "verdict", "decider"),
    [
        ([], TCP_FLOW, Verdict.ACCEPT, None),
        ([rule("a", protocol=Protocol.UDP)], TCP_FLOW, Verdict.DROP, None),
        ([rule("a", src="10.100.1.1/32", protocol=Protocol.TCP)], TCP_FLOW, Verdict.ACCEPT, "a"),
        ([rule("a", src="1.2.3.4/16", protocol=Protocol.TCP)], TCP_FLOW, Verdict.DROP, None),
        ([rule("a", protocol=Protocol.TCP, dports=(1234, 1234))], TCP_FLOW, Verdict.ACCEPT, "a"),
        ([rule("a", protocol=Protocol.TCP, dports=(1235, 2000))], TCP_FLOW, Verdict.DROP, None),
        # first match in (priority, insertion) order decides
        (
            [rule("acc", protocol=Protocol.TCP), rule("drop", action=Action.DROP, protocol=Protocol.TCP)],
            TCP_FLOW,
            Verdict.ACCEPT,
            "acc",
        ),
        (
            [rule("acc", protocol=Protocol.TCP), rule("drop", action=Action.DROP, priority=10)],
            TCP_FLOW,
            Verdict.DROP,
            "drop",
        ),
        # an IPv4 prefix never matches an IPv6 flow for TCP/UDP/any rules
        ([rule("a")], Flow(ECHO6.src, ECHO6.dst, Protocol.TCP), Verdict.DROP, None),
        # ICMP: the default 0.0.0.0/0 ICMP rule covers ICMPv6, a narrower prefix is checked
        ([rule("a", protocol=Protocol.ICMP)], ECHO6, Verdict.ACCEPT, "a"),
        ([rule("a", src="2000:100:1::/64", dst="::/0", protocol=Protocol.ICMP)], ECHO6, Verdict.ACCEPT, "a"),
        ([rule("a", src="2000:200::/64", dst="::/0", protocol=Protocol.ICMP)], ECHO6, Verdict.DROP, None),
        ([rule("a", protocol=Protocol.ICMP, icmp=(128, 0))], ECHO6, Verdict.ACCEPT, "a"),
        ([rule("a", protocol=Protocol.ICMP, icmp=(8, -1))], ECHO6, Verdict.DROP, None),
        ([rule("a", protocol=Protocol.ICMP)], TCP_FLOW, Verdict.DROP, None),
    ],
    ids=[
        "no rules: accept",
        "rules, none match: drop",
        "source prefix matches",
        "source prefix misses",
        "dst port in range",
        "dst port out of range",
        "insertion order at equal priority",
        "lower priority value first",
        "IPv4 prefix vs IPv6 flow",
        "ICMP /0 rule matches ICMPv6",
        "ICMP rule with IPv6 prefix",
        "ICMP rule with a missing prefix",
        "ICMP type/code match",
        "ICMP type mismatch",
        "ICMP rule vs TCP",
    ],
)
def test_documented_cases(
    rules_: list[FirewallRule], flow: Flow, verdict: Verdict, decider: str | None
) -> None:
    (got, matched), *_ = evaluate(rules_, [flow])
    assert got is verdict
    assert (matched.id if matched else None) == decider


def test_sets_are_per_port_and_direction() -> None:
    drop_all = FirewallRule("d", Direction.EGRESS, Action.DROP, 1000, ANY4, ANY4)
    compiled = CompiledRules({1: [drop_all]}, n_ports=3)
    ports = np.array([0, 1, 1, 2, -1, 7], dtype=np.int16)
    egress = compiled.rule_set(ports, Direction.EGRESS)
    ingress = compiled.rule_set(ports, Direction.INGRESS)
    flows_ = view([TCP_FLOW] * len(ports))
    assert compiled.evaluate(egress, flows_)[0].tolist() == [1, 2, 2, 1, 1, 1]
    assert compiled.evaluate(ingress, flows_)[0].tolist() == [1] * 6


def test_large_rule_sets_are_chunked() -> None:
    """More rows x rules than one matrix holds still gives the first match per row."""
    many = [rule(f"p{p}", protocol=Protocol.TCP, dports=(p, p)) for p in range(1000)]
    dports = [4 * i for i in range(300)]  # 0 .. 1196: the last ones match no rule
    got = evaluate(many, [Flow(TCP_FLOW.src, TCP_FLOW.dst, Protocol.TCP, 1, d) for d in dports])
    assert [m.id if m else None for _, m in got] == [f"p{d}" if d < 1000 else None for d in dports]


def test_sorted_rules_is_stable_by_priority() -> None:
    a, b, c = rule("a", priority=5), rule("b", priority=1), rule("c", priority=5)
    assert [r.id for r in sorted_rules([a, b, c])] == ["b", "a", "c"]
