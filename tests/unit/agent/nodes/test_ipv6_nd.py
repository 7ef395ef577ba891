"""ipv6_nd node: NA for fe80::1, RA for RS, byte for byte; MAC learning; overlay switch; drops."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from kubevpc_agent.nodes.ipv6_nd import Ipv6Nd, Next
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PORTS, VF0, VF3, VM1, run_node
from testkit.packets import assert_valid

GW6 = "fe80::1"
SOLICITED_GW = "ff02::1:ff00:1"  # solicited-node multicast address of fe80::1
VM_MAC = "12:34:56:78:9a:bc"  # the VM's real MAC, not the port's


def ns(src: str, target: str = GW6, *options: Packet, mac: str = VM_MAC) -> bytes:
    """What scapy's ``neighsol`` (dpservice test_nd) sends, with the given options."""
    return bytes(
        Ether(dst="33:33:ff:00:00:01", src=mac)
        / IPv6(src=src, dst=SOLICITED_GW)
        / ICMPv6ND_NS(tgt=target)
        / b"".join(bytes(o) for o in options)
    )


def rs(src: str, mac: str = VM_MAC) -> bytes:
    return bytes(
        Ether(dst="33:33:00:00:00:02", src=mac)
        / IPv6(src=src, dst="ff02::2")
        / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(lladdr=mac)
    )


@pytest.fixture
def node(state: AgentState, macs: PortMacs) -> Ipv6Nd:
    return Ipv6Nd(state, macs, CONFIG)


def test_nd(node: Ipv6Nd, macs: PortMacs) -> None:
    """dpservice test_nd: NS for fe80::1 → NA whose target link-layer option is the port's MAC."""
    res = run_node(node, [ns(VM1.ipv6, GW6, ICMPv6NDOptSrcLLAddr(lladdr=VM_MAC))], VF0)
    assert res.edges == [Next.TX]
    assert res.tx_ports == [VF0]
    assert res.counters == {"neighbor_advertised": 1}
    expected = (
        Ether(dst=VM_MAC, src=PORTS[VF0].mac)
        / IPv6(src=GW6, dst=VM1.ipv6, hlim=255)
        / ICMPv6ND_NA(R=1, S=1, O=1, tgt=GW6)
        / ICMPv6NDOptDstLLAddr(lladdr=PORTS[VF0].mac)
    )
    assert res.frames == [bytes(expected)]
    assert (
        assert_valid(res.frames[0])[ICMPv6NDOptDstLLAddr].lladdr == VM1.mac
    )  # TAP mode: port MAC == VM1 MAC
    assert macs.peer_mac(VF0) == mac_bytes(VM_MAC)


def test_dad_ns_from_unspecified_goes_to_all_nodes(node: Ipv6Nd) -> None:
    """An NS from :: (duplicate address detection) without options: NA to ff02::1, still no option."""
    res = run_node(node, [ns("::")], VF0)
    expected = (
        Ether(dst=VM_MAC, src=PORTS[VF0].mac)
        / IPv6(src=GW6, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=1, S=1, O=1, tgt=GW6)
    )
    assert res.frames == [bytes(expected)]
    assert_valid(res.frames[0])


def test_first_option_becomes_target_ll_option(node: Ipv6Nd) -> None:
    nonce = bytes([14, 1]) + bytes.fromhex("0102030405a6")  # RFC 7527 nonce option, 8 bytes
    res = run_node(node, [ns("::", GW6, Raw(nonce))], VF0)
    frame = assert_valid(res.frames[0])
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == PORTS[VF0].mac
    assert len(res.frames[0]) == 14 + 40 + 32


def test_ns_for_another_target_is_dropped_and_teaches_nothing(node: Ipv6Nd, macs: PortMacs) -> None:
    res = run_node(node, [ns(VM1.ipv6, "fe80::2")], VF0)
    assert (res.edges, res.counters) == ([Next.DROP], {"not_for_gateway": 1})
    assert macs.peer_mac(VF0) == mac_bytes(VM1.mac)


