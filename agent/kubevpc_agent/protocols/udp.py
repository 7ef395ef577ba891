"""UDP header (RFC 768).

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |            Length             |           Checksum            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Over IPv4 a zero checksum means "none"; a computed zero is sent as 0xFFFF (RFC 768). Over IPv6
the checksum is mandatory (RFC 8200 §8.1).
"""

from __future__ import annotations

import struct

from kubevpc_agent.protocols.checksum import checksum, pseudo_header_sum

UDP = struct.Struct("!HHHH")
UDP_LEN = UDP.size  # 8 bytes

OFF_SPORT = 0
OFF_DPORT = 2
OFF_LENGTH = 4
OFF_CHECKSUM = 6

PROTO = 17

DHCP_SERVER_PORT = 67  # BOOTP server (RFC 2131)
DHCP_CLIENT_PORT = 68
DHCPV6_CLIENT_PORT = 546  # RFC 8415 §7.2
DHCPV6_SERVER_PORT = 547


def build_udp(src_ip: bytes, dst_ip: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    """UDP header + payload with the checksum over the IPv4 or IPv6 pseudo-header of the addresses."""
    length = UDP_LEN + len(payload)
    header = UDP.pack(sport, dport, length, 0)
    csum = checksum(header + payload, pseudo_header_sum(src_ip, dst_ip, PROTO, length))
    return UDP.pack(sport, dport, length, csum or 0xFFFF) + payload
