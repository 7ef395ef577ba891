"""conntrack (protocol gate and dispatch): DHCP steering, protocol and ICMP filters, uplink dispatch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.conntrack import Conntrack, Next
from kubevpc_agent.tables.conntrack import Dir, FlowTable, TcpState
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.nat import NatView
from kubevpc_agent.tables.port_table import PortTable
from testkit.dp_topology import PF0, PORTS, VF0, VF1, VM1, VM2
from testkit.nat_rig import NatRig
from testkit.overlay import ROUTER_MAC, build_state, receive, run_node, underlay_of


def vm(payload: object) -> bytes:
    return bytes(Ether(src=VM1.mac, dst="66:66:66:66:66:00") / payload)


V4 = IP(src=VM1.ip, dst=VM2.ip)
V6 = IPv6(src=VM1.ipv6, dst="2000:100:1::2")


@dataclass
class Row:
    description: str
    frame: bytes
    edge: Next
    counters: dict[str, int] = field(default_factory=dict)
    port: int = VF0
    vnf_type: VnfType = VnfType.UNDEFINED  # what ipip_decap would have set (uplink rows)


ROWS = [
    Row(
        "DHCPv4 request goes to dhcp",
        vm(IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)),
        Next.DHCP,
    ),
    Row(
        "DHCPv6 solicit goes to dhcpv6",
        vm(IPv6(src="fe80::1:2", dst="ff02::1:2") / UDP(sport=546, dport=547)),
        Next.DHCPV6,
    ),
    Row("UDP to 547 over IPv4 is ordinary traffic", vm(V4 / UDP(dport=547)), Next.DNAT),
    Row("UDP to 67 over IPv6 is ordinary traffic", vm(V6 / UDP(dport=67)), Next.DNAT),
    Row("TCP from a VM is routed (IPv4)", vm(V4 / TCP()), Next.DNAT),
    Row("TCP from a VM is routed (IPv6)", vm(V6 / TCP()), Next.DNAT),
    Row("echo request", vm(V4 / ICMP(type=8)), Next.DNAT),
    Row("echo reply", vm(V4 / ICMP(type=0)), Next.DNAT),
    Row(
        "port unreachable (3/3) about no tracked flow is dropped",
        vm(V4 / ICMP(type=3, code=3) / IP() / UDP()),
        Next.DROP,
        {"icmp_error_no_flow": 1},
    ),
    Row(
        "fragmentation needed (3/4) about no tracked flow is dropped",
        vm(V4 / ICMP(type=3, code=4) / IP() / UDP()),
        Next.DROP,
        {"icmp_error_no_flow": 1},
    ),
    Row(
        "host unreachable (3/1) is dropped",
        vm(V4 / ICMP(type=3, code=1) / IP() / UDP()),
        Next.DROP,
        {"icmp_type_dropped": 1},
    ),
    Row(
        "time exceeded is dropped", vm(V4 / ICMP(type=11) / IP() / UDP()), Next.DROP, {"icmp_type_dropped": 1}
    ),
    Row("timestamp request is dropped", vm(V4 / ICMP(type=13)), Next.DROP, {"icmp_type_dropped": 1}),
    Row("every ICMPv6 type is tracked", vm(V6 / ICMPv6DestUnreach() / IPv6()), Next.DNAT),
    Row(
        "GRE is not forwarded",
        vm(IP(src=VM1.ip, dst=VM2.ip, proto=47) / (b"\x00" * 4)),
        Next.DROP,
        {"unsupported_protocol": 1},
    ),
    Row(
        "SCTP over IPv6 is not forwarded",
        vm(IPv6(src=VM1.ipv6, nh=132) / (b"\x00" * 12)),
        Next.DROP,
        {"unsupported_protocol": 1},
    ),
]

UPLINK_ROWS = [
    Row(
        "uplink traffic for an interface goes to the firewall",
        vm(V4 / TCP()),
        Next.FIREWALL,
        port=PF0,
        vnf_type=VnfType.INTERFACE_IP,
    ),
    Row(
        "uplink traffic for an alias prefix goes to the firewall",
        vm(V6 / UDP()),
        Next.FIREWALL,
        port=PF0,
        vnf_type=VnfType.ALIAS_PFX,
    ),
    Row(
        "uplink traffic for an LB prefix goes to the firewall",
        vm(V4 / UDP()),
        Next.FIREWALL,
        port=PF0,
        vnf_type=VnfType.LB_ALIAS_PFX,
    ),
    Row("uplink traffic for a VIP goes to dnat", vm(V4 / TCP()), Next.DNAT, port=PF0, vnf_type=VnfType.VIP),
    Row(
        "uplink traffic for a NAT slice goes to dnat",
        vm(V4 / TCP(sport=443, dport=100)),
        Next.DNAT,
        port=PF0,
        vnf_type=VnfType.NAT,
    ),
    Row(
        "uplink traffic for a load balancer goes to lb",
        vm(V4 / UDP()),
        Next.LB,
        port=PF0,
        vnf_type=VnfType.LB,
    ),
    Row(
        "uplink traffic with an undefined underlay type",
        vm(V4 / TCP()),
        Next.DROP,
        {"undefined_underlay": 1},
        port=PF0,
    ),
    Row(
        "DHCP through an uplink is dropped (dpservice: dhcp has no edge for it)",
        vm(V4 / UDP(sport=68, dport=67)),
        Next.DROP,
        {"dhcp_from_uplink": 1},
        port=PF0,
        vnf_type=VnfType.INTERFACE_IP,
    ),
]


@pytest.fixture(scope="module")
def nodes() -> tuple[Cls, Conntrack]:
    state = build_state()
    ports = PortTable(state)
    return Cls(ports), Conntrack(ports, FlowTable(1024), NatView(state))


def classified(nodes: tuple[Cls, Conntrack], rows: list[Row]) -> tuple[Conntrack, Batch]:
    """A batch with the columns cls fills; uplink rows get rx_port/vnf_type as after ipip_decap."""
    cls, conntrack = nodes
    batch = receive([r.frame for r in rows], VF0)
    assert set(run_node(cls, batch).edges) != {0}
    batch.rx_port = np.array([r.port for r in rows], dtype=np.int16)
    batch.vnf_type = np.array([r.vnf_type for r in rows], dtype=np.uint8)
    return conntrack, batch


@pytest.mark.parametrize("row", ROWS + UPLINK_ROWS, ids=[r.description for r in ROWS + UPLINK_ROWS])
def test_dispatch(nodes: tuple[Cls, Conntrack], row: Row) -> None:
    conntrack, batch = classified(nodes, [row])
    run = run_node(conntrack, batch)
    assert run.edges == [row.edge]
    assert drops(run.counters) == row.counters


def test_mixed_batch(nodes: tuple[Cls, Conntrack]) -> None:
    rows = ROWS + UPLINK_ROWS
    conntrack, batch = classified(nodes, rows)
    run = run_node(conntrack, batch)
    assert run.edges == [r.edge for r in rows]
    expected: dict[str, int] = {}
    for r in rows:
        for k, v in r.counters.items():
            expected[k] = expected.get(k, 0) + v
    assert drops(run.counters) == expected


def drops(counters: dict[str, int]) -> dict[str, int]:
    """The drop-reason deltas (flow figures such as ``flows_created`` left out)."""
    return {k: v for k, v in counters.items() if not k.startswith("flows_")}


# --- flows (tables/conntrack.py through the node) ------------------------------------------------


def tracked(rig: NatRig, frames: list[bytes], port: int) -> tuple[list[int], Batch]:
    batch = rig.upto(rig.conntrack, frames, port)
    return run_node(rig.conntrack, batch).edges, batch


def test_flow_columns_and_both_directions() -> None:
    rig = NatRig()
    there = vm(IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=1000, dport=80, flags="S"))
    back = bytes(
        Ether(src=VM2.mac, dst=PORTS[VF1].mac) / IP(src=VM2.ip, dst=VM1.ip) / TCP(sport=80, dport=1000)
    )
    edges, first = tracked(rig, [there], VF0)
    assert edges == [Next.DNAT] and int(first.flow_dir[0]) == Dir.ORIGINAL
    _, reply = tracked(rig, [back], VF1)
    assert int(reply.flow[0]) == int(first.flow[0]) and int(reply.flow_dir[0]) == Dir.REPLY
    assert rig.conntrack.counter_values()["flows_created"] == 1
    assert rig.flows.tcp_state[int(first.flow[0])] == TcpState.NEW_SYN


def test_vm_behind_a_nat_marks_its_key_nat() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    _, batch = tracked(rig, [vm(IP(src=VM1.ip, dst="45.86.6.6") / UDP())], VF0)
    assert int(batch.vnf_type[0]) == VnfType.NAT
    _, other = tracked(
        rig, [bytes(Ether(src=VM2.mac, dst=PORTS[VF1].mac) / IP(src=VM2.ip, dst="45.86.6.6") / UDP())], VF1
    )
    assert int(other.vnf_type[0]) == VnfType.UNDEFINED


def from_vm2(payload: object) -> bytes:
    return bytes(Ether(src=VM2.mac, dst=PORTS[VF1].mac) / payload)


def test_east_west_flows_of_a_vm_behind_a_nat_match_their_replies_on_one_node() -> None:
    """Ours: the key type is NAT when either end is a local interface with a NAT slice."""
    rig = NatRig()
    rig.add_nat(VM1)
    _, out = tracked(rig, [vm(IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8, id=7))], VF0)
    _, back = tracked(rig, [from_vm2(IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=0, id=7))], VF1)
    assert int(back.flow[0]) == int(out.flow[0]) and int(back.flow_dir[0]) == Dir.REPLY
    _, into = tracked(rig, [from_vm2(IP(src=VM2.ip, dst=VM1.ip) / TCP(sport=2000, dport=80, flags="S"))], VF1)
    assert int(into.vnf_type[0]) == VnfType.NAT  # VM2 has no NAT, but it talks to VM1
    _, answer = tracked(rig, [vm(IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=80, dport=2000, flags="SA"))], VF0)
    assert int(answer.flow[0]) == int(into.flow[0]) and int(answer.flow_dir[0]) == Dir.REPLY
    assert rig.conntrack.counter_values()["flows_created"] == 2


def test_reply_from_another_node_joins_the_flow_of_a_vm_behind_a_nat() -> None:
    """A VM with a NAT slice pings a VM on another node: the reply comes to its interface underlay."""
    rig = NatRig()
    rig.add_nat(VM1)
    remote = "10.100.9.9"
    _, out = tracked(rig, [vm(IP(src=VM1.ip, dst=remote) / ICMP(type=8, id=9))], VF0)
    reply = Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac) / IPv6(
        src="fc00:2::64", dst=str(underlay_of(VM1)), nh=4
    )
    _, back = tracked(rig, [bytes(reply / IP(src=remote, dst=VM1.ip) / ICMP(type=0, id=9))], PF0)
    assert int(back.flow[0]) == int(out.flow[0]) and int(back.flow_dir[0]) == Dir.REPLY
    assert int(back.vnf_type[0]) == VnfType.INTERFACE_IP  # the batch keeps the decapsulated type


def test_icmp_error_joins_the_flow_it_reports_on() -> None:
    rig = NatRig()
    sent = IP(src=VM1.ip, dst=VM2.ip) / UDP(sport=3333, dport=53)
    _, first = tracked(rig, [vm(sent)], VF0)
    error = IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=3, code=3) / bytes(sent)[:28]
    edges, err = tracked(rig, [bytes(Ether(src=VM2.mac, dst=PORTS[VF1].mac) / error)], VF1)
    assert edges == [Next.DNAT]
    assert int(err.flow[0]) == int(first.flow[0]) and int(err.flow_dir[0]) == Dir.REPLY
    assert rig.conntrack.counter_values()["flows_created"] == 1


def test_truncated_icmp_error_is_dropped() -> None:
    rig = NatRig()
    error = IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=3, code=3) / b"\x45\x00\x00"
    edges, _ = tracked(rig, [bytes(Ether(src=VM2.mac, dst=PORTS[VF1].mac) / error)], VF1)
    assert edges == [Next.DROP]
    assert rig.conntrack.counter_values()["bad_icmp_error"] == 1


def test_full_table_drops_new_flows_and_keeps_established_ones() -> None:
    rig = NatRig(capacity=2)
    old = [vm(IP(src=VM1.ip, dst=VM2.ip) / UDP(sport=s, dport=53)) for s in (1, 2)]
    assert tracked(rig, old, VF0)[0] == [Next.DNAT, Next.DNAT]
    flood = [vm(IP(src=VM1.ip, dst=VM2.ip) / UDP(sport=s, dport=53)) for s in range(10, 40)]
    assert set(tracked(rig, flood, VF0)[0]) == {Next.DROP}
    assert rig.conntrack.counter_values()["table_full"] == 30
    assert tracked(rig, old, VF0)[0] == [Next.DNAT, Next.DNAT]


def test_tcp_handshake_in_one_batch_is_applied_in_order() -> None:
    rig = NatRig()
    syn = vm(IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=5, dport=6, flags="S"))
    ack = vm(IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=5, dport=6, flags="A"))
    _, first = tracked(rig, [syn], VF0)
    synack = bytes(
        Ether(src=VM2.mac, dst=PORTS[VF1].mac)
        / IP(src=VM2.ip, dst=VM1.ip)
        / TCP(sport=6, dport=5, flags="SA")
    )
    tracked(rig, [synack], VF1)
    tracked(rig, [ack, ack], VF0)
    flow = int(first.flow[0])
    assert rig.flows.tcp_state[flow] == TcpState.ESTABLISHED
    assert rig.flows.timeout[flow] == 86_400


def test_ageing_counts_expired_flows() -> None:
    rig = NatRig()
    tracked(rig, [vm(IP(src=VM1.ip, dst=VM2.ip) / UDP(sport=1, dport=2))], VF0)
    rig.conntrack.age(rig.now + 29)
    assert rig.flows.count == 1
    rig.conntrack.age(rig.now + 31)
    assert rig.flows.count == 0
    assert rig.conntrack.counter_values()["flows_expired"] == 1
