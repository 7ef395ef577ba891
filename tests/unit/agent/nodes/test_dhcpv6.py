"""dhcpv6 node: ADVERTISE/REPLY bytes and option order, NoAddrsAvail, PXE URLs, drops (DPSERVICE.md §4.3)."""

from __future__ import annotations

import struct
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Confirm,
    DHCP6_Decline,
    DHCP6_InfoRequest,
    DHCP6_Rebind,
    DHCP6_Release,
    DHCP6_Renew,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptBootFileUrl,
    DHCP6OptClientId,
    DHCP6OptDNSServers,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
    DHCP6OptRapidCommit,
    DHCP6OptStatusCode,
    DHCP6OptVendorClass,
)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.nodes.dhcpv6 import Dhcpv6, Next
from kubevpc_agent.tables.model import Pxe
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import (
    CONFIG,
    PF0,
    PORTS,
    VF0,
    VF1,
    VF2,
    VF3,
    VM1,
    VM2,
    VM3,
    VM4,
    Vm,
    bind,
    interface_of,
    run_node,
)
from testkit.packets import assert_valid

GW6 = "fe80::1"
CLIENT_LL = "fe80::6466:66ff:fe66:6600"
IAID = 0x18702501
MESSAGE_AT = 14 + 40 + 8
PXE_VENDOR_DATA = b"\x00\x20PXEClient:Arch:00007:UNDI:003016"  # as dpservice's test encodes it


def opt(code: int, value: bytes = b"") -> bytes:
    return struct.pack("!HH", code, len(value)) + value


def server_id(port: int) -> bytes:
    return opt(2, bytes.fromhex("0003abcd") + mac_bytes(PORTS[port].mac))


def ia_na(iaid: int, address: str) -> bytes:
    status = opt(13, b"\x00\x00")
    iaaddr = opt(5, IPv6Address(address).packed + b"\xff" * 8 + status)
    return opt(3, iaid.to_bytes(4, "big") + b"\xff" * 8 + iaaddr)


DNS = opt(23, IPv6Address("2001:4860:4860::6464").packed + IPv6Address("2002:4861:4861::6464").packed)


def user_class(data: bytes) -> bytes:
    """Option 15 with one user-class-data entry (what dpservice's test builds by hand)."""
    return opt(15, len(data).to_bytes(2, "big") + data)


def dhcpv6(vm: Vm, message: Packet, *options: Packet | bytes, hlim: int = 1, tc: int = 0) -> bytes:
    head = Ether(dst="33:33:00:01:00:02", src=vm.mac) / IPv6(src=CLIENT_LL, dst=GW6, hlim=hlim, tc=tc)
    payload = bytes(message) + b"".join(bytes(o) for o in options)
    return bytes(head / UDP(sport=546, dport=547) / payload)


def client_id(vm: Vm) -> DHCP6OptClientId:
    return DHCP6OptClientId(duid=DUID_LL(lladdr=vm.mac))


def solicit_options(vm: Vm, pxe_class: Packet | bytes) -> list[Packet | bytes]:
    """The option sequence of dpservice's ``request_ipv6``."""
    return [
        DHCP6OptIA_NA(iaid=IAID, T1=0, T2=0),
        DHCP6OptRapidCommit(),
        DHCP6OptElapsedTime(),
        client_id(vm),
        DHCP6OptOptReq(reqopts=[59]),
        pxe_class,
    ]


@pytest.fixture
def node(state: AgentState, macs: PortMacs) -> Dhcpv6:
    return Dhcpv6(state, macs, CONFIG)


PXE_MODES = [
    ("vf0: PXE vendor class → TFTP loader", VM1, DHCP6OptVendorClass(enterprisenum=343, vcdata=PXE_VENDOR_DATA),  # noqa: E501
     b"tftp://[2001:dede::1]/ipxe/x86_64/ipxe.new"),
    ("vf1: iPXE user class → HTTP boot file", VM2, user_class(b"iPXE"), b"http://[2001:dede::1]/ipxe"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "vm", "pxe_class", "url"), PXE_MODES, ids=[r[0] for r in PXE_MODES])
