"""Header builders of ``protocols/`` byte for byte against scapy (scapy's .uts habit)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.protocols import ether, ipv4, ipv6, tcp, udp

V4_SRC, V4_DST = IPv4Address("10.0.0.1"), IPv4Address("192.0.2.200")
V6_SRC, V6_DST = IPv6Address("2001:db8::1"), IPv6Address("fe80::1")


def test_ether() -> None:
    raw = ether.build_ether(b"\x01" * 6, b"\x02" * 6, ether.EtherType.IPV6)
    assert raw == bytes(Ether(dst="01:01:01:01:01:01", src="02:02:02:02:02:02", type=0x86DD))
    assert ether.ETHER_LEN == 14


@given(st.integers(0, 1480), st.integers(1, 255), st.integers(0, 65535), st.sampled_from([0, ipv4.FLAG_DF]))
def test_ipv4_header(payload_len: int, ttl: int, ident: int, flags: int) -> None:
    raw = ipv4.build_ipv4(V4_SRC.packed, V4_DST.packed, 17, payload_len, ttl=ttl, ident=ident, flags=flags)
    pkt = IP(
        src=str(V4_SRC),
        dst=str(V4_DST),
        proto=17,
        ttl=ttl,
        id=ident,
        flags="DF" if flags else 0,
        len=20 + payload_len,
    )
    assert raw == bytes(pkt)[:20]


def test_ipv6_header_and_halves() -> None:
    raw = ipv6.build_ipv6(V6_SRC.packed, V6_DST.packed, ipv6.NH_IPIP, 28)
    assert raw == bytes(IPv6(src=str(V6_SRC), dst=str(V6_DST), nh=4, plen=28, hlim=64))
    hi, lo = ipv6.split(V6_SRC)
    assert (hi, lo) == (0x20010DB800000000, 1)
    assert ipv6.join(hi, lo) == V6_SRC
    assert ipv6.split(V6_SRC.packed) == (hi, lo)


@given(st.binary(max_size=64), st.integers(1, 65535), st.integers(1, 65535))
def test_udp_checksum_over_both_families(payload: bytes, sport: int, dport: int) -> None:
    v4 = udp.build_udp(V4_SRC.packed, V4_DST.packed, sport, dport, payload)
    assert v4 == bytes(IP(src=str(V4_SRC), dst=str(V4_DST)) / UDP(sport=sport, dport=dport) / payload)[20:]
    v6 = udp.build_udp(V6_SRC.packed, V6_DST.packed, sport, dport, payload)
    assert v6 == bytes(IPv6(src=str(V6_SRC), dst=str(V6_DST)) / UDP(sport=sport, dport=dport) / payload)[40:]


def test_tcp_offsets() -> None:
    raw = bytes(TCP(sport=1, dport=2, flags="SA"))
    assert raw[tcp.OFF_DPORT : tcp.OFF_DPORT + 2] == b"\x00\x02"
    assert raw[tcp.OFF_FLAGS] == tcp.TcpFlags.SYN | tcp.TcpFlags.ACK
    assert tcp.TCP.size == tcp.TCP_LEN == 20
