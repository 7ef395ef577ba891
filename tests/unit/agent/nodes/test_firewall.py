"""firewall node: verdicts per flow, cached for both directions; dpservice's firewall cases (§6.5).

Frames go through ``cls`` (and ``ipip_decap`` from an uplink), their flows are resolved in a real
:class:`FlowTable` from the classified columns (what ``conntrack`` does before the network
functions), ``tx_port`` is set as routing would, and then the ``firewall`` node runs alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, ip_address, ip_network

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.firewall import Firewall, Next
from kubevpc_agent.nodes.ipip_decap import IpipDecap
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import Dir, FlowFlag, FlowTable, FwAction
from kubevpc_agent.tables.firewall_eval import FirewallTable, Verdict
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, PortRange, Protocol
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs
from kubevpc_agent.tables.vnf_map import VnfMap
from testkit.dp_topology import CONFIG, PF0, PORTS, VM1, VM2, VM3, VM4, Vm
from testkit.firewall_reference import Flow, reference_verdict
from testkit.overlay import NodeRun, build_state, receive, resolve_flows, run_node, underlay_of

PUBLIC_IP = "45.86.6.6"
PUBLIC_IPV6 = "2001:4860:4860::8888"
ROUTER = "fc00::ffff"


@dataclass
class Rig:
    """One agent's tables, a flow table and the firewall node (``enforce`` as configured)."""

    enforce: bool = True
    state: AgentState = field(default_factory=build_state)
    flows: FlowTable = field(default_factory=lambda: FlowTable(1024))

    def __post_init__(self) -> None:
        self.ports = PortTable(self.state)
        self.cls = Cls(self.ports)
        self.decap = IpipDecap(VnfMap(self.state), self.ports, PortMacs(PORTS))
        self.node = Firewall(FirewallTable(self.state), self.flows, self.ports, enforce=self.enforce)

    def rule(self, vm: Vm, rule_id: str, direction: Direction, **kw: object) -> None:
        src = str(kw.pop("src", "0.0.0.0/0"))
        dst = str(kw.pop("dst", "0.0.0.0/0"))
        dports = kw.pop("dports", (-1, -1))
        rule = FirewallRule(
            rule_id,
            direction,
            kw.pop("action", Action.ACCEPT),  # type: ignore[arg-type]
            kw.pop("priority", 1000),  # type: ignore[arg-type]
            ip_network(src, strict=False),
            ip_network(dst, strict=False),
            kw.pop("protocol", None),  # type: ignore[arg-type]
            dst_ports=PortRange(*dports),  # type: ignore[misc]
            icmp_type=kw.pop("icmp_type", -1),  # type: ignore[arg-type]
            icmp_code=kw.pop("icmp_code", -1),  # type: ignore[arg-type]
        )
        assert not kw, kw
        src_ip, dst_ip = ip_address(src.split("/", maxsplit=1)[0]), ip_address(dst.split("/", maxsplit=1)[0])
        self.state.apply(cmd.CreateFirewallRule(vm.name, rule, src_ip, dst_ip))

    def batch(self, pkts: list[Packet], port: int, tx_port: int) -> Batch:
        """Classified (and decapsulated) frames with flows resolved, routed to ``tx_port``."""
        batch = receive([bytes(p) for p in pkts], port)
        assert set(np.atleast_1d(self.cls.process(batch)).tolist()) <= {3, 4}  # conntrack / ipip_decap
        if port == PF0:
            assert set(np.atleast_1d(self.decap.process(batch)).tolist()) == {1}
        resolve_flows(self.flows, batch)
        batch.tx_port[:] = tx_port
        return batch

    def send(self, pkts: list[Packet], port: int, tx_port: int) -> NodeRun:
        return run_node(self.node, self.batch(pkts, port, tx_port))


def vm_frame(vm: Vm, inner: Packet) -> Packet:
    return Ether(dst="22:22:22:22:22:00", src=vm.mac) / inner


def from_uplink(vm: Vm, inner: Packet) -> Packet:
    return (
        Ether(dst="22:22:22:22:22:00", src="02:aa:bb:cc:dd:01")
        / IPv6(src=ROUTER, dst=str(underlay_of(vm)))
        / inner
    )


