"""dhcp node: OFFER/ACK bytes and option order, PXE, MAC learning, drops counted (DPSERVICE.md §4.2)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from kubevpc_agent.nodes.dhcp import Dhcp, Next
from kubevpc_agent.tables.model import Pxe
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import (
    CONFIG,
    PF0,
    PORTS,
    VF0,
    VF1,
    VF3,
    VM1,
    VM2,
    VM4,
    Vm,
    bind,
    interface_of,
    run_node,
    unbind,
)
from testkit.packets import assert_valid

GW = "169.254.0.1"
OPTIONS_AT = 14 + 20 + 8 + 240  # options of a reply: after Ether, IPv4, UDP, BOOTP fixed part
ROUTES_121 = bytes.fromhex("10a9fe0000000000a9fe0001")  # 169.254.0.0/16 -> 0.0.0.0, 0/0 -> 169.254.0.1
PXE_V4 = Pxe(IPv4Address("192.168.100.9"), "/boot.ipxe")


def discover(mac: str, *options: tuple[str, object], xid: int = 0x1234ABCD) -> bytes:
    """What scapy's ``dhcp_request`` (dpservice ``request_ip``) sends."""
    return bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(mac), xid=xid, flags="B")
        / DHCP(
            options=[
                ("message-type", "discover"),
                ("client_id", b"\x01" + mac_bytes(mac)),
                ("param_req_list", [1, 3, 6, 12, 15, 26, 28, 51, 121]),
                *options,
                "end",
            ]
        )
    )


def request(vm: Vm, src_mac: str | None = None) -> bytes:
    """dpservice ``request_ip``'s REQUEST (unicast to the server, Ether source optionally another MAC)."""
    return bytes(
        Ether(src=src_mac or vm.mac, dst="66:66:66:66:66:00")
        / IP(src=vm.ip, dst=GW)
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(vm.mac), xid=7)
        / DHCP(options=[("message-type", "request"), "end"])
    )


def expected_options(msg_type: int, *, hostname: bytes = b"", pxe: bool = False) -> bytes:
    opts = bytes([53, 1, msg_type, 51, 4, 0xFF, 0xFF, 0xFF, 0xFF, 54, 4, 169, 254, 0, 1])
    opts += bytes([121, len(ROUTES_121)]) + ROUTES_121
    opts += bytes([1, 4, 255, 255, 255, 255, 26, 2]) + (1337).to_bytes(2, "big")
    if pxe:
        opts += bytes([3, 4, 169, 254, 0, 1])
    opts += bytes([6, 8, 8, 8, 4, 4, 8, 8, 8, 8])
    if hostname:
        opts += bytes([12, len(hostname)]) + hostname
    return opts + b"\xff"


@pytest.fixture
def node(state: AgentState, macs: PortMacs) -> Dhcp:
    return Dhcp(state, macs, CONFIG)


@pytest.mark.parametrize(("vm", "hostname"), [(VM1, b"vm1-host"), (VM2, b"")], ids=["vf0", "vf1"])
def test_dhcpv4_discover_then_request(node: Dhcp, macs: PortMacs, vm: Vm, hostname: bytes) -> None:
    """dpservice test_dhcpv4_vf0/vf1: OFFER with MTU 1337, both DNS, hostname; ACK with the VM's IP."""
    res = run_node(node, [discover(vm.mac)], vm.port)
    assert res.edges == [Next.TX]
    assert res.tx_ports == [vm.port]
    assert res.counters == {"offered": 1}
    frame = res.frames[0]
    offer = assert_valid(frame)
    own = PORTS[vm.port].mac
    assert (offer[Ether].dst, offer[Ether].src, offer[Ether].type) == (vm.mac, own, 0x0800)
    assert (offer[IP].src, offer[IP].dst, offer[IP].ttl, offer[IP].proto) == (GW, vm.ip, 64, 17)
    assert (offer[UDP].sport, offer[UDP].dport) == (67, 68)
    b = offer[BOOTP]
    assert (b.op, b.htype, b.hlen, b.hops, b.xid, b.secs, b.flags) == (2, 1, 6, 0, 0x1234ABCD, 0, 0x8000)
    assert (b.ciaddr, b.yiaddr, b.siaddr, b.giaddr) == ("0.0.0.0", vm.ip, GW, GW)
    assert b.chaddr == mac_bytes(vm.mac) + bytes(10)
    assert (b.sname, b.file) == (bytes(64), bytes(128))
    assert frame[OPTIONS_AT - 4 : OPTIONS_AT] == b"\x63\x82\x53\x63"
    assert frame[OPTIONS_AT:] == expected_options(2, hostname=hostname)
    opts = dict(o for o in offer[DHCP].options if isinstance(o, tuple) and len(o) == 2)
    assert opts["interface-mtu"] == 1337
    assert ("name_server", "8.8.4.4", "8.8.8.8") in offer[DHCP].options

    res = run_node(node, [request(vm)], vm.port)
    assert res.counters == {"acked": 1}
    ack = assert_valid(res.frames[0])
    assert ack[BOOTP].yiaddr == vm.ip
    assert (ack[Ether].dst, ack[IP].dst) == (vm.mac, vm.ip)
    assert res.frames[0][OPTIONS_AT:] == expected_options(5, hostname=hostname)
    assert macs.peer_mac(vm.port) == mac_bytes(vm.mac)