def test_solicit_request_confirm(
    node: Dhcpv6, description: str, vm: Vm, pxe_class: Packet | bytes, url: bytes
) -> None:
    """dpservice test_dhcpv6_vf0/vf1: same DUID and IAID, both DNS, the boot URL, IAADDR = VM IPv6."""
    opts = solicit_options(vm, pxe_class)
    res = run_node(node, [dhcpv6(vm, DHCP6_Solicit(trid=0xABCDEF), *opts)], vm.port)
    assert res.edges == [Next.TX]
    assert res.tx_ports == [vm.port]
    assert res.counters == {"advertised": 1}
    frame = res.frames[0]
    adv = assert_valid(frame)
    own = PORTS[vm.port].mac
    assert (adv[Ether].dst, adv[Ether].src) == (vm.mac, own)
    assert (adv[IPv6].src, adv[IPv6].dst, adv[IPv6].hlim, adv[IPv6].nh) == (GW6, CLIENT_LL, 1, 17)
    assert (adv[UDP].sport, adv[UDP].dport) == (547, 546)
    assert frame[MESSAGE_AT : MESSAGE_AT + 4] == b"\x02\xab\xcd\xef"  # ADVERTISE, transaction id echoed
    expected = server_id(vm.port) + bytes(client_id(vm)) + ia_na(IAID, vm.ipv6) + opt(14) + DNS + opt(59, url)
    assert frame[MESSAGE_AT + 4 :] == expected
    assert adv[DHCP6OptClientId].duid == DUID_LL(lladdr=vm.mac)
    assert adv[DHCP6OptIA_NA].iaid == IAID
    assert set(adv[DHCP6OptDNSServers].dnsservers) == {"2001:4860:4860::6464", "2002:4861:4861::6464"}
    assert adv[DHCP6OptBootFileUrl].optdata == url

    request_opts = [DHCP6OptIA_NA(iaid=IAID, T1=0, T2=0, ianaopts=[adv[DHCP6OptIAAddress]]), *opts[1:]]
    res = run_node(node, [dhcpv6(vm, DHCP6_Request(trid=7), *request_opts)], vm.port)
    assert res.counters == {"replied": 1}
    reply = assert_valid(res.frames[0])
    assert DHCP6_Reply in reply
    assert reply[DHCP6OptIA_NA].iaid == IAID
    assert reply[DHCP6OptIAAddress].addr == vm.ipv6
    assert (reply[DHCP6OptIAAddress].preflft, reply[DHCP6OptIAAddress].validlft) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert res.frames[0][MESSAGE_AT + 4 :] == expected

    res = run_node(node, [dhcpv6(vm, DHCP6_Confirm(trid=8), DHCP6OptElapsedTime())], vm.port)
    assert res.counters == {"replied": 1}
    assert DHCP6_Reply in assert_valid(res.frames[0])
    assert res.frames[0][MESSAGE_AT:] == b"\x07\x00\x00\x08"  # REPLY, no options at all


def test_release_gets_a_full_reply(node: Dhcpv6) -> None:
    res = run_node(node, [dhcpv6(VM3, DHCP6_Release(trid=1), client_id(VM3), DHCP6OptIA_NA(iaid=5))], VF2)
    assert res.counters == {"replied": 1}
    assert (
        res.frames[0][MESSAGE_AT:]
        == b"\x07\x00\x00\x01" + server_id(VF2) + bytes(client_id(VM3)) + ia_na(5, VM3.ipv6) + DNS
    )


def test_minimal_solicit_gets_server_id_and_dns(node: Dhcpv6) -> None:
    res = run_node(node, [dhcpv6(VM3, DHCP6_Solicit(trid=2))], VF2)
    assert res.frames[0][MESSAGE_AT:] == b"\x02\x00\x00\x02" + server_id(VF2) + DNS


def test_rapid_commit_as_last_option_is_echoed(node: Dhcpv6) -> None:
    """dpservice's option loop stops 4 bytes early and misses a final zero-length option; we do not."""
    res = run_node(node, [dhcpv6(VM3, DHCP6_Solicit(trid=3), client_id(VM3), DHCP6OptRapidCommit())], VF2)
    assert res.frames[0][MESSAGE_AT + 4 :] == server_id(VF2) + bytes(client_id(VM3)) + opt(14) + DNS


def test_dns_option_present_even_when_empty(state: AgentState, macs: PortMacs) -> None:
    node = Dhcpv6(state, macs, replace(CONFIG, dhcpv6_dns=()))
    res = run_node(node, [dhcpv6(VM3, DHCP6_Solicit(trid=2))], VF2)
    assert res.frames[0][MESSAGE_AT + 4 :] == server_id(VF2) + opt(23)


