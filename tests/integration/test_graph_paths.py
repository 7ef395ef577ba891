"""Whole-pipeline paths over memory ports (VPP's send_and_expect): what leaves which port, byte for byte.

dpservice's main paths (DPSERVICE.md §3.2) without network functions: VM to VM on one node, VM to a
remote node through the IP-in-IPv6 underlay, the underlay back to a VM, for both overlay families;
VPC isolation with overlapping addresses; WCMP over two uplinks. Every frame that leaves passes the
shared checksum/length validator (``Harness.send``), and every frame that enters is accounted for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.state import AgentState
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VF0, VF1, VF3, VM1, VM2, VM3, VM4, Vm
from testkit.overlay import REMOTE_UNDERLAY, ROUTER_MAC, Harness, add_route, build_state, underlay_of

REMOTE_V4, REMOTE_V6 = "192.168.10.7", "2001:db8:10::7"


def from_vm(vm_mac: str, port: int, payload: Packet) -> bytes:
    return bytes(Ether(src=vm_mac, dst=PORTS[port].mac) / payload)


def from_underlay(dst: IPv6Address, inner: Packet, port: int = PF0) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(src=ROUTER_MAC, dst=PORTS[port].mac)
        / IPv6(src=str(REMOTE_UNDERLAY), dst=str(dst), nh=nh)
        / inner
    )


def conserved(h: Harness, sent: int) -> None:
    """Every frame that entered was sent or dropped, and no pool slot leaked."""
    c = h.counters()
    out = c.get("tx.sent", 0) + c.get("tx.port_refused", 0) + c.get("tx.no_tx_port", 0)
    assert out + c.get("drop.dropped", 0) == sent, c
    assert h.pool.available == h.pool.capacity


@pytest.fixture
def harness() -> Harness:
    state = build_state()
    add_route(state, 100, "192.168.0.0/16")
    add_route(state, 100, "2001:db8::/32")
    return Harness(state)


@pytest.mark.parametrize(
    "payload",
    [
        IP(src=VM1.ip, dst=VM2.ip, ttl=7) / TCP(sport=40000, dport=80, flags="S"),
        IP(src=VM1.ip, dst=VM2.ip) / UDP(sport=5353, dport=53) / b"query",
        IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8, id=9, seq=1) / b"ping",
        IPv6(src=VM1.ipv6, dst=VM2.ipv6, hlim=3) / TCP(sport=40000, dport=443, flags="S"),
        IPv6(src=VM1.ipv6, dst=VM2.ipv6) / ICMPv6EchoRequest(id=4),
    ],
    ids=["TCP", "UDP", "ICMP echo", "IPv6 TCP", "ICMPv6 echo"],
)
def test_vm_to_vm_on_one_node(harness: Harness, payload: Packet) -> None:
    out = harness.send(VF0, [from_vm(VM1.mac, VF0, payload)])
    # dst = VM2's learned MAC, src = VF1's own MAC, the packet itself unchanged (no TTL decrement)
    assert out == {VF1: [bytes(Ether(dst=VM2.mac, src=PORTS[VF1].mac) / payload)]}
    conserved(harness, 1)


@pytest.mark.parametrize(
    "inner",
    [
        IP(src=VM1.ip, dst=REMOTE_V4, ttl=64) / TCP(sport=40000, dport=22, flags="S"),
        IPv6(src=VM1.ipv6, dst=REMOTE_V6, hlim=64) / UDP(sport=1, dport=2) / (b"x" * 100),
    ],
    ids=["IPv4 overlay (next header 4)", "IPv6 overlay (next header 41)"],
)
def test_vm_to_remote_node_is_encapsulated(harness: Harness, inner: Packet) -> None:
    out = harness.send(VF0, [from_vm(VM1.mac, VF0, inner)])
    outer = Ether(dst=ROUTER_MAC, src=PORTS[PF0].mac) / IPv6(
        tc=0,
        fl=0,
        hlim=64,
        nh=4 if isinstance(inner, IP) else 41,
        src=str(underlay_of(VM1)),
        dst=str(REMOTE_UNDERLAY),
    )
    assert out == {PF0: [bytes(outer / inner)]}
    assert harness.counters()["ipip_encap.encapsulated"] == 1
    conserved(harness, 1)


@pytest.mark.parametrize(
    "vm, inner",
    [
        (VM1, IP(src=REMOTE_V4, dst=VM1.ip) / TCP(sport=22, dport=40000, flags="SA")),
        (VM3, IPv6(src=REMOTE_V6, dst=VM3.ipv6) / UDP(sport=2, dport=1) / b"y"),
    ],
    ids=["IPv4 to VM1", "IPv6 to VM3"],
)
def test_underlay_to_vm_is_decapsulated(harness: Harness, vm: Vm, inner: Packet) -> None:
    out = harness.send(PF1, [from_underlay(underlay_of(vm), inner, PF1)])
    assert out == {vm.port: [bytes(Ether(dst=vm.mac, src=PORTS[vm.port].mac) / inner)]}
    conserved(harness, 1)


def test_round_trip_through_two_nodes() -> None:
    """Node A encapsulates, node B (the same code, other state) decapsulates to its VM."""
    node_b_vm = replace(VM2, ip="10.100.9.9", ipv6="2000:100:9::9")
    a = build_state(vms=(VM1,))
    b = AgentState(replace(CONFIG, underlay_ipv6=IPv6Address("fc00:2::1")))
    b.apply(
        cmd.CreateInterface(
            node_b_vm.name,
            PORTS[VF1].device,
            100,
            IPv4Address(node_b_vm.ip),
            IPv6Address(node_b_vm.ipv6),
            REMOTE_UNDERLAY,
        )
    )
    add_route(a, 100, f"{node_b_vm.ip}/32", REMOTE_UNDERLAY)
    add_route(b, 100, f"{VM1.ip}/32", underlay_of(VM1))
    node_a, node_b = Harness(a), Harness(b)
    packet = IP(src=VM1.ip, dst=node_b_vm.ip) / TCP(sport=1234, dport=80, flags="S") / b"hello"
    wire = node_a.send(VF0, [from_vm(VM1.mac, VF0, packet)])[PF0]
    delivered = node_b.send(PF0, wire)
    assert delivered == {VF1: [bytes(Ether(dst=VM2.mac, src=PORTS[VF1].mac) / packet)]}
    reply = IP(src=node_b_vm.ip, dst=VM1.ip) / TCP(sport=80, dport=1234, flags="SA")
    back = node_b.send(VF1, [from_vm(VM2.mac, VF1, reply)])[PF0]
    assert node_a.send(PF0, back) == {VF0: [bytes(Ether(dst=VM1.mac, src=PORTS[VF0].mac) / reply)]}


def test_vpcs_with_overlapping_addresses_stay_apart() -> None:
    """VNI 100 and 200 both use 10.0.0.1 and 10.0.0.2; nothing crosses, on one node or via the underlay."""
    vms = [
        replace(VM1, ip="10.0.0.1", ipv6="fd00::1", vni=100),
        replace(VM2, ip="10.0.0.2", ipv6="fd00::2", vni=100),
        replace(VM3, ip="10.0.0.1", ipv6="fd00::1", vni=200),
        replace(VM4, ip="10.0.0.2", ipv6="fd00::2", vni=200),
    ]
    state = build_state(vms=vms)
    add_route(state, 100, "172.16.0.0/12", IPv6Address("fc00:100::1"))
    add_route(state, 200, "172.16.0.0/12", IPv6Address("fc00:200::1"))
    h = Harness(state)
    sent = 0
    for src_vm, dst_port in ((vms[0], VF1), (vms[2], VF3)):
        for payload in (
            IP(src="10.0.0.1", dst="10.0.0.2") / UDP(),
            IPv6(src="fd00::1", dst="fd00::2") / UDP(),
        ):
            out = h.send(src_vm.port, [from_vm(src_vm.mac, src_vm.port, payload)])
            assert list(out) == [dst_port], (src_vm.vni, payload.summary())
            sent += 1
        # the same remote prefix goes to each VPC's own next hop
        out = h.send(
            src_vm.port, [from_vm(src_vm.mac, src_vm.port, IP(src="10.0.0.1", dst="172.16.1.1") / UDP())]
        )
        assert Ether(out[PF0][0])[IPv6].dst == f"fc00:{src_vm.vni}::1"
        sent += 1
    # underlay traffic for each VM lands on that VM's port only, whatever the inner destination
    for vm in vms:
        out = h.send(PF0, [from_underlay(underlay_of(vm), IP(src="172.16.1.1", dst="10.0.0.1") / UDP())])
        assert list(out) == [vm.port]
        sent += 1
    conserved(h, sent)


def test_wcmp_spreads_flows_over_both_uplinks() -> None:
    state = build_state(replace(CONFIG, wcmp_percent=70))
    add_route(state, 100, "192.168.0.0/16")
    h = Harness(state)
    frames = [
        from_vm(VM1.mac, VF0, IP(src=VM1.ip, dst=REMOTE_V4) / UDP(sport=s, dport=53))
        for s in range(2000, 4000)
    ]
    out = h.send(VF0, frames)
    shares = Counter({port: len(f) for port, f in out.items()})
    assert set(shares) == {PF0, PF1}
    assert abs(shares[PF0] / len(frames) - 0.7) < 0.05
    # a flow always takes the same uplink
    again = h.send(VF0, frames[:50])
    first = {Ether(f)[UDP].sport: port for port, fs in out.items() for f in fs}
    assert all(first[Ether(f)[UDP].sport] == port for port, fs in again.items() for f in fs)
    for port in (PF0, PF1):
        assert all(Ether(f).src == PORTS[port].mac for f in out[port])


def test_misses_and_bad_frames_are_counted_drops(harness: Harness) -> None:
    frames = [
        from_vm(VM1.mac, VF0, IP(src=VM1.ip, dst="8.8.8.8") / UDP()),  # no route in VNI 100
        from_underlay(IPv6Address("fc00:1::dead"), IP(dst=VM1.ip) / UDP()),  # not our underlay
        from_vm(VM1.mac, VF0, IP(src=VM1.ip, dst=VM2.ip, proto=47) / b"gre!"),  # not TCP/UDP/ICMP
        b"\x00" * 20,
    ]
    assert harness.send(VF0, [frames[0], frames[2], frames[3]]) == {}
    assert harness.send(PF0, [frames[1]]) == {}
    c = harness.counters()
    assert c["ipv4_lookup.no_route"] == 1
    assert c["ipip_decap.no_underlay_match"] == 1
    assert c["conntrack.unsupported_protocol"] == 1
    assert c["cls.unknown_ethertype"] == 1
    assert c["drop.dropped"] == 4
    conserved(harness, 4)