def test_reply_copies_ip_fields_and_bootp_echoes(node: Dhcp) -> None:
    frame = bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=VM1.mac)
        / IP(src="0.0.0.0", dst="255.255.255.255", tos=0x10, id=4242, ttl=17, flags="DF")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(VM1.mac) + b"0123456789", xid=99, secs=3, hops=1, ciaddr="10.100.1.1")
        / DHCP(options=[("message-type", "discover"), "end"])
    )
    reply = assert_valid(run_node(node, [frame], VF0).frames[0])
    assert (reply[IP].tos, reply[IP].id, reply[IP].ttl, int(reply[IP].flags)) == (0x10, 4242, 17, 2)
    b = reply[BOOTP]
    assert (b.xid, b.secs, b.hops, b.ciaddr) == (99, 3, 1, "10.100.1.1")
    assert b.chaddr == mac_bytes(VM1.mac) + b"0123456789"  # first 6 bytes := the Ethernet source


def test_chaddr_is_the_ethernet_source(node: Dhcp) -> None:
    frame = bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:07")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(VM1.mac))
        / DHCP(options=[("message-type", "discover"), "end"])
    )
    reply = assert_valid(run_node(node, [frame], VF0).frames[0])
    assert reply[BOOTP].chaddr[:6] == mac_bytes("02:00:00:00:00:07")
    assert reply[Ether].dst == "02:00:00:00:00:07"


def test_l2_addr_once(node: Dhcp, state: AgentState, macs: PortMacs) -> None:
    """dpservice test_l2_addr_once: every REQUEST sets the VM MAC; it survives delete + re-create."""
    bind(state, interface_of(VM4))
    assert macs.peer_mac(VF3) == mac_bytes(VM4.mac)  # the representor's MAC until told otherwise
    run_node(node, [discover(VM4.mac)], VF3)
    assert macs.peer_mac(VF3) == mac_bytes(VM4.mac)  # DISCOVER teaches nothing
    for new_mac in ("12:34:56:78:9a:bc", "98:76:54:32:10:ab"):
        res = run_node(node, [request(VM4, src_mac=new_mac)], VF3)
        assert res.counters == {"acked": 1}
        assert Ether(res.frames[0]).dst == new_mac
        assert macs.peer_mac(VF3) == mac_bytes(new_mac)
    unbind(state, "vm4")
    bind(state, interface_of(VM4))
    assert macs.peer_mac(VF3) == mac_bytes("98:76:54:32:10:ab")
    run_node(node, [request(VM4, src_mac="01:02:03:04:05:06")], VF3)
    assert macs.peer_mac(VF3) == mac_bytes("01:02:03:04:05:06")


PXE_CLASS = ("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003016")
IPXE_CLASS = ("user_class", b"iPXE")


PXE_CASES = [
    ("PXE firmware: TFTP loader", [PXE_CLASS], b"ipxe/x86_64/ipxe.new"),
    ("iPXE: HTTP boot file, no slash inserted", [IPXE_CLASS], b"http://192.168.100.9/boot.ipxe"),
    ("both, iPXE last wins", [PXE_CLASS, IPXE_CLASS], b"http://192.168.100.9/boot.ipxe"),
    ("both, PXE last wins", [IPXE_CLASS, PXE_CLASS], b"ipxe/x86_64/ipxe.new"),
]


