"""ICMPv6 (RFC 4443 §2.1) and the Neighbor Discovery types ``cls`` steers (RFC 4861 §4).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Message Body (identifier, sequence, ...)   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The checksum covers the IPv6 pseudo-header. Flow keys track every ICMPv6 type by
(type, identifier) like dpservice: ``sport`` = type, ``dport`` = bytes 4-5.
"""

from __future__ import annotations

import struct
from enum import IntEnum

ICMPV6 = struct.Struct("!BBHHH")
ICMPV6_LEN = ICMPV6.size  # 8 bytes

OFF_TYPE = 0
OFF_CODE = 1
OFF_CHECKSUM = 2
OFF_IDENTIFIER = 4

PROTO = 58


class Icmpv6Type(IntEnum):
    ECHO_REQUEST = 128
    ECHO_REPLY = 129
    ROUTER_SOLICITATION = 133
    ROUTER_ADVERTISEMENT = 134
    NEIGHBOR_SOLICITATION = 135
    NEIGHBOR_ADVERTISEMENT = 136


ND_TO_RESPONDER = (Icmpv6Type.NEIGHBOR_SOLICITATION, Icmpv6Type.ROUTER_SOLICITATION)  # cls → ipv6_nd
