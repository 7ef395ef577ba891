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
from kubevpc_agent.tables.conntrack import FlowTable
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.nat import NatView
from kubevpc_agent.tables.port_table import PortTable
from testkit.dp_topology import PF0, VF0, VM1, VM2
from testkit.overlay import build_state, receive, run_node


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
    Row("uplink traffic for a load balancer goes to lb", vm(V4 / UDP()), Next.LB, port=PF0, vnf_type=VnfType.LB),
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
