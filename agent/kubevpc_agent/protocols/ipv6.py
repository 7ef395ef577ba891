"""IPv6 header (RFC 8200 §3): offsets for the vectorized path, a struct for slow paths.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version| Traffic Class |           Flow Label                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Payload Length        |  Next Header  |   Hop Limit   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                     Source Address (16)                       +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               |
    +                  Destination Address (16)                     +
    |                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

As in dpservice, extension headers are not walked: the next header is the transport protocol,
and anything else is dropped by ``conntrack``. Addresses travel in batch columns as two
host-order 64-bit halves (``hi``, ``lo``); :func:`split` and :func:`join` convert.

IP-in-IPv6 (RFC 2473) uses next header :data:`NH_IPIP` (4) for an inner IPv4 packet and
:data:`NH_IPV6` (41) for an inner IPv6 packet.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address
from typing import NamedTuple

from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType

IPV6 = struct.Struct("!IHBB16s16s")
IPV6_LEN = IPV6.size  # 40 bytes
VERSION = 6

OFF_VTC_FLOW = 0
OFF_PAYLOAD_LENGTH = 4
OFF_NEXT_HEADER = 6
OFF_HOP_LIMIT = 7
OFF_SRC = 8
OFF_DST = 24

VTC_FLOW_DEFAULT = 0x60000000  # version 6, traffic class 0, flow label 0
NH_IPIP = 4  # IPv4 inside (RFC 2003 protocol number, used by RFC 2473)
NH_IPV6 = 41  # IPv6 inside
NH_FRAGMENT = 44
DEFAULT_HOP_LIMIT = 64  # dpservice's DP_IP6_HOP_LIMIT for the underlay header

LO_MASK = (1 << 64) - 1
_ETHER_TYPE = EtherType.IPV6.to_bytes(2, "big")


def split(addr: IPv6Address | bytes) -> tuple[int, int]:
    """An address as (high 64 bits, low 64 bits), the form of the batch columns."""
    value = int.from_bytes(addr, "big") if isinstance(addr, bytes) else int(addr)
    return value >> 64, value & LO_MASK


def join(hi: int, lo: int) -> IPv6Address:
    """The inverse of :func:`split`."""
    return IPv6Address((int(hi) << 64) | int(lo))


def build_ipv6(
    src: bytes,
    dst: bytes,
    next_header: int,
    payload_len: int,
    *,
    hop_limit: int = DEFAULT_HOP_LIMIT,
    vtc_flow: int = VTC_FLOW_DEFAULT,
) -> bytes:
    """A 40-byte IPv6 header."""
    return IPV6.pack(vtc_flow, payload_len, next_header, hop_limit, src, dst)


class FrameHeader(NamedTuple):
    """The IPv6 header of an Ethernet frame (slow paths), and where its payload ends."""

    vtc_flow: int
    payload_len: int
    hop_limit: int
    src: bytes
    dst: bytes
    end: int  # frame offset one past the payload: Ethernet padding is not payload


def parse_frame(frame: bytes, next_header: int, min_payload: int) -> FrameHeader | None:
    """The header of an Ethernet/IPv6 frame carrying ``next_header`` directly (no extension headers)
    with at least ``min_payload`` bytes of payload, all inside the frame; None for anything else."""
    if len(frame) < ETHER_LEN + IPV6_LEN + min_payload or frame[12:14] != _ETHER_TYPE:
        return None
    vtc_flow, payload_len, found_next_header, hop_limit, src, dst = IPV6.unpack_from(frame, ETHER_LEN)
    end = ETHER_LEN + IPV6_LEN + payload_len
    if (
        vtc_flow >> 28 != VERSION
        or found_next_header != next_header
        or payload_len < min_payload
        or end > len(frame)
    ):
        return None
    return FrameHeader(vtc_flow, payload_len, hop_limit, src, dst, end)
