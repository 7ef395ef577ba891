"""cls: one row per frame kind: the edge, the drop reason, and the columns later nodes read."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv6Address

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6ND_RS, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from kubevpc_agent.graph.batch import L3
from kubevpc_agent.nodes.cls import Cls, Next
from kubevpc_agent.tables.port_table import PortTable
from testkit.dp_topology import PF0, PF1, VF0, VF2, VF3, VM1, VM2, VM3
from testkit.overlay import REMOTE_UNDERLAY, ROUTER_MAC, build_state, receive, run_node, underlay_of

VM_MAC, PORT_MAC = VM1.mac, "66:66:66:66:66:00"
UL_SRC, UL_DST = str(REMOTE_UNDERLAY), str(underlay_of(VM1))


def vm(payload: object, src: str = VM_MAC) -> bytes:
    return bytes(Ether(src=src, dst=PORT_MAC) / payload)


def uplink(payload: object) -> bytes:
    return bytes(Ether(src=ROUTER_MAC, dst="22:22:22:22:22:00") / payload)


def tunnel(inner: object, nh: int) -> bytes:
    return uplink(IPv6(src=UL_SRC, dst=UL_DST, nh=nh) / inner)


def patched(frame: bytes, at: int, value: bytes) -> bytes:
    return frame[:at] + value + frame[at + len(value) :]


V4_TCP = vm(IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=4321, dport=80) / b"x")
V4_UDP = vm(IP(src=VM1.ip, dst="8.8.8.8") / UDP(sport=5000, dport=53) / b"q")
INNER_V4 = IP(src="10.200.1.7", dst=VM1.ip) / UDP(sport=53, dport=5000) / b"answer"
INNER_V6 = IPv6(src="2000:200::7", dst=VM1.ipv6) / TCP(sport=443, dport=40000, flags="SA")


@dataclass
class Row:
    description: str
    port: int
    frame: bytes
    edge: Next
    counters: dict[str, int] = field(default_factory=dict)
    columns: dict[str, int] = field(default_factory=dict)  # expected column values
    length: int | None = None  # expected frame length after trimming (default: unchanged)


ROWS = [
    Row(
        "VM IPv4 TCP goes to conntrack with its 5-tuple and VNI",
        VF0,
        V4_TCP,
        Next.CONNTRACK,
        columns={
            "l3": L3.IPV4,
            "proto": 6,
            "src_lo": 0x0A640101,
            "dst_lo": 0x0A640102,
            "src_hi": 0,
            "sport": 4321,
            "dport": 80,
            "vni": 100,
        },
    ),
    Row(
        "Ethernet padding is trimmed to the IPv4 total length",
        VF0,
        V4_UDP + b"\x00" * (60 - len(V4_UDP)),
        Next.CONNTRACK,
        columns={"proto": 17, "dport": 53},
        length=len(V4_UDP),
    ),
    Row(
        "ICMP echo: sport = type, dport = identifier",
        VF2,
        vm(IP(src=VM3.ip, dst="10.200.1.9") / ICMP(type=8, id=0xBEEF, seq=3), src=VM3.mac),
        Next.CONNTRACK,
        columns={"proto": 1, "sport": 8, "dport": 0xBEEF, "vni": 200},
    ),
    Row(
        "VM IPv6 UDP goes to conntrack with both address halves",
        VF0,
        vm(IPv6(src=VM1.ipv6, dst="2000:100:1::2") / UDP(sport=546, dport=547) / b"s"),
        Next.CONNTRACK,
        columns={
            "l3": L3.IPV6,
            "proto": 17,
            "src_hi": 0x2000010000010000,
            "src_lo": 1,
            "dst_lo": 2,
            "sport": 546,
            "dport": 547,
        },
    ),
    Row(
        "neighbour solicitation from a VM goes to ipv6_nd",
        VF0,
        vm(IPv6(src=VM1.ipv6, dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="fe80::1")),
        Next.IPV6_ND,
        columns={"proto": 58, "sport": 135},
    ),
    Row(
        "router solicitation from a VM goes to ipv6_nd",
        VF0,
        vm(IPv6(src="fe80::1:2", dst="ff02::2", hlim=255) / ICMPv6ND_RS()),
        Next.IPV6_ND,
    ),
    Row(
        "ICMPv6 echo from a VM is traffic, not ND",
        VF0,
        vm(IPv6(src=VM1.ipv6, dst="2000:100:1::2") / ICMPv6EchoRequest(id=7)),
        Next.CONNTRACK,
        columns={"sport": 128, "dport": 7},
    ),
    Row(
        "ARP from a VM goes to arp",
        VF0,
        vm(ARP(psrc=VM1.ip, pdst="169.254.0.1")),
        Next.ARP,
        columns={"l3": L3.ARP},
    ),
    Row(
        "ARP-shaped payload under another ether type still goes to arp (dpservice checks only the shape)",
        VF0,
        patched(vm(ARP(psrc=VM1.ip, pdst="169.254.0.1")), 12, b"\x12\x34"),
        Next.ARP,
    ),
    Row("ARP on an uplink goes to arp too (arp drops it)", PF0, uplink(ARP(pdst="169.254.0.1")), Next.ARP),
    Row("ARP shorter than 28 bytes", VF0, vm(ARP())[:30], Next.DROP, {"truncated_arp": 1}),
    Row("a frame shorter than Ethernet", VF0, b"\x01" * 10, Next.DROP, {"runt": 1}),
    Row("LLDP", VF0, patched(vm(b"\x00" * 40), 12, b"\x88\xcc"), Next.DROP, {"unknown_ethertype": 1}),
    Row(
        "VLAN-tagged IPv4",
        VF0,
        vm(Dot1Q(vlan=5) / IP(dst=VM2.ip) / UDP()),
        Next.DROP,
        {"unknown_ethertype": 1},
    ),
    Row("IPv4 on an uplink", PF0, uplink(IP(dst=VM1.ip) / UDP()), Next.DROP, {"ipv4_from_uplink": 1}),
    Row(
        "neighbour solicitation on an uplink",
        PF1,
        uplink(IPv6(src="fe80::9", dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt=UL_DST)),
        Next.DROP,
        {"nd_from_uplink": 1},
    ),
    Row(
        "plain IPv6 on an uplink",
        PF0,
        uplink(IPv6(src=UL_SRC, dst=UL_DST) / UDP()),
        Next.DROP,
        {"not_tunnelled": 1},
    ),
    Row(
        "IPv4-in-IPv6 on an uplink goes to ipip_decap with the inner packet's columns",
        PF0,
        tunnel(INNER_V4, 4),
        Next.IPIP_DECAP,
        columns={
            "l3": L3.IPV4,
            "proto": 17,
            "src_lo": 0x0AC80107,
            "dst_lo": 0x0A640101,
            "sport": 53,
            "dport": 5000,
            "vni": 0,
        },
    ),
    Row(
        "IPv6-in-IPv6 on pf1 goes to ipip_decap with the inner packet's columns",
        PF1,
        tunnel(INNER_V6, 41),
        Next.IPIP_DECAP,
        columns={
            "l3": L3.IPV6,
            "proto": 6,
            "src_hi": 0x2000020000000000,
            "src_lo": 7,
            "sport": 443,
            "dport": 40000,
        },
    ),
    Row(
        "a tunnel's padding is trimmed to the outer payload",
        PF0,
        tunnel(IP(src="10.200.1.7", dst=VM1.ip) / ICMP(), 4) + b"\x00" * 6,
        Next.IPIP_DECAP,
        length=14 + 40 + 28,
    ),
    Row("IPv4 header cut short", VF0, V4_TCP[: 14 + 12], Next.DROP, {"truncated_ipv4": 1}),
    Row(
        "IPv4 header claiming version 6", VF0, patched(V4_TCP, 14, b"\x65"), Next.DROP, {"bad_ipv4_header": 1}
    ),
    Row("IPv4 IHL below 5", VF0, patched(V4_TCP, 14, b"\x44"), Next.DROP, {"bad_ipv4_header": 1}),
    Row(
        "IPv4 with options",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, options=b"\x01\x01\x01\x00") / UDP()),
        Next.DROP,
        {"ipv4_options": 1},
    ),
    Row(
        "IPv4 total length beyond the frame",
        VF0,
        patched(V4_TCP, 16, b"\x05\xdc"),
        Next.DROP,
        {"bad_ipv4_length": 1},
    ),
    Row(
        "IPv4 total length below the header",
        VF0,
        patched(V4_TCP, 16, b"\x00\x13"),
        Next.DROP,
        {"bad_ipv4_length": 1},
    ),
    Row(
        "first IPv4 fragment (MF)",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, flags="MF") / UDP() / (b"a" * 8)),
        Next.DROP,
        {"ipv4_fragment": 1},
    ),
    Row(
        "later IPv4 fragment (offset)",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, frag=3) / (b"a" * 16)),
        Next.DROP,
        {"ipv4_fragment": 1},
    ),
    Row(
        "TCP shorter than its 20-byte header",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, proto=6) / (b"\x00" * 12)),
        Next.DROP,
        {"truncated_l4": 1},
    ),
    Row(
        "ICMP shorter than 8 bytes",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, proto=1) / b"\x08\x00"),
        Next.DROP,
        {"truncated_l4": 1},
    ),
    Row(
        "another IP protocol passes cls (conntrack decides)",
        VF0,
        vm(IP(src=VM1.ip, dst=VM2.ip, proto=47) / (b"\x00" * 4)),
        Next.CONNTRACK,
        columns={"proto": 47, "sport": 0, "dport": 0},
    ),
    Row(
        "IPv6 header cut short",
        VF0,
        vm(IPv6(src=VM1.ipv6) / UDP())[: 14 + 30],
        Next.DROP,
        {"truncated_ipv6": 1},
    ),
    Row(
        "IPv6 header claiming version 4",
        VF0,
        patched(vm(IPv6() / UDP()), 14, b"\x40"),
        Next.DROP,
        {"bad_ipv6_header": 1},
    ),
    Row(
        "IPv6 payload length beyond the frame",
        VF0,
        patched(vm(IPv6() / UDP()), 18, b"\x01\x00"),
        Next.DROP,
        {"bad_ipv6_length": 1},
    ),
    Row(
        "tunnel whose outer payload length overruns the frame",
        PF0,
        patched(tunnel(INNER_V4, 4), 18, b"\x05\x00"),
        Next.DROP,
        {"bad_ipv6_length": 1},
    ),
    Row(
        "tunnel whose inner IPv4 is cut short",
        PF0,
        patched(tunnel(INNER_V4, 4), 18, b"\x00\x10")[: 14 + 40 + 16],
        Next.DROP,
        {"truncated_ipv4": 1},
    ),
    Row(
        "tunnel announcing IPv6 inside but carrying IPv4",
        PF0,
        tunnel(INNER_V4 / (b"x" * 40), 41),
        Next.DROP,
        {"bad_ipv6_header": 1},
    ),
    Row(
        "tunnel with a fragment inside",
        PF0,
        tunnel(IP(dst=VM1.ip, flags="MF") / UDP(), 4),
        Next.DROP,
        {"ipv4_fragment": 1},
    ),
]


@pytest.fixture(scope="module")
def cls() -> Cls:
    return Cls(PortTable(build_state()))


@pytest.mark.parametrize("row", ROWS, ids=[r.description for r in ROWS])
def test_classify(cls: Cls, row: Row) -> None:
    batch = receive([row.frame], row.port)
    run = run_node(cls, batch)
    assert run.edges == [row.edge]
    assert run.counters == row.counters
    for name, value in row.columns.items():
        assert int(getattr(batch, name)[0]) == value, name
    assert int(batch.length[0]) == (row.length if row.length is not None else len(row.frame))
    if row.edge != Next.DROP:
        assert run.frames[0] == row.frame[: int(batch.length[0])], "cls never rewrites bytes"


def test_vf_without_interface_receives_nothing() -> None:
    cls = Cls(PortTable(build_state(vms=(VM1,))))  # VF3 has no interface
    run = run_node(cls, receive([V4_TCP, vm(ARP())], VF3))
    assert run.edges == [Next.DROP, Next.DROP]
    assert run.counters == {"port_not_attached": 2}


def test_a_mixed_batch_is_classified_row_by_row(cls: Cls) -> None:
    """The vector code must not mix rows: every frame of ROWS from one port, in one batch."""
    for port in (VF0, PF0):
        rows = [r for r in ROWS if r.port == port]
        run = run_node(cls, receive([r.frame for r in rows], port))
        assert run.edges == [r.edge for r in rows]
        for i, row in enumerate(rows):
            for name, value in row.columns.items():
                assert int(getattr(run.batch, name)[i]) == value, (row.description, name)


def test_interface_vni_follows_state_changes() -> None:
    state = build_state(vms=(VM1,))
    cls = Cls(PortTable(state))
    assert run_node(cls, receive([V4_TCP], VF0)).batch.vni.tolist() == [100]
    from kubevpc_agent.tables import commands as cmd

    state.apply(cmd.DeleteInterface(VM1.name))
    state.apply(cmd.CreateInterface(VM1.name, "net_tap2", 777, None, None, IPv6Address("fc00:1::d0:0:0:9")))
    assert run_node(cls, receive([V4_TCP], VF0)).batch.vni.tolist() == [777]