def tcp4(src: Vm | str, dst: Vm | str, sport: int, dport: int, flags: str = "S") -> Packet:
    s = src.ip if isinstance(src, Vm) else src
    d = dst.ip if isinstance(dst, Vm) else dst
    return IP(src=s, dst=d) / TCP(sport=sport, dport=dport, flags=flags)


# --- dpservice's firewall cases -----------------------------------------------------------------


def test_vf_to_pf_firewall_tcp_allow_and_block() -> None:
    """test_vf_to_pf_firewall_tcp_allow / _block: an egress rule tcp/453 lets 453 out, not 1024."""
    rig = Rig()
    rig.rule(VM1, "fw1-vm1", Direction.EGRESS, protocol=Protocol.TCP, dports=(453, 453))
    out = rig.send(
        [vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1240, 453)), vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1240, 1024))],
        VM1.port,
        PF0,
    )
    assert out.edges == [Next.IPIP_ENCAP, Next.DROP]
    assert out.counters == {"accepted": 1, "evaluated": 2, "egress_no_match": 1}


def test_vf_to_pf_firewall_ipv6_tcp_allow() -> None:
    rig = Rig()
    rig.rule(
        VM1, "fw1-vm16", Direction.EGRESS, src="::/0", dst="::/0", protocol=Protocol.TCP, dports=(456, 456)
    )
    pkts = [
        vm_frame(VM1, IPv6(src=VM1.ipv6, dst=PUBLIC_IPV6) / TCP(sport=1240, dport=456)),
        vm_frame(VM1, IPv6(src=VM1.ipv6, dst=PUBLIC_IPV6) / TCP(sport=1240, dport=457)),
        vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1240, 456)),  # an IPv6 rule does not cover IPv4
    ]
    assert rig.send(pkts, VM1.port, PF0).edges == [Next.IPIP_ENCAP, Next.DROP, Next.DROP]


@pytest.mark.parametrize(
    ("src_prefix", "edge", "counters"),
    [
        (f"{VM1.ip}/32", Next.TX, {"accepted": 1, "evaluated": 1}),  # test1_vf_to_vf_firewall_tcp
        ("1.2.3.4/16", Next.DROP, {"evaluated": 1, "ingress_no_match": 1}),  # test2 (skipped in dpservice)
    ],
    ids=["source allowed", "source not allowed"],
)
def test_vf_to_vf_firewall_tcp(src_prefix: str, edge: Next, counters: dict[str, int]) -> None:
    rig = Rig()
    rig.rule(VM2, "fw1-vm2", Direction.INGRESS, src=src_prefix, protocol=Protocol.TCP)
    out = rig.send([vm_frame(VM1, tcp4(VM1, VM2, 1001, 1234))], VM1.port, VM2.port)
    assert out.edges == [edge]
    assert out.counters == counters


def test_vf_to_vf_icmp_both_ways_with_icmp_rules() -> None:
    """test_vf_to_vf_icmp / _icmpv6: ICMP rules (also covering ICMPv6) on both VMs, echo both ways twice."""
    rig = Rig()
    for vm in (VM1, VM2):
        rig.rule(vm, "fw0-vm-icmp", Direction.INGRESS, protocol=Protocol.ICMP)
    request = vm_frame(VM1, IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8, id=0x40))
    reply = vm_frame(VM2, IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=0, id=0x40))
    request6 = vm_frame(VM1, IPv6(src=VM1.ipv6, dst=VM2.ipv6) / ICMPv6EchoRequest(id=7))
    for _ in range(2):
        assert rig.send([request, request6], VM1.port, VM2.port).edges == [Next.TX, Next.TX]
        assert rig.send([reply], VM2.port, VM1.port).edges == [Next.TX]


# --- defaults, order, caching ---------------------------------------------------------------------


def test_no_rules_accepts_everything() -> None:
    rig = Rig()
    pkts = [
        vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1, 2)),
        vm_frame(VM1, IP(src=VM1.ip, dst=VM2.ip) / UDP(dport=53)),
    ]
    assert rig.send(pkts, VM1.port, PF0).edges == [Next.IPIP_ENCAP, Next.IPIP_ENCAP]


def test_egress_rules_only_leave_ingress_open() -> None:
    """Rules of one direction do not close the other: a VM with only egress rules still receives."""
    rig = Rig()
    rig.rule(VM2, "e", Direction.EGRESS, protocol=Protocol.UDP)
    assert rig.send([vm_frame(VM1, tcp4(VM1, VM2, 1, 2))], VM1.port, VM2.port).edges == [Next.TX]


