"""arp node: gateway ARP replies byte for byte, VM MAC learning in the ARP cycle, drops counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether

from kubevpc_agent.nodes.arp import Arp, Next
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PORTS, VF0, VF3, VM1, VM4, bind, interface_of, run_node, unbind

GW = "169.254.0.1"
OTHER_MAC = "12:34:56:78:9a:bc"


def arp_request(src_mac: str, psrc: str, pdst: str = GW) -> bytes:
    return bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=src_mac) / ARP(op=1, hwsrc=src_mac, psrc=psrc, pdst=pdst))


def arp_reply(src_mac: str, psrc: str, pdst: str = GW) -> bytes:
    return bytes(
        Ether(dst="66:66:66:66:66:00", src=src_mac)
        / ARP(op=2, hwsrc=src_mac, psrc=psrc, hwdst="66:66:66:66:66:00", pdst=pdst)
    )


@pytest.fixture
def node(state: AgentState, macs: PortMacs) -> Arp:
    return Arp(state, macs, CONFIG)


def test_l2_arp_reply_from_port_mac(node: Arp) -> None:
    """dpservice test_l2_arp: a request for 169.254.0.1 (psrc 0.0.0.0) is answered with the port MAC."""
    request = bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=VM1.mac)
        / ARP(pdst=GW, hwsrc=VM1.mac, hwdst=VM1.mac, psrc="0.0.0.0")
    )
    res = run_node(node, [request], VF0)
    assert res.edges == [Next.TX]
    assert res.tx_ports == [VF0]
    expected = Ether(dst=VM1.mac, src="66:66:66:66:66:00") / ARP(
        op=2, hwsrc="66:66:66:66:66:00", psrc=GW, hwdst=VM1.mac, pdst="0.0.0.0"
    )
    assert res.frames == [bytes(expected)]
    assert Ether(res.frames[0])[ARP].hwsrc == VM1.mac  # TAP mode: port MAC == VM MAC
    assert res.counters == {"replied": 1}


def test_reply_uses_port_mac_not_vm_mac(node: Arp) -> None:
    res = run_node(node, [arp_request(OTHER_MAC, "10.100.1.77")], VF0)
    reply = Ether(res.frames[0])
    assert (reply.dst, reply.src) == (OTHER_MAC, "66:66:66:66:66:00")
    assert (reply[ARP].op, reply[ARP].hwsrc, reply[ARP].psrc) == (2, "66:66:66:66:66:00", GW)
    assert (reply[ARP].hwdst, reply[ARP].pdst) == (OTHER_MAC, "10.100.1.77")


def test_padded_request_keeps_its_length(node: Arp) -> None:
    request = arp_request(VM1.mac, "0.0.0.0") + bytes(18)  # padded to 60 bytes on the wire
    res = run_node(node, [request], VF0)
    assert res.edges == [Next.TX]
    assert len(res.frames[0]) == 60
    assert res.frames[0][42:] == bytes(18)


DROPPED = [
    (
        "request for another address",
        arp_request(VM1.mac, "10.9.9.9", pdst="10.100.1.2"),
        VF0,
        "not_for_gateway",
    ),
    ("reply to the gateway", arp_reply(VM1.mac, "10.100.1.9"), VF0, "not_for_gateway"),
    ("request on an uplink", arp_request("22:22:22:22:22:99", "10.0.0.1"), PF0, "not_vf"),
    ("truncated", arp_request(VM1.mac, VM1.ip)[:30], VF0, "malformed"),
    ("hardware type 6", bytes(Ether(src=VM1.mac) / ARP(hwtype=6, pdst=GW)), VF0, "malformed"),
    ("Ethernet header only", bytes(Ether(src=VM1.mac, type=0x0806)), VF0, "malformed"),
]


@pytest.mark.parametrize(("description", "frame", "port", "counter"), DROPPED, ids=[r[0] for r in DROPPED])
def test_dropped(node: Arp, description: str, frame: bytes, port: int, counter: str) -> None:
    res = run_node(node, [frame], port)
    assert res.edges == [Next.DROP], description
    assert res.counters == {counter: 1}


def test_learns_vm_mac_once_per_interface(node: Arp, state: AgentState, macs: PortMacs) -> None:
    """The VM's ARP with its own IPv4 teaches its MAC until the cycle ends; a new interface restarts it."""
    assert macs.peer_mac(VF0) == mac_bytes(VM1.mac)  # initial guess: the port's own MAC
    res = run_node(node, [arp_reply(OTHER_MAC, VM1.ip, pdst=GW)], VF0)
    assert res.edges == [Next.DROP]  # learned from, then dropped as any reply is
    assert res.counters == {"learned": 1, "not_for_gateway": 1}
    assert macs.peer_mac(VF0) == mac_bytes(OTHER_MAC)

    # cycle over: a later ARP from another MAC does not move the learned MAC
    res = run_node(node, [arp_reply("98:76:54:32:10:ab", VM1.ip)], VF0)
    assert res.counters == {"not_for_gateway": 1}
    assert macs.peer_mac(VF0) == mac_bytes(OTHER_MAC)

    # a request for the gateway from the VM is answered but teaches nothing once the cycle is over
    res = run_node(node, [arp_request("98:76:54:32:10:ab", VM1.ip)], VF0)
    assert res.counters == {"replied": 1}
    assert macs.peer_mac(VF0) == mac_bytes(OTHER_MAC)

    # delete + re-create: the learned MAC stays, the cycle starts again
    iface = state.interface_by_port(VF0)
    assert iface is not None
    unbind(state, iface.id)
    assert macs.peer_mac(VF0) == mac_bytes(OTHER_MAC)
    bind(state, interface_of(VM1))
    res = run_node(node, [arp_request("01:02:03:04:05:06", VM1.ip)], VF0)
    assert res.edges == [Next.TX]  # the VM's gateway request teaches its MAC and is answered too
    assert res.counters == {"learned": 1, "replied": 1}
    assert macs.peer_mac(VF0) == mac_bytes("01:02:03:04:05:06")
    assert Ether(res.frames[0]).dst == "01:02:03:04:05:06"