def test_reply_too_large(state: AgentState, macs: PortMacs) -> None:
    many_dns = tuple(IPv6Address(f"2001:db8::{i + 1:x}") for i in range(95))  # 1520 bytes of DNS option
    node = Dhcpv6(state, macs, replace(CONFIG, dhcpv6_dns=many_dns))
    res = run_node(node, [dhcpv6(VM3, DHCP6_Solicit(trid=2))], VF2)
    assert (res.edges, res.counters) == ([Next.DROP], {"reply_too_large": 1})
    fewer = Dhcpv6(state, macs, replace(CONFIG, dhcpv6_dns=many_dns[:80]))
    assert run_node(fewer, [dhcpv6(VM3, DHCP6_Solicit(trid=2))], VF2).counters == {"advertised": 1}


def test_hop_limit_and_traffic_class_copied(node: Dhcpv6) -> None:
    reply = assert_valid(run_node(node, [dhcpv6(VM3, DHCP6_Solicit(), hlim=255, tc=0x20)], VF2).frames[0])
    assert (reply[IPv6].hlim, reply[IPv6].tc) == (255, 0x20)


def test_server_duid_is_the_ports_not_the_clients(node: Dhcpv6) -> None:
    """dpservice echoes the client's MAC as server DUID; ours is stable per port (see the module docs)."""
    frame = dhcpv6(VM3, DHCP6_Solicit(), client_id(VM3))
    frame = frame[:6] + mac_bytes("02:aa:bb:cc:dd:ee") + frame[12:]  # a VM whose MAC is not the port's
    reply = run_node(node, [frame], VF2).frames[0]
    assert assert_valid(reply)[Ether].dst == "02:aa:bb:cc:dd:ee"
    assert reply[MESSAGE_AT + 4 :] == server_id(VF2) + bytes(client_id(VM3)) + DNS
    assert server_id(VF2)[4:] == bytes.fromhex("0003abcd") + mac_bytes(PORTS[VF2].mac)


def test_pxe_without_ipv6_pxe_server_has_no_boot_url(node: Dhcpv6, state: AgentState) -> None:
    bind(state, interface_of(VM4, pxe=Pxe(IPv4Address("192.168.0.9"), "x")))
    for vm, port in ((VM3, VF2), (VM4, VF3)):  # VM3: no PXE at all; VM4: an IPv4 PXE server
        res = run_node(node, [dhcpv6(vm, DHCP6_Solicit(trid=1), user_class(b"iPXE"))], port)
        assert res.counters == {"advertised": 1, "pxe_without_ipv6_server": 1}
        assert res.frames[0][MESSAGE_AT + 4 :] == server_id(port) + DNS


def test_user_class_other_than_ipxe_is_ignored(node: Dhcpv6) -> None:
    res = run_node(node, [dhcpv6(VM1, DHCP6_Solicit(trid=1), user_class(b"iPXE2"))], VF0)
    assert res.frames[0][MESSAGE_AT + 4 :] == server_id(VF0) + DNS


@pytest.fixture
def ipv4_only(state: AgentState) -> Vm:
    """dpservice ``ipv4only_iface``: VM4 added with IPv6 ``::``."""
    bind(state, interface_of(VM4, ipv6=False))
    return VM4


@pytest.mark.parametrize("message", [DHCP6_Solicit, DHCP6_Request], ids=["solicit", "request"])
def test_noaddrsavail(node: Dhcpv6, ipv4_only: Vm, message: type[Packet]) -> None:
    """dpservice test_dhcpv6_noaddrsavail_solicit/request: a REPLY with only status code 2."""
    frame = dhcpv6(ipv4_only, message(trid=0x123456), DHCP6OptIA_NA(iaid=0xBEEF0001), client_id(ipv4_only))
    res = run_node(node, [frame], VF3)
    assert res.counters == {"no_addrs_avail": 1}
    reply = assert_valid(res.frames[0])
    assert DHCP6_Reply in reply
    assert reply[DHCP6OptStatusCode].statuscode == 2
    assert res.frames[0][MESSAGE_AT:] == b"\x07\x12\x34\x56" + opt(13, b"\x00\x02")


def test_noaddrsavail_confirm_dropped(node: Dhcpv6, ipv4_only: Vm) -> None:
    res = run_node(node, [dhcpv6(ipv4_only, DHCP6_Confirm(trid=1))], VF3)
    assert (res.edges, res.counters) == ([Next.DROP], {"unhandled_type": 1})