def test_lower_priority_value_wins_then_insertion_order() -> None:
    rig = Rig()
    rig.rule(VM1, "accept-all", Direction.EGRESS)
    rig.rule(
        VM1,
        "drop-22",
        Direction.EGRESS,
        action=Action.DROP,
        priority=10,
        protocol=Protocol.TCP,
        dports=(22, 22),
    )
    rig.rule(
        VM1, "drop-23-late", Direction.EGRESS, action=Action.DROP, protocol=Protocol.TCP, dports=(23, 23)
    )
    pkts = [vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 5, p)) for p in (22, 23, 80)]
    out = rig.send(pkts, VM1.port, PF0)
    assert out.edges == [Next.DROP, Next.IPIP_ENCAP, Next.IPIP_ENCAP]
    assert out.counters == {"accepted": 2, "evaluated": 3, "egress_rule_drop": 1}


def test_vf_to_vf_needs_sender_egress_and_receiver_ingress() -> None:
    rig = Rig()
    rig.rule(VM1, "no-tcp-out", Direction.EGRESS, action=Action.DROP, protocol=Protocol.TCP)
    rig.rule(VM2, "tcp-in", Direction.INGRESS, protocol=Protocol.TCP)
    out = rig.send([vm_frame(VM1, tcp4(VM1, VM2, 1, 2))], VM1.port, VM2.port)
    assert out.edges == [Next.DROP]
    assert out.counters == {"evaluated": 1, "egress_rule_drop": 1}


def test_verdict_is_cached_for_both_directions() -> None:
    """VM1's egress accepts; the reply is let in although VM1's ingress rules accept nothing of it."""
    rig = Rig()
    rig.rule(VM1, "only-udp-in", Direction.INGRESS, protocol=Protocol.UDP)
    assert rig.send([vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1240, 80))], VM1.port, PF0).edges == [Next.IPIP_ENCAP]
    reply = from_uplink(VM1, tcp4(PUBLIC_IP, VM1, 80, 1240, "SA"))
    out = rig.send([reply], PF0, VM1.port)
    assert out.edges == [Next.TX]
    assert out.counters == {"accepted": 1}  # no evaluation: the cached verdict
    flow = int(out.batch.flow[0])
    assert rig.flows.fw_action[flow].tolist() == [FwAction.ACCEPT, FwAction.ACCEPT]
    assert rig.flows.flags[flow] & FlowFlag.FIREWALL


def test_dropped_flow_stays_dropped_in_both_directions() -> None:
    rig = Rig()
    rig.rule(VM2, "ssh-only", Direction.INGRESS, protocol=Protocol.TCP, dports=(22, 22))
    first = rig.send([vm_frame(VM1, tcp4(VM1, VM2, 7, 80))], VM1.port, VM2.port)
    assert first.edges == [Next.DROP]
    again = rig.send([vm_frame(VM1, tcp4(VM1, VM2, 7, 80, "A"))], VM1.port, VM2.port)
    back = rig.send([vm_frame(VM2, tcp4(VM2, VM1, 80, 7, "SA"))], VM2.port, VM1.port)
    assert again.edges == back.edges == [Next.DROP]
    assert again.counters == back.counters == {"flow_dropped": 1}


def test_reply_without_verdict_is_dropped() -> None:
    """A flow whose original direction never reached the firewall (e.g. dropped by routing)."""
    rig = Rig()
    rig.batch([vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 9, 9))], VM1.port, PF0)  # resolved, never filtered
    out = rig.send([from_uplink(VM1, tcp4(PUBLIC_IP, VM1, 9, 9, "SA"))], PF0, VM1.port)
    assert out.edges == [Next.DROP]
    assert out.counters == {"reply_without_verdict": 1}


def test_rule_changes_apply_to_new_flows_only() -> None:
    rig = Rig()
    old = vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1000, 80))
    assert rig.send([old], VM1.port, PF0).edges == [Next.IPIP_ENCAP]
    rig.rule(VM1, "deny-80", Direction.EGRESS, action=Action.DROP, protocol=Protocol.TCP, dports=(80, 80))
    new = vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1001, 80))
    assert rig.send([old, new], VM1.port, PF0).edges == [Next.IPIP_ENCAP, Next.DROP]


