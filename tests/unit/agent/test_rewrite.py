"""NAT header rewrites and NAT64 (``protocols/rewrite.py``) against scapy's recomputed checksums."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Packet

from kubevpc_agent.protocols import rewrite
from kubevpc_agent.protocols.ipv6 import split

VM = "10.100.1.1"
NAT = "172.21.1.1"
SERVER = "45.86.6.6"
VM6 = "2000:100:1::1"
SERVER64 = "64:ff9b::2d56:606"
PAYLOAD = b"kubevpc nat payload!"


def row_of(pkt: Packet, width: int) -> np.ndarray:
    raw = bytes(pkt)
    return np.frombuffer(raw[:width].ljust(width, b"\x00"), dtype=np.uint8).copy()


def rebuilt(rows: np.ndarray, original: Packet, header_len: int, new_header_len: int) -> bytes:
    """The full packet: the rewritten leading bytes plus the untouched payload after them."""
    raw = bytes(original)
    width = rows.shape[1]
    consumed = width - new_header_len + header_len
    return bytes(rows[0]) + raw[consumed:]


def same_checksums(pkt: Packet) -> None:
    """Every checksum in ``pkt`` equals scapy's recomputation."""
    fresh = pkt.__class__(bytes(pkt))
    probe = fresh.copy()
    for layer in (IP, TCP, UDP, ICMP):
        if layer in probe:
            probe[layer].chksum = None
    for layer in (ICMPv6EchoRequest, ICMPv6EchoReply):
        if layer in probe:
            probe[layer].cksum = None
    again = pkt.__class__(bytes(probe))
    for layer, field in ((IP, "chksum"), (TCP, "chksum"), (UDP, "chksum"), (ICMP, "chksum")):
        if layer in fresh:
            assert getattr(fresh[layer], field) == getattr(again[layer], field), layer.__name__
    for layer in (ICMPv6EchoRequest, ICMPv6EchoReply):
        if layer in fresh:
            assert fresh[layer].cksum == again[layer].cksum, layer.__name__


@pytest.mark.parametrize(
    "l4",
    [TCP(sport=12345, dport=443, flags="S"), UDP(sport=12345, dport=53), ICMP(type=8, id=0x40, seq=3)],
    ids=["tcp", "udp", "icmp"],
)
def test_snat_rewrite_keeps_checksums_valid(l4: Packet) -> None:
    pkt = IP(src=VM, dst=SERVER, ttl=61) / l4 / PAYLOAD
    rows = row_of(pkt, rewrite.ROW_V4)[None, :]
    proto = np.array([pkt.proto], np.uint8)
    rewrite.nat_ipv4(
        rows,
        proto,
        src=np.array([int(IPv4Address(NAT))], np.uint32),
        sport=np.array([101], np.uint16),
        icmp_id=np.array([101], np.uint16),
    )
    out = IP(rebuilt(rows, pkt, 0, 0))
    assert out.src == NAT and out.dst == SERVER and out.ttl == 61
    if TCP in out or UDP in out:
        assert out.sport == 101 and out.dport == l4.dport
    else:
        assert out[ICMP].id == 101 and out[ICMP].seq == 3
    same_checksums(out)


def test_udp_without_checksum_stays_without() -> None:
    pkt = IP(src=VM, dst=SERVER) / UDP(sport=1, dport=2, chksum=0) / PAYLOAD
    rows = row_of(pkt, rewrite.ROW_V4)[None, :]
    rewrite.nat_ipv4(rows, np.array([17], np.uint8), src=np.array([int(IPv4Address(NAT))], np.uint32))
    assert IP(rebuilt(rows, pkt, 0, 0))[UDP].chksum == 0


@pytest.mark.parametrize(
    "l4",
    [TCP(sport=1246, dport=80, flags="S"), UDP(sport=1246, dport=53), ICMPv6EchoRequest(id=0x77, seq=1)],
    ids=["tcp", "udp", "ping"],
)
def test_nat64_to_ipv4(l4: Packet) -> None:
    pkt = IPv6(src=VM6, dst=SERVER64, hlim=60, tc=0x28) / l4 / PAYLOAD
    rows, ok = rewrite.to_ipv4(
        row_of(pkt, rewrite.ROW_V6)[None, :],
        np.array([int(IPv4Address(NAT))], np.uint32),
        np.array([100], np.uint16),
    )
    assert ok.tolist() == [True]
    out = IP(rebuilt(rows, pkt, 40, 20))
    assert (out.src, out.dst, out.ttl, out.tos, out.id, out.flags) == (NAT, SERVER, 60, 0x28, 0, 0)
    assert out.len == len(bytes(out))
    if ICMP in out:
        assert (out[ICMP].type, out[ICMP].code, out[ICMP].id, out[ICMP].seq) == (8, 0, 100, 1)
    else:
        assert out.sport == 100 and out.dport == l4.dport
    same_checksums(out)


@pytest.mark.parametrize(
    "l4",
    [TCP(sport=80, dport=100, flags="SA"), UDP(sport=53, dport=100), ICMP(type=0, id=100, seq=1)],
    ids=["tcp", "udp", "pong"],
)
def test_nat64_reply_to_ipv6(l4: Packet) -> None:
    pkt = IP(src=SERVER, dst=NAT, ttl=57, tos=0x10) / l4 / PAYLOAD
    s_hi, s_lo = split(IPv6Address(SERVER64))
    d_hi, d_lo = split(IPv6Address(VM6))
    rows, ok = rewrite.to_ipv6(
        row_of(pkt, rewrite.ROW_V4)[None, :],
        src6_hi=np.array([s_hi], np.uint64),
        src6_lo=np.array([s_lo], np.uint64),
        dst6_hi=np.array([d_hi], np.uint64),
        dst6_lo=np.array([d_lo], np.uint64),
        dport=np.array([1246], np.uint16),
    )
    assert ok.tolist() == [True]
    out = IPv6(rebuilt(rows, pkt, 20, 40))
    assert (out.src, out.dst, out.hlim, out.tc) == (SERVER64, VM6, 57, 0x10)
    assert out.plen == len(bytes(out)) - 40
    if ICMPv6EchoReply in out:
        assert (out[ICMPv6EchoReply].id, out[ICMPv6EchoReply].seq) == (1246, 1)
    else:
        assert out.dport == 1246 and out.sport == l4.sport
    same_checksums(out)


def test_other_icmp_types_are_not_translated() -> None:
    pkt = IP(src=SERVER, dst=NAT) / ICMP(type=3, code=3) / IP(src=NAT, dst=SERVER) / UDP()
    z = np.zeros(1, np.uint64)
    _, ok = rewrite.to_ipv6(
        row_of(pkt, rewrite.ROW_V4)[None, :],
        src6_hi=z,
        src6_lo=z,
        dst6_hi=z,
        dst6_lo=z,
        dport=np.zeros(1, np.uint16),
    )
    assert ok.tolist() == [False]
