"""Ethernet II framing (IEEE 802.3 clause 3, RFC 894): the 14-byte header every frame starts with.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                 destination MAC address (6)                   |
    +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                               |                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
    |                   source MAC address (6)                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          ether type           |  payload ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The dataplane takes no VLAN tags (dpservice's ports are untagged), so the network header always
starts at :data:`ETHER_LEN`.
"""

from __future__ import annotations

import struct
from enum import IntEnum

ETHER = struct.Struct("!6s6sH")
ETHER_LEN = ETHER.size  # 14 bytes
MIN_FRAME_LEN = 60  # shortest frame on the wire without FCS; TAP frames may be shorter

OFF_DST = 0
OFF_SRC = 6
OFF_TYPE = 12

BROADCAST = b"\xff" * 6


class EtherType(IntEnum):
    """Ether types the dataplane knows."""

    IPV4 = 0x0800
    ARP = 0x0806
    VLAN = 0x8100
    IPV6 = 0x86DD


def build_ether(dst: bytes, src: bytes, ether_type: int) -> bytes:
    """The 14-byte Ethernet header."""
    return ETHER.pack(dst, src, ether_type)