def test_pf_to_vf_uses_the_receivers_ingress_rules() -> None:
    rig = Rig()
    rig.rule(VM1, "https", Direction.INGRESS, protocol=Protocol.TCP, dports=(443, 443))
    pkts = [
        from_uplink(VM1, tcp4(PUBLIC_IP, VM1, 5000, 443)),
        from_uplink(VM1, tcp4(PUBLIC_IP, VM1, 5001, 80)),
    ]
    out = rig.send(pkts, PF0, VM1.port)
    assert out.edges == [Next.TX, Next.DROP]
    assert out.counters == {"accepted": 1, "evaluated": 2, "ingress_no_match": 1}


def test_egress_judges_what_the_vm_sent_ingress_what_it_receives() -> None:
    """SNAT (egress) and DNAT (ingress) rewrite columns before the firewall; rules see each VM's view."""
    rig = Rig()
    rig.rule(VM1, "from-me", Direction.EGRESS, src=f"{VM1.ip}/32", protocol=Protocol.TCP)
    batch = rig.batch([vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 1, 80))], VM1.port, PF0)
    batch.src_lo[:] = int(IPv4Address("172.21.1.1"))  # as snat leaves it: the NAT IP
    assert run_node(rig.node, batch).edges == [Next.IPIP_ENCAP]

    rig.rule(VM2, "to-me", Direction.INGRESS, dst=f"{VM2.ip}/32", protocol=Protocol.TCP)
    batch = rig.batch([from_uplink(VM2, tcp4(PUBLIC_IP, "172.20.0.1", 1, 80))], PF0, VM2.port)
    batch.dst_lo[:] = int(IPv4Address(VM2.ip))  # as dnat leaves it: VIP 172.20.0.1 -> VM2
    assert run_node(rig.node, batch).edges == [Next.TX]


def test_icmp_type_and_code_are_matched() -> None:
    rig = Rig()
    rig.rule(VM3, "echo-only", Direction.INGRESS, protocol=Protocol.ICMP, icmp_type=8, icmp_code=0)
    pkts = [
        from_uplink(VM3, IP(src=PUBLIC_IP, dst=VM3.ip) / ICMP(type=8, code=0, id=1)),
        from_uplink(VM3, IP(src=PUBLIC_IP, dst=VM3.ip) / ICMP(type=8, code=1, id=2)),
        from_uplink(VM3, IP(src=PUBLIC_IP, dst=VM3.ip) / ICMP(type=0, code=0, id=3)),
    ]
    assert rig.send(pkts, PF0, VM3.port).edges == [Next.TX, Next.DROP, Next.DROP]


def test_compat_mode_counts_but_forwards() -> None:
    """--fw-drop-compat: dpservice's behaviour, verdicts computed and cached, nothing dropped."""
    rig = Rig(enforce=False, state=build_state(replace(CONFIG, fw_drop_compat=True)))
    rig.rule(VM1, "fw1-vm1", Direction.EGRESS, protocol=Protocol.TCP, dports=(453, 453))
    out = rig.send([vm_frame(VM1, tcp4(VM1, PUBLIC_IP, 7, 1024))], VM1.port, PF0)
    assert out.edges == [Next.IPIP_ENCAP]
    assert out.counters == {"accepted": 1, "evaluated": 1, "egress_no_match": 1, "not_enforced": 1}
    assert rig.flows.fw_action[int(out.batch.flow[0]), Dir.ORIGINAL] == FwAction.DROP


def test_mixed_batch_of_new_and_known_flows_over_several_interfaces() -> None:
    rig = Rig()
    rig.rule(VM2, "tcp-in", Direction.INGRESS, protocol=Protocol.TCP)
    rig.rule(VM3, "udp-in", Direction.INGRESS, protocol=Protocol.UDP)
    pkts = [
        from_uplink(VM2, tcp4(PUBLIC_IP, VM2, 1, 2)),
        from_uplink(VM3, tcp4(PUBLIC_IP, VM3, 1, 2)),
        from_uplink(VM2, IP(src=PUBLIC_IP, dst=VM2.ip) / UDP(sport=1, dport=2)),
        from_uplink(VM3, IP(src=PUBLIC_IP, dst=VM3.ip) / UDP(sport=1, dport=2)),
        from_uplink(VM2, tcp4(PUBLIC_IP, VM2, 1, 2, "A")),  # same flow as the first, same batch
    ]
    batch = rig.batch(pkts, PF0, -1)
    batch.tx_port = batch.tx_port.copy()
    batch.tx_port[:] = [VM2.port, VM3.port, VM2.port, VM3.port, VM2.port]
    out = run_node(rig.node, batch)
    assert out.edges == [Next.TX, Next.DROP, Next.DROP, Next.TX, Next.TX]