@pytest.mark.parametrize(("description", "classes", "boot_file"), PXE_CASES, ids=[r[0] for r in PXE_CASES])
def test_pxe(
    node: Dhcp, state: AgentState, description: str, classes: list[tuple[str, bytes]], boot_file: bytes
) -> None:
    bind(state, interface_of(VM4, pxe=PXE_V4))
    res = run_node(node, [discover(VM4.mac, *classes)], VF3)
    assert res.counters == {"offered": 1}, description
    reply = assert_valid(res.frames[0])
    assert (reply[Ether].dst, reply[IP].dst) == ("ff:ff:ff:ff:ff:ff", "255.255.255.255")
    assert (reply[BOOTP].siaddr, reply[BOOTP].yiaddr) == ("192.168.100.9", VM4.ip)
    assert reply[BOOTP].file == boot_file.ljust(128, b"\0")
    assert res.frames[0][OPTIONS_AT:] == expected_options(2, pxe=True)


def test_pxe_mode_does_not_stick(node: Dhcp, state: AgentState) -> None:
    """dpservice keeps the PXE mode in a static variable; a plain request after a PXE one stays plain."""
    bind(state, interface_of(VM4, pxe=PXE_V4))
    run_node(node, [discover(VM4.mac, IPXE_CLASS)], VF3)
    reply = assert_valid(run_node(node, [discover(VM4.mac)], VF3).frames[0])
    assert (reply[Ether].dst, reply[IP].dst, reply[BOOTP].siaddr) == (VM4.mac, VM4.ip, GW)
    assert reply[BOOTP].file == bytes(128)
    reply = assert_valid(run_node(node, [discover(VM1.mac)], VF0).frames[0])  # another port: plain too
    assert reply[BOOTP].siaddr == GW


def test_pxe_request_without_ipv4_pxe_server_gets_plain_answer(node: Dhcp) -> None:
    """VM1's PXE server is IPv6 (dpservice's test setup): DHCPv4 has no boot data to give."""
    res = run_node(node, [discover(VM1.mac, PXE_CLASS)], VF0)
    assert res.counters == {"offered": 1, "pxe_without_ipv4_server": 1}
    assert res.frames[0][OPTIONS_AT:] == expected_options(2, hostname=b"vm1-host")
    assert Ether(res.frames[0])[BOOTP].siaddr == GW


def test_virtual_services_route(state: AgentState, macs: PortMacs) -> None:
    node = Dhcp(state, macs, CONFIG, virtual_services=True)
    frame = run_node(node, [discover(VM2.mac)], VF1).frames[0]
    routes = ROUTES_121 + bytes.fromhex("18a9fe01a9fe0001")  # + 169.254.1.0/24 -> 169.254.0.1
    assert bytes([121, len(routes)]) + routes in frame[OPTIONS_AT:]
    assert_valid(frame)


def test_no_dns_option_without_dns_servers(state: AgentState, macs: PortMacs) -> None:
    node = Dhcp(state, macs, replace(CONFIG, dhcp_dns=()))
    frame = run_node(node, [discover(VM2.mac)], VF1).frames[0]
    assert frame[OPTIONS_AT:] == expected_options(2).replace(bytes([6, 8, 8, 8, 4, 4, 8, 8, 8, 8]), b"")


def test_padded_frame_and_pad_options(node: Dhcp) -> None:
    frame = bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=VM2.mac)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(VM2.mac))
        / DHCP(options=["pad", "pad", ("message-type", "request"), "pad", "end"])
    )
    res = run_node(node, [frame + b"\x35\x01\x01" + bytes(40)], VF1)  # trailing bytes beyond IPv4 length
    assert res.counters == {"acked": 1}


def bootp_frame(mac: str, bootp: BOOTP, options: bytes | list[object], **ip: object) -> bytes:
    dhcp = DHCP(options=options) if isinstance(options, list) else options
    return bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
        / IP(src="0.0.0.0", dst="255.255.255.255", **ip)
        / UDP(sport=68, dport=67)
        / bootp
        / dhcp
    )


_discover = [("message-type", "discover"), "end"]
_vm1 = mac_bytes(VM1.mac)
_magic = b"\x63\x82\x53\x63"


