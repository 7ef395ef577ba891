"""ICMP for IPv4 (RFC 792): header layout and the types the dataplane distinguishes.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Identifier          |        Sequence Number        |  (echo)
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     unused / next-hop MTU     |  + the offending IP header    |  (errors)
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Flow keys follow dpservice (DPSERVICE.md §4.12): for echo the batch's ``sport`` column holds the
type and ``dport`` the identifier. Only echo (0, 8) and destination unreachable (3) with codes
2, 3, 4 are forwarded (§4.5).
"""

from __future__ import annotations

import struct
from enum import IntEnum

ICMP = struct.Struct("!BBHHH")
ICMP_LEN = ICMP.size  # 8 bytes: every ICMP message has at least these

OFF_TYPE = 0
OFF_CODE = 1
OFF_CHECKSUM = 2
OFF_IDENTIFIER = 4
OFF_SEQUENCE = 6

PROTO = 1


class IcmpType(IntEnum):
    ECHO_REPLY = 0
    DEST_UNREACHABLE = 3
    ECHO_REQUEST = 8


class UnreachableCode(IntEnum):
    """Destination-unreachable codes dpservice forwards (errors that follow a tracked flow)."""

    PROTOCOL = 2
    PORT = 3
    FRAGMENTATION_NEEDED = 4


FORWARDED_TYPES = (IcmpType.ECHO_REPLY, IcmpType.ECHO_REQUEST, IcmpType.DEST_UNREACHABLE)
FORWARDED_UNREACHABLE_CODES = tuple(UnreachableCode)