def test_no_learning_from_other_sender_address(node: Arp, macs: PortMacs) -> None:
    res = run_node(node, [arp_reply(OTHER_MAC, "10.100.1.99")], VF0)
    assert res.counters == {"not_for_gateway": 1}
    assert macs.peer_mac(VF0) == mac_bytes(VM1.mac)


def test_no_learning_without_interface_or_ipv4(node: Arp, state: AgentState, macs: PortMacs) -> None:
    res = run_node(node, [arp_reply(OTHER_MAC, VM4.ip)], VF3)  # VF3 has no interface
    assert res.counters == {"not_for_gateway": 1}
    bind(state, interface_of(VM4, ipv4=False))
    res = run_node(node, [arp_reply(OTHER_MAC, "0.0.0.0")], VF3)  # an ARP probe's sender address
    assert res.counters == {"not_for_gateway": 1}
    assert macs.peer_mac(VF3) == mac_bytes(VM4.mac)


def test_mixed_batch_counts_once(node: Arp) -> None:
    frames = [
        arp_request(VM1.mac, VM1.ip),
        arp_request(VM1.mac, VM1.ip, pdst="10.1.1.1"),
        arp_request(VM1.mac, VM1.ip),
        b"\xff" * 20,
    ]
    # VM1's first request carries its own IPv4: it ends the ARP cycle (learned) and is answered
    res = run_node(node, frames, VF0)
    assert res.edges == [Next.TX, Next.DROP, Next.TX, Next.DROP]
    assert res.counters == {"learned": 1, "not_for_gateway": 1, "replied": 2, "malformed": 1}


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=14, max_size=80))
def test_garbage_never_raises(garbage: bytes) -> None:
    state = AgentState(CONFIG)
    bind(state, interface_of(VM1))
    node = Arp(state, PortMacs(PORTS), CONFIG)
    res = run_node(node, [garbage], VF0)
    assert res.edges in ([Next.DROP], [Next.TX])
    dropped_or_replied = {"replied", "not_for_gateway", "not_vf", "malformed"}
    assert sum(v for k, v in res.counters.items() if k in dropped_or_replied) == 1
