"""IPv4 header (RFC 791 §3.1): offsets for the vectorized path, a struct for slow paths.

::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Like dpservice, the dataplane handles only 20-byte headers (IHL 5): the transport header is at
:data:`IPV4_LEN`. Headers with options are dropped by ``cls`` rather than misparsed.
"""

from __future__ import annotations

import struct

from kubevpc_agent.protocols.checksum import checksum

IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPV4_LEN = IPV4.size  # 20 bytes, IHL 5
VERSION = 4

OFF_VERSION_IHL = 0
OFF_TOS = 1
OFF_TOTAL_LENGTH = 2
OFF_ID = 4
OFF_FLAGS_FRAG = 6
OFF_TTL = 8
OFF_PROTO = 9
OFF_CHECKSUM = 10
OFF_SRC = 12
OFF_DST = 16

FLAG_DF = 0x4000  # don't fragment, in the flags/fragment-offset word
FLAG_MF = 0x2000  # more fragments
FRAG_OFFSET_MASK = 0x1FFF
FRAGMENT_MASK = FLAG_MF | FRAG_OFFSET_MASK  # non-zero: the packet is a fragment

DEFAULT_TTL = 64


def build_ipv4(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    *,
    ttl: int = DEFAULT_TTL,
    ident: int = 0,
    tos: int = 0,
    flags: int = 0,
) -> bytes:
    """A 20-byte IPv4 header with a correct checksum for ``payload_len`` bytes of payload."""
    header = IPV4.pack(0x45, tos, IPV4_LEN + payload_len, ident, flags, ttl, proto, 0, src, dst)
    return header[:OFF_CHECKSUM] + checksum(header).to_bytes(2, "big") + header[OFF_CHECKSUM + 2 :]