@pytest.mark.parametrize(("src", "dst"), [(VM1.ipv6, VM1.ipv6), ("fe80::99", "fe80::99"), ("::", "ff02::1")])
def test_rs_gets_ra(node: Ipv6Nd, macs: PortMacs, src: str, dst: str) -> None:
    res = run_node(node, [rs(src)], VF0)
    assert res.counters == {"router_advertised": 1}
    expected = (
        Ether(dst=VM_MAC, src=PORTS[VF0].mac)
        / IPv6(src=GW6, dst=dst, hlim=255)
        / ICMPv6ND_RA(chlim=255, M=1, O=1, prf=0, routerlifetime=0xFFFF, reachabletime=0, retranstimer=0)
        / ICMPv6NDOptSrcLLAddr(lladdr=PORTS[VF0].mac)
    )
    assert res.frames == [bytes(expected)]
    assert_valid(res.frames[0])
    assert macs.peer_mac(VF0) == mac_bytes(VM1.mac)  # an RS teaches nothing


def test_works_without_interface(node: Ipv6Nd, state: AgentState) -> None:
    """Like dpservice's node, the responder does not look at the interface (VF3 has none)."""
    assert state.interface_by_port(VF3) is None
    assert run_node(node, [ns("::")], VF3).counters == {"neighbor_advertised": 1}


def test_overlay_disabled_drops_everything(state: AgentState, macs: PortMacs) -> None:
    node = Ipv6Nd(state, macs, replace(CONFIG, enable_ipv6_overlay=False))
    res = run_node(node, [ns(VM1.ipv6), rs(VM1.ipv6), b"junk"], VF0)
    assert res.edges == [Next.DROP] * 3
    assert res.counters == {"overlay_disabled": 3}
    assert macs.peer_mac(VF0) == mac_bytes(VM1.mac)


_echo = bytes(Ether(src=VM_MAC) / IPv6(src=VM1.ipv6, dst=GW6) / ICMPv6EchoRequest())
DROPPED = [
    ("NS on an uplink", ns(VM1.ipv6), PF0, "not_vf"),
    ("echo request", _echo, VF0, "unhandled_type"),
    (
        "NA from the VM",
        bytes(Ether(src=VM_MAC) / IPv6(src=VM1.ipv6) / ICMPv6ND_NA(tgt=GW6)),
        VF0,
        "unhandled_type",
    ),
    ("RA from the VM", bytes(Ether(src=VM_MAC) / IPv6(src=VM1.ipv6) / ICMPv6ND_RA()), VF0, "unhandled_type"),
    ("NS cut in the target", ns(VM1.ipv6)[: 14 + 40 + 20], VF0, "malformed"),
    ("NS with payload length 20", ns(VM1.ipv6)[:18] + b"\x00\x14" + ns(VM1.ipv6)[20:74], VF0, "malformed"),
    ("payload length beyond frame", ns(VM1.ipv6)[:-4], VF0, "malformed"),
    ("next header UDP", ns(VM1.ipv6)[:20] + b"\x11" + ns(VM1.ipv6)[21:], VF0, "malformed"),
    ("IPv4 ethertype", bytes(Ether(src=VM_MAC, type=0x0800)) + bytes(70), VF0, "malformed"),
    ("Ethernet only", bytes(Ether(src=VM_MAC, type=0x86DD)), VF0, "malformed"),
]


@pytest.mark.parametrize(("description", "frame", "port", "counter"), DROPPED, ids=[r[0] for r in DROPPED])
def test_dropped(node: Ipv6Nd, description: str, frame: bytes, port: int, counter: str) -> None:
    res = run_node(node, [frame], port)
    assert res.edges == [Next.DROP], description
    assert res.counters == {counter: 1}


def test_mixed_batch(node: Ipv6Nd) -> None:
    res = run_node(node, [ns(VM1.ipv6), _echo, rs(VM1.ipv6), ns(VM1.ipv6, "fe80::5")], VF0)
    assert res.edges == [Next.TX, Next.DROP, Next.TX, Next.DROP]
    assert res.counters == {
        "neighbor_advertised": 1,
        "unhandled_type": 1,
        "router_advertised": 1,
        "not_for_gateway": 1,
    }


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_solicitations_never_raise(data: st.DataObject) -> None:
    state = AgentState(CONFIG)
    node = Ipv6Nd(state, PortMacs(PORTS), CONFIG)
    base = data.draw(st.sampled_from([ns(VM1.ipv6, GW6, ICMPv6NDOptSrcLLAddr(lladdr=VM_MAC)), rs("::")]))
    frame = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(14, len(frame)))
    res = run_node(node, [bytes(frame[:cut])], VF0)
    assert res.edges in ([Next.DROP], [Next.TX])
    if res.edges == [Next.TX]:
        assert_valid(res.frames[0])