def test_rule_counts_per_interface_for_metrics() -> None:
    """dpservice's test_telemetry_fwall: 0 for every interface, 1 after adding, 0 after deleting."""
    rig = Rig()
    assert rig.node.port_figures() == {"firewall_rules": {VM1.port: 0, VM2.port: 0, VM3.port: 0, VM4.port: 0}}
    rig.rule(VM1, "fw0-vm1", Direction.INGRESS, protocol=Protocol.TCP)
    assert rig.node.port_figures()["firewall_rules"][VM1.port] == 1
    rig.state.apply(cmd.DeleteFirewallRule(VM1.name, "fw0-vm1"))
    assert rig.node.port_figures()["firewall_rules"][VM1.port] == 0


# --- property: the cached verdict equals the reference evaluation -----------------------------------

PREFIXES = [f"{VM1.ip}/32", "10.100.1.0/24", "10.0.0.0/8", "1.2.3.0/24", "0.0.0.0/0"]


@st.composite
def ingress_rules(draw: st.DrawFn) -> list[FirewallRule]:
    rules = []
    for i in range(draw(st.integers(0, 6))):
        protocol = draw(st.sampled_from([None, Protocol.TCP, Protocol.UDP, Protocol.ICMP]))
        low = draw(st.integers(0, 40))
        ports = (
            PortRange(low, low + draw(st.integers(0, 20)))
            if protocol in (Protocol.TCP, Protocol.UDP)
            else PortRange()
        )
        rules.append(
            FirewallRule(
                f"r{i}",
                Direction.INGRESS,
                draw(st.sampled_from(list(Action))),
                draw(st.sampled_from([1, 1000, 1000, 5000])),
                ip_network(draw(st.sampled_from(PREFIXES))),
                ip_network("0.0.0.0/0"),
                protocol,
                dst_ports=ports,
                icmp_type=draw(st.sampled_from([-1, 8])) if protocol is Protocol.ICMP else -1,
            )
        )
    return rules


@settings(max_examples=60, deadline=None)
@given(
    ingress_rules(),
    st.lists(st.tuples(st.sampled_from(["tcp", "udp", "icmp"]), st.integers(0, 70)), min_size=1, max_size=8),
)
def test_cached_verdict_equals_the_reference(
    rules: list[FirewallRule], packets: list[tuple[str, int]]
) -> None:
    """Random ingress rules on VM2; VM1's first packets get the reference verdict, and so do VM2's replies."""
    rig = Rig()
    for rule in rules:
        rig.state.apply(cmd.CreateFirewallRule(VM2.name, rule, rule.source.network_address, IPv4Address(0)))
    first, replies, expected = [], [], []
    for i, (proto, port) in enumerate(packets):
        sport = 30000 + i  # one flow per packet
        if proto == "icmp":
            first.append(vm_frame(VM1, IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8, id=sport)))
            replies.append(vm_frame(VM2, IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=0, id=sport)))
            flow = Flow(IPv4Address(VM1.ip), IPv4Address(VM2.ip), Protocol.ICMP, icmp_type=8)
        else:
            l4 = TCP(sport=sport, dport=port) if proto == "tcp" else UDP(sport=sport, dport=port)
            back = TCP(sport=port, dport=sport) if proto == "tcp" else UDP(sport=port, dport=sport)
            first.append(vm_frame(VM1, IP(src=VM1.ip, dst=VM2.ip) / l4))
            replies.append(vm_frame(VM2, IP(src=VM2.ip, dst=VM1.ip) / back))
            number = Protocol.TCP if proto == "tcp" else Protocol.UDP
            flow = Flow(IPv4Address(VM1.ip), IPv4Address(VM2.ip), number, sport, port)
        verdict, _ = reference_verdict(rules, flow)
        expected.append(Next.TX if verdict is Verdict.ACCEPT else Next.DROP)
    assert rig.send(first, VM1.port, VM2.port).edges == expected
    assert rig.send(replies, VM2.port, VM1.port).edges == expected  # the reply: the cached verdict