DROPPED = [
    ("port without interface", discover(VM4.mac), VF3, "no_interface"),
    ("uplink port", discover(VM1.mac), PF0, "no_interface"),
    ("BOOTREPLY", bootp_frame(VM1.mac, BOOTP(op=2, chaddr=_vm1), _discover), VF0, "not_bootrequest"),
    (
        "INFORM",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), [("message-type", "inform"), "end"]),
        VF0,
        "unhandled_type",
    ),
    (
        "RELEASE",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), [("message-type", "release"), "end"]),
        VF0,
        "unhandled_type",
    ),
    (
        "unknown type 99",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), [("message-type", 99), "end"]),
        VF0,
        "unhandled_type",
    ),
    (
        "no message type",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), [("hostname", b"x"), "end"]),
        VF0,
        "malformed",
    ),
    (
        "option overruns",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), _magic + b"\x35\x01\x01\x0c\x09ab"),
        VF0,
        "malformed",
    ),
    (
        "option length byte missing",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), _magic + b"\x35\x01\x01\x0c"),
        VF0,
        "malformed",
    ),
    (
        "message type of length 0",
        bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), _magic + b"\x35\x00\xff"),
        VF0,
        "malformed",
    ),
    ("BOOTP truncated", discover(VM1.mac)[: 14 + 20 + 8 + 200], VF0, "malformed"),
    ("IPv4 total length beyond frame", discover(VM1.mac)[:-20], VF0, "malformed"),
    ("fragment", bootp_frame(VM1.mac, BOOTP(chaddr=_vm1), _discover, flags="MF"), VF0, "malformed"),
    (
        "not to port 67",
        discover(VM1.mac).replace(b"\x00\x44\x00\x43", b"\x00\x44\x00\x44", 1),
        VF0,
        "malformed",
    ),
    ("IPv6 ethertype", bytes(Ether(src=VM1.mac, type=0x86DD)) + bytes(300), VF0, "malformed"),
    ("Ethernet only", bytes(Ether(src=VM1.mac, type=0x0800)), VF0, "malformed"),
]


@pytest.mark.parametrize(("description", "frame", "port", "counter"), DROPPED, ids=[r[0] for r in DROPPED])
def test_dropped(node: Dhcp, description: str, frame: bytes, port: int, counter: str) -> None:
    res = run_node(node, [frame], port)
    assert res.edges == [Next.DROP], description
    assert res.counters == {counter: 1}


def test_interface_without_ipv4_is_not_answered(node: Dhcp, state: AgentState) -> None:
    bind(state, interface_of(VM4, ipv4=False))
    assert run_node(node, [discover(VM4.mac)], VF3).counters == {"no_interface": 1}


def test_too_many_dns_servers_fail_at_start(state: AgentState, macs: PortMacs) -> None:
    many_dns = tuple(IPv4Address(f"10.0.0.{i + 1}") for i in range(64))  # 256 bytes > 255
    with pytest.raises(ValueError, match="exceeds 255"):
        Dhcp(state, macs, replace(CONFIG, dhcp_dns=many_dns))


def test_reply_too_large(node: Dhcp, state: AgentState) -> None:
    bind(state, replace(interface_of(VM4), hostname="h" * 256))
    res = run_node(node, [discover(VM4.mac)], VF3)
    assert (res.edges, res.counters) == ([Next.DROP], {"reply_too_large": 1})


def test_mixed_batch(node: Dhcp) -> None:
    frames = [discover(VM1.mac), request(VM2), discover(VM4.mac), discover(VM1.mac)]
    res = run_node(node, frames, VF0)  # all arrive on VF0: VM1's interface answers them
    assert res.edges == [Next.TX, Next.TX, Next.TX, Next.TX]
    assert res.counters == {"offered": 3, "acked": 1}
    assert {assert_valid(f)[BOOTP].yiaddr for f in res.frames} == {VM1.ip}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_requests_never_raise(data: st.DataObject) -> None:
    state = AgentState(CONFIG)
    bind(state, interface_of(VM1, pxe=PXE_V4))
    node = Dhcp(state, PortMacs(PORTS), CONFIG)
    frame = bytearray(discover(VM1.mac, IPXE_CLASS))
    for _ in range(data.draw(st.integers(1, 8))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(14, len(frame)))
    res = run_node(node, [bytes(frame[:cut])], VF0)
    assert res.edges in ([Next.DROP], [Next.TX])
    if res.edges == [Next.TX]:
        assert_valid(res.frames[0])
