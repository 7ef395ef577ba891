"""DHCPv4: the BOOTP message (RFC 2131 §2), its options (RFC 2132, RFC 3004, RFC 3442).

::

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     op (1)    |   htype (1)   |   hlen (1)    |   hops (1)    |
    |                            xid (4)                            |
    |           secs (2)            |           flags (2)           |
    |                          ciaddr  (4)                          |
    |                          yiaddr  (4)                          |
    |                          siaddr  (4)                          |
    |                          giaddr  (4)                          |
    |                          chaddr  (16)                         |
    |                          sname   (64)                         |
    |                          file    (128)                        |
    |                  magic cookie 99.130.83.99 (4)                |
    |                          options (variable)                   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Options are ``code, length, value`` triples, except PAD (0) and END (255), which are one byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network

from kubevpc_agent.protocols.ether import EtherType, build_ether
from kubevpc_agent.protocols.ipv4 import build_ipv4
from kubevpc_agent.protocols.udp import DHCP_CLIENT_PORT, DHCP_SERVER_PORT, build_udp
from kubevpc_agent.protocols.udp import PROTO as UDP_PROTO

BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s4s")
BOOTP_LEN = BOOTP.size  # 240 bytes: the fixed header including the magic cookie
MAGIC_COOKIE = bytes((99, 130, 83, 99))  # RFC 2131 §3


class BootpOp(IntEnum):
    """BOOTP ``op`` field."""

    REQUEST = 1
    REPLY = 2


class MessageType(IntEnum):
    """DHCP message type, option 53 (RFC 2132 §9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class OptionCode(IntEnum):
    """The DHCP options the agent reads or writes."""

    PAD = 0
    SUBNET_MASK = 1  # RFC 2132 §3.3
    ROUTER = 3  # RFC 2132 §3.5
    DNS = 6  # RFC 2132 §3.8
    HOSTNAME = 12  # RFC 2132 §3.14
    INTERFACE_MTU = 26  # RFC 2132 §5.1
    LEASE_TIME = 51  # RFC 2132 §9.2
    MESSAGE_TYPE = 53  # RFC 2132 §9.6
    SERVER_ID = 54  # RFC 2132 §9.7
    VENDOR_CLASS_ID = 60  # RFC 2132 §9.13
    USER_CLASS = 77  # RFC 3004
    CLASSLESS_ROUTE = 121  # RFC 3442
    END = 255


@dataclass(frozen=True, slots=True)
class Bootp:
    """The fixed part of a BOOTP message (addresses and strings as raw bytes)."""

    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: bytes
    yiaddr: bytes
    siaddr: bytes
    giaddr: bytes
    chaddr: bytes  # 16 bytes
    sname: bytes  # 64 bytes
    file: bytes  # 128 bytes
    magic: bytes

    def pack(self) -> bytes:
        return BOOTP.pack(
            self.op, self.htype, self.hlen, self.hops, self.xid, self.secs, self.flags,
            self.ciaddr, self.yiaddr, self.siaddr, self.giaddr,
            self.chaddr, self.sname, self.file, self.magic,
        )  # fmt: skip


def parse_bootp(data: bytes | bytearray | memoryview) -> Bootp | None:
    """The fixed header at the start of ``data``; None if truncated."""
    if len(data) < BOOTP_LEN:
        return None
    return Bootp(*BOOTP.unpack_from(data))


def parse_options(data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]] | None:
    """The options in ``data`` up to END as ``(code, value)`` pairs; None if an option overruns.

    PAD bytes are skipped; a missing END is tolerated (the data simply runs out).
    """
    out: list[tuple[int, bytes]] = []
    raw = bytes(data)
    i, n = 0, len(raw)
    while i < n:
        code = raw[i]
        i += 1
        if code == OptionCode.PAD:
            continue
        if code == OptionCode.END:
            break
        if i >= n:
            return None
        length = raw[i]
        i += 1
        if i + length > n:
            return None
        out.append((code, raw[i : i + length]))
        i += length
    return out


def build_option(code: OptionCode, value: bytes) -> bytes:
    """One ``code, length, value`` option (raises ValueError above 255 value bytes)."""
    if len(value) > 255:
        raise ValueError(f"DHCP option {code.name} value of {len(value)} bytes exceeds 255")
    return bytes((code, len(value))) + value


def encode_classless_routes(routes: Iterable[tuple[IPv4Network, IPv4Address]]) -> bytes:
    """RFC 3442 option 121 value: per route the prefix length, its significant octets, the router."""
    out = bytearray()
    for prefix, router in routes:
        significant = (prefix.prefixlen + 7) // 8
        out.append(prefix.prefixlen)
        out += prefix.network_address.packed[:significant]
        out += router.packed
    return bytes(out)


# --- PXE detection, shared with DHCPv6 (dpservice include/nodes/dhcp_node.h) ---------------------

PXE_VENDOR_CLASS = b"PXEClient:Arch:00007"  # option 60 / DHCPv6 16 substring: x86-64 UEFI PXE firmware
IPXE_USER_CLASS = b"iPXE"  # option 77 / DHCPv6 15 value: the iPXE loader asking for its script
PXE_TFTP_PATH = "ipxe/x86_64/ipxe.new"  # what PXE firmware fetches by TFTP: the iPXE loader


class PxeMode(IntEnum):
    """How a client wants to boot, from its class options."""

    NONE = 0
    TFTP = 1  # PXE firmware: gets the iPXE loader by TFTP
    HTTP = 2  # iPXE: gets the interface's boot file by HTTP


# --- the reply frame -------------------------------------------------------------------------------


def build_reply_frame(
    *,
    eth_dst: bytes,
    eth_src: bytes,
    ip_src: bytes,
    ip_dst: bytes,
    tos: int,
    ident: int,
    frag: int,
    ttl: int,
    message: bytes,
) -> bytes:
    """Ether + IPv4 (20 bytes) + UDP 67 → 68 + ``message``, with both checksums filled in."""
    datagram = build_udp(ip_src, ip_dst, DHCP_SERVER_PORT, DHCP_CLIENT_PORT, message)
    return (
        build_ether(eth_dst, eth_src, EtherType.IPV4)
        + build_ipv4(ip_src, ip_dst, UDP_PROTO, len(datagram), ttl=ttl, ident=ident, tos=tos, flags=frag)
        + datagram
    )
