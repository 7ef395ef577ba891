"""IPv6 Neighbor Discovery messages (RFC 4861 §4) and the frames that carry them.

Every ND message is ICMPv6 (type, code, checksum) followed by::

    RS  (133): reserved (4)                                             options
    RA  (134): cur hop limit (1), M|O flags (1), router lifetime (2),
               reachable time (4), retrans timer (4)                    options
    NS  (135): reserved (4), target address (16)                        options
    NA  (136): R|S|O flags + reserved (4), target address (16)          options

Options are ``type (1), length in units of 8 bytes (1), data``; the link-layer address options
(§4.6.1) carry a MAC: ``type, 1, mac (6)``. ND packets go out with hop limit 255 (§6.1.2, §7.1.2:
receivers drop anything less).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from ipaddress import IPv6Address

from kubevpc_agent.protocols.checksum import checksum, pseudo_header_sum
from kubevpc_agent.protocols.ether import EtherType, build_ether
from kubevpc_agent.protocols.icmpv6 import PROTO as PROTO_ICMPV6
from kubevpc_agent.protocols.icmpv6 import Icmpv6Type
from kubevpc_agent.protocols.ipv6 import VTC_FLOW_DEFAULT, build_ipv6

RA = struct.Struct("!BBHBBHII")  # type, code, checksum, cur hop limit, flags, lifetime, reachable, retrans
RA_LEN = RA.size  # 16 bytes
NA = struct.Struct("!BBHI16s")  # type, code, checksum, flags, target (NS: reserved instead of flags)
NA_LEN = NA.size  # 24 bytes, as NS
LL_OPTION = struct.Struct("!BB6s")  # type, length (1 = 8 bytes), MAC
LL_OPTION_LEN = LL_OPTION.size  # 8 bytes

HOP_LIMIT = 255  # every ND packet is sent with it
ALL_NODES = IPv6Address("ff02::1")
ALL_NODES_MAC = bytes.fromhex("333300000001")  # RFC 2464 §7: 33:33 + low 32 bits of ff02::1
UNSPECIFIED = IPv6Address("::")

RA_MANAGED = 0x80  # M: addresses via DHCPv6
RA_OTHER = 0x40  # O: other configuration (DNS) via DHCPv6
NA_ROUTER = 0x80000000  # R: the sender is a router
NA_SOLICITED = 0x40000000  # S: an answer to an NS
NA_OVERRIDE = 0x20000000  # O: replace a cached link-layer address
RA_LIFETIME_MAX = 0xFFFF  # seconds


class NdOption(IntEnum):
    """ND option types (RFC 4861 §4.6)."""

    SOURCE_LL_ADDR = 1
    TARGET_LL_ADDR = 2
    PREFIX_INFO = 3
    MTU = 5


def build_ll_option(option: NdOption, mac: bytes) -> bytes:
    """A Source/Target Link-Layer Address option for an Ethernet MAC."""
    return LL_OPTION.pack(option, 1, mac)


def build_ra(
    source_mac: bytes | None, *, cur_hop_limit: int = HOP_LIMIT, flags: int = RA_MANAGED | RA_OTHER
) -> bytes:
    """A Router Advertisement as dpservice sends it: infinite-ish lifetime, no prefix (DHCPv6 has the
    addresses), reachable time and retrans timer unspecified, one Source LL option (zeros if no MAC yet).

    The checksum is zero: :func:`build_nd_frame` fills it in.
    """
    body = RA.pack(Icmpv6Type.ROUTER_ADVERTISEMENT, 0, 0, cur_hop_limit, flags, RA_LIFETIME_MAX, 0, 0)
    return body + build_ll_option(NdOption.SOURCE_LL_ADDR, source_mac or bytes(6))


def build_na(target: IPv6Address, flags: int, options: bytes = b"") -> bytes:
    """A Neighbor Advertisement for ``target`` (checksum zero, see :func:`build_nd_frame`)."""
    return NA.pack(Icmpv6Type.NEIGHBOR_ADVERTISEMENT, 0, 0, flags, target.packed) + options


def build_nd_frame(
    *,
    eth_dst: bytes,
    eth_src: bytes,
    ip_src: IPv6Address | bytes,
    ip_dst: IPv6Address | bytes,
    message: bytes,
    hop_limit: int = HOP_LIMIT,
    vtc_flow: int = VTC_FLOW_DEFAULT,
) -> bytes:
    """Ether + IPv6 + ``message`` (an ICMPv6 message) with its checksum computed."""
    src = ip_src if isinstance(ip_src, bytes) else ip_src.packed
    dst = ip_dst if isinstance(ip_dst, bytes) else ip_dst.packed
    body = message[:2] + b"\0\0" + message[4:]
    csum = checksum(body, pseudo_header_sum(src, dst, PROTO_ICMPV6, len(body)))
    body = body[:2] + csum.to_bytes(2, "big") + body[4:]
    return (
        build_ether(eth_dst, eth_src, EtherType.IPV6)
        + build_ipv6(src, dst, PROTO_ICMPV6, len(body), hop_limit=hop_limit, vtc_flow=vtc_flow)
        + body
    )
