"""Checksums against scapy's, and incremental updates against full recomputation."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.utils import checksum as scapy_checksum

from kubevpc_agent.protocols import checksum as ck


@given(st.binary(min_size=0, max_size=200))
def test_checksum_matches_scapy(data: bytes) -> None:
    assert ck.checksum(data) == (scapy_checksum(data) if data else 0xFFFF)


def test_ipv4_header_checksum_rows() -> None:
    headers = [bytes(IP(src=f"10.0.0.{i}", dst="10.1.0.1", ttl=64, id=i)) for i in range(1, 9)]
    expected = [int.from_bytes(h[10:12], "big") for h in headers]
    zeroed = np.array([list(h[:10] + b"\x00\x00" + h[12:20]) for h in headers], dtype=np.uint8)
    assert ck.checksum_rows(zeroed).tolist() == expected


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(1, 65535))
def test_update32_equals_recomputation(old_ip: int, new_ip: int, sport: int) -> None:
    def udp_sum(ip: int) -> int:
        pkt = IP(src=str(np_ip(ip)), dst="192.0.2.1") / UDP(sport=sport, dport=53) / b"x"
        return int(IP(bytes(pkt))[UDP].chksum)

    old, new = udp_sum(old_ip), udp_sum(new_ip)
    got = ck.update32_vec(
        np.array([old], dtype=np.uint16), np.array([old_ip], dtype=np.uint32), np.array([new_ip], np.uint32)
    )
    # 0x0000 and 0xFFFF are the same value in one's complement; UDP transmits 0 as 0xFFFF
    assert int(got[0]) in ({new, 0xFFFF} if new in (0, 0xFFFF) else {new})


def np_ip(value: int) -> str:
    return ".".join(str((value >> s) & 0xFF) for s in (24, 16, 8, 0))


def test_update16_scalar() -> None:
    data = bytearray(b"\x45\x00\x00\x54\x12\x34\x40\x00\x40\x01\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02")
    before = ck.checksum(data)
    data[8:10] = b"\x3f\x01"  # TTL 64 -> 63
    assert ck.update16(before, 0x4001, 0x3F01) == ck.checksum(data)