_sol = DHCP6_Solicit(trid=1)
DROPPED = [
    ("RENEW", dhcpv6(VM1, DHCP6_Renew(), client_id(VM1)), VF0, "unhandled_type"),
    ("REBIND", dhcpv6(VM1, DHCP6_Rebind(), client_id(VM1)), VF0, "unhandled_type"),
    ("DECLINE", dhcpv6(VM1, DHCP6_Decline(), client_id(VM1)), VF0, "unhandled_type"),
    ("INFORMATION-REQUEST", dhcpv6(VM1, DHCP6_InfoRequest()), VF0, "unhandled_type"),
    ("ADVERTISE from a VM", dhcpv6(VM1, b"\x02\x00\x00\x01"), VF0, "unhandled_type"),
    ("port without interface", dhcpv6(VM4, _sol), VF3, "no_interface"),
    ("uplink port", dhcpv6(VM1, _sol), PF0, "no_interface"),
    ("option value overruns", dhcpv6(VM1, _sol, opt(1, b"abcd")[:-1]), VF0, "malformed"),
    ("option header cut", dhcpv6(VM1, _sol, b"\x00\x01\x00"), VF0, "malformed"),
    ("client id over 128 bytes", dhcpv6(VM1, _sol, opt(1, bytes(129))), VF0, "malformed"),
    ("IA_NA under 12 bytes", dhcpv6(VM1, _sol, opt(3, bytes(11))), VF0, "malformed"),
    ("rapid commit with data", dhcpv6(VM1, _sol, opt(14, b"x")), VF0, "malformed"),
    ("message header cut", dhcpv6(VM1, b"\x01\x00"), VF0, "malformed"),
    ("payload length beyond frame", dhcpv6(VM1, _sol, client_id(VM1))[:-3], VF0, "malformed"),
    ("to the client port", dhcpv6(VM1, _sol).replace(b"\x02\x22\x02\x23", b"\x02\x22\x02\x22", 1), VF0,
     "malformed"),
    ("hop-by-hop header first", bytes(Ether(src=VM1.mac) / IPv6(src=CLIENT_LL, dst=GW6, nh=0)) + bytes(40),
     VF0, "malformed"),
    ("IPv4 ethertype", bytes(Ether(src=VM1.mac, type=0x0800)) + bytes(80), VF0, "malformed"),
]  # fmt: skip


@pytest.mark.parametrize(("description", "frame", "port", "counter"), DROPPED, ids=[r[0] for r in DROPPED])
def test_dropped(node: Dhcpv6, description: str, frame: bytes, port: int, counter: str) -> None:
    res = run_node(node, [frame], port)
    assert res.edges == [Next.DROP], description
    assert res.counters == {counter: 1}


def test_ethernet_padding_is_ignored(node: Dhcpv6) -> None:
    res = run_node(node, [dhcpv6(VM3, DHCP6_Solicit(trid=9)) + b"\x00\x01\x00\x09" + bytes(10)], VF2)
    assert res.frames[0][MESSAGE_AT:] == b"\x02\x00\x00\x09" + server_id(VF2) + DNS


def test_mixed_batch(node: Dhcpv6) -> None:
    frames = [dhcpv6(VM2, DHCP6_Solicit()), dhcpv6(VM2, DHCP6_Renew()), dhcpv6(VM2, DHCP6_Confirm())]
    res = run_node(node, frames, VF1)
    assert res.edges == [Next.TX, Next.DROP, Next.TX]
    assert res.counters == {"advertised": 1, "unhandled_type": 1, "replied": 1}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_requests_never_raise(data: st.DataObject) -> None:
    state = AgentState(CONFIG)
    bind(state, interface_of(VM1, pxe=Pxe(IPv6Address("2001:dede::1"), "ipxe")))
    node = Dhcpv6(state, PortMacs(PORTS), CONFIG)
    frame = bytearray(dhcpv6(VM1, DHCP6_Request(trid=1), *solicit_options(VM1, user_class(b"iPXE"))))
    for _ in range(data.draw(st.integers(1, 8))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(14, len(frame)))
    res = run_node(node, [bytes(frame[:cut])], VF0)
    assert res.edges in ([Next.DROP], [Next.TX])
    if res.edges == [Next.TX]:
        assert_valid(res.frames[0])
