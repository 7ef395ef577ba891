"""ARP for IPv4 over Ethernet (RFC 826): the 28 bytes after the Ethernet header.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      hardware type (1)        |    protocol type (0x0800)     |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  hlen (6)     |  plen (4)     |           opcode              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  sender hardware address (6) | sender protocol address (4)   |
    |  target hardware address (6) | target protocol address (4)   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

ARP = struct.Struct("!HHBBH6s4s6s4s")
ARP_LEN = ARP.size  # 28 bytes
HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800

# offsets inside the ARP packet
OFF_OPCODE = 6
OFF_SHA = 8
OFF_SPA = 14
OFF_THA = 18
OFF_TPA = 24


class ArpOp(IntEnum):
    """ARP opcodes (RFC 826)."""

    REQUEST = 1
    REPLY = 2


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """The variable fields of an Ethernet/IPv4 ARP packet (addresses as raw bytes)."""

    op: int
    sha: bytes  # sender hardware address, 6 bytes
    spa: bytes  # sender protocol (IPv4) address, 4 bytes
    tha: bytes
    tpa: bytes


def parse_arp(data: bytes | bytearray | memoryview) -> ArpPacket | None:
    """The ARP packet at the start of ``data``; None if truncated or not Ethernet/IPv4 ARP."""
    if len(data) < ARP_LEN:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = ARP.unpack_from(data)
    if htype != HTYPE_ETHERNET or ptype != PTYPE_IPV4 or hlen != 6 or plen != 4:
        return None
    return ArpPacket(op, sha, spa, tha, tpa)


def build_arp(op: ArpOp, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An Ethernet/IPv4 ARP packet (28 bytes, no Ethernet header)."""
    return ARP.pack(HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, op, sha, spa, tha, tpa)
