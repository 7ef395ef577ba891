"""NAT header rewrites over whole batches, with incremental checksums (RFC 1624), and NAT64 (RFC 7915).

Every function works on a byte matrix: one row per packet, starting at the IP header, as
``Batch.read`` returns it; the caller writes the rows back. Checksums are updated, never
recomputed over payloads: a rewrite adds ``~old + new`` for each changed 16-bit word to the
one's-complement sum a checksum protects (RFC 1624 eqn. 3), which also covers the TCP/UDP
pseudo-header when an address changes. A UDP-over-IPv4 checksum of zero means "none" and stays
zero; a computed zero is sent as 0xFFFF (RFC 768).

NAT64 (``to_ipv4`` / ``to_ipv6``) swaps a 40-byte IPv6 header for a 20-byte IPv4 one and back,
as dpservice does (DPSERVICE.md §4.8): TTL = hop limit, TOS = traffic class, ID 0, no DF; ICMPv6
echo ↔ ICMP echo with code 0 (other ICMP types are not translated, the caller drops them). The
transport checksum changes by the difference of the pseudo-headers (ICMP has none, ICMPv6 has
one), so it is updated incrementally as well.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kubevpc_agent.protocols import icmp, icmpv6, ipv4, tcp, udp
from kubevpc_agent.protocols.checksum import checksum_rows, fold_vec

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Bools = npt.NDArray[np.bool_]

L4 = ipv4.IPV4_LEN  # transport header offset inside an IPv4 row
TCP_CSUM = L4 + tcp.OFF_CHECKSUM  # 36
UDP_CSUM = L4 + udp.OFF_CHECKSUM  # 26
ICMP_CSUM = L4 + icmp.OFF_CHECKSUM  # 22
ICMP_ID = L4 + icmp.OFF_IDENTIFIER  # 24
ROW_V4 = TCP_CSUM + 2  # bytes a row needs for every IPv4 rewrite here (38)
ROW_V6 = 40 + tcp.OFF_CHECKSUM + 2  # IPv6 + up to the TCP checksum (58)
_FFFF = np.uint64(0xFFFF)


def get16(rows: U8, at: int) -> U16:
    """Big-endian 16-bit field at column ``at`` of every row."""
    return (rows[:, at].astype(np.uint16) << np.uint16(8)) | rows[:, at + 1]


def put16(rows: U8, at: int, value: U16 | npt.NDArray[np.integer]) -> None:
    v = value.astype(np.uint16)
    rows[:, at] = v >> np.uint16(8)
    rows[:, at + 1] = v & np.uint16(0xFF)


def get32(rows: U8, at: int) -> U32:
    return (get16(rows, at).astype(np.uint32) << np.uint32(16)) | get16(rows, at + 2)


def put32(rows: U8, at: int, value: npt.NDArray[np.integer]) -> None:
    v = value.astype(np.uint32)
    put16(rows, at, (v >> np.uint32(16)).astype(np.uint16))
    put16(rows, at + 2, (v & np.uint32(0xFFFF)).astype(np.uint16))


def word_delta(old: npt.NDArray[np.integer], new: npt.NDArray[np.integer]) -> U64:
    """One's-complement ``~old + new`` for 16-bit words (summands of RFC 1624 updates)."""
    return (~old.astype(np.uint64) & _FFFF) + (new.astype(np.uint64) & _FFFF)


def addr32_delta(old: npt.NDArray[np.integer], new: npt.NDArray[np.integer]) -> U64:
    """``word_delta`` of the two 16-bit halves of 32-bit values (IPv4 addresses)."""
    o, n = old.astype(np.uint64), new.astype(np.uint64)
    s16 = np.uint64(16)
    return word_delta(o >> s16, n >> s16) + word_delta(o & _FFFF, n & _FFFF)


def words_sum(x: U64) -> U64:
    """Sum of the four 16-bit words of 64-bit values (half an IPv6 address)."""
    s16, s32, s48 = np.uint64(16), np.uint64(32), np.uint64(48)
    total: U64 = (x >> s48) + ((x >> s32) & _FFFF) + ((x >> s16) & _FFFF) + (x & _FFFF)
    return total


def apply_delta(csum: U16, delta: U64) -> U16:
    """The checksum after adding ``delta`` to the sum it protects."""
    out: U16 = ~fold_vec((~csum).astype(np.uint64) + delta)
    return out


def _l4_csum_update(rows: U8, proto: U8, delta: U64, icmp_delta: U64) -> None:
    """Add ``delta`` to the TCP/UDP checksum and ``icmp_delta`` to the ICMP one, per row."""
    is_tcp = proto == tcp.PROTO
    is_udp = proto == udp.PROTO
    is_icmp = proto == icmp.PROTO
    if is_tcp.any():
        r = np.flatnonzero(is_tcp)
        sub = rows[r]
        put16(sub, TCP_CSUM, apply_delta(get16(sub, TCP_CSUM), delta[r]))
        rows[r] = sub
    if is_udp.any():
        r = np.flatnonzero(is_udp)
        sub = rows[r]
        old = get16(sub, UDP_CSUM)
        new = apply_delta(old, delta[r])
        new = np.where(old == 0, 0, np.where(new == 0, 0xFFFF, new)).astype(np.uint16)
        put16(sub, UDP_CSUM, new)
        rows[r] = sub
    if is_icmp.any():
        r = np.flatnonzero(is_icmp)
        sub = rows[r]
        put16(sub, ICMP_CSUM, apply_delta(get16(sub, ICMP_CSUM), icmp_delta[r]))
        rows[r] = sub


# 16-bit word positions in an IPv4 row (``rows.view(">u2")``)
_W_IP_CSUM, _W_SRC, _W_DST, _W_SPORT, _W_DPORT, _W_ICMP_ID = 5, 6, 8, 10, 11, 12
CSUM_WORD = np.full(256, -1, dtype=np.intp)  # transport checksum word per protocol
CSUM_WORD[tcp.PROTO] = TCP_CSUM // 2
CSUM_WORD[udp.PROTO] = UDP_CSUM // 2
CSUM_WORD[icmp.PROTO] = ICMP_CSUM // 2
_S16 = np.uint64(16)


def nat_ipv4(
    rows: U8,
    proto: U8,
    *,
    src: U32 | None = None,
    dst: U32 | None = None,
    sport: U16 | None = None,
    dport: U16 | None = None,
    icmp_id: U16 | None = None,
) -> None:
    """Rewrite IPv4 addresses, TCP/UDP ports or the ICMP identifier of every row, in place.

    ``rows`` start at the IPv4 header and hold at least :data:`ROW_V4` bytes (an even width, one
    C-contiguous matrix). Port arguments apply to TCP/UDP rows, ``icmp_id`` to ICMP rows; other
    rows keep those fields. Works on a big-endian 16-bit view of the rows: every header field is a
    column, every checksum one RFC 1624 update.
    """
    w = rows.view(">u2")
    n = len(rows)
    ip_delta = np.zeros(n, dtype=np.uint64)
    addresses: tuple[tuple[npt.NDArray[np.integer] | None, int], ...] = ((src, _W_SRC), (dst, _W_DST))
    for value, at in addresses:
        if value is not None:
            v = value.astype(np.uint64)
            hi, lo = v >> _S16, v & _FFFF
            ip_delta += word_delta(w[:, at], hi) + word_delta(w[:, at + 1], lo)
            w[:, at] = hi
            w[:, at + 1] = lo
    if src is not None or dst is not None:
        w[:, _W_IP_CSUM] = apply_delta(w[:, _W_IP_CSUM], ip_delta)
    is_icmp = proto == icmp.PROTO
    any_icmp = bool(is_icmp.any())
    all_icmp = any_icmp and bool(is_icmp.all())
    l4_delta = ip_delta  # the TCP/UDP pseudo-header holds the addresses
    ports: tuple[tuple[npt.NDArray[np.integer] | None, int], ...] = ((sport, _W_SPORT), (dport, _W_DPORT))
    for value, at in ports:
        if value is not None and not all_icmp:
            old = w[:, at]
            new = value if not any_icmp else np.where(is_icmp, old, value)
            l4_delta = l4_delta + word_delta(old, new)
            w[:, at] = new
    icmp_delta = None
    if icmp_id is not None and any_icmp:
        old = w[:, _W_ICMP_ID]
        new = icmp_id if all_icmp else np.where(is_icmp, icmp_id, old)
        icmp_delta = word_delta(old, new)
        w[:, _W_ICMP_ID] = new
    # one checksum per row: TCP, UDP or ICMP (no pseudo-header: only the identifier counts)
    col = CSUM_WORD[proto]
    delta = l4_delta if icmp_delta is None else np.where(is_icmp, icmp_delta, l4_delta)
    if any_icmp and icmp_delta is None:
        delta = np.where(is_icmp, 0, delta)
    first = int(col[0]) if n else -1
    if first >= 0 and (col == first).all():
        old = w[:, first].astype(np.uint16)
        new = apply_delta(old, delta)
        if first == UDP_CSUM // 2:
            new = np.where(old == 0, 0, np.where(new == 0, 0xFFFF, new))
        w[:, first] = new
        return
    rows_idx = np.flatnonzero(col >= 0)
    c = col[rows_idx]
    old = w[rows_idx, c].astype(np.uint16)
    new = apply_delta(old, delta[rows_idx])
    is_udp = proto[rows_idx] == udp.PROTO
    new = np.where(is_udp & (old == 0), 0, np.where(is_udp & (new == 0), 0xFFFF, new))
    w[rows_idx, c] = new


# --- NAT64 -------------------------------------------------------------------------------------


def _v6_addr_sum(rows: U8, at: int) -> U64:
    hi = rows[:, at : at + 8].copy().view(">u8").reshape(-1).astype(np.uint64)
    lo = rows[:, at + 8 : at + 16].copy().view(">u8").reshape(-1).astype(np.uint64)
    return words_sum(hi) + words_sum(lo)


def to_ipv4(rows6: U8, nat_ip: U32, nat_port: U16) -> tuple[U8, Bools]:
    """IPv6 rows (IPv6 header + transport, :data:`ROW_V6` bytes) as IPv4 rows (:data:`ROW_V4` bytes).

    Source := ``nat_ip``, destination := the IPv4 address embedded in the last 32 bits (RFC 6052
    /96), TCP/UDP source port or ICMP identifier := ``nat_port``; ICMPv6 echo becomes ICMP echo.
    Returns the rows and which of them could be translated (other ICMPv6 types cannot).
    """
    n = len(rows6)
    out = np.zeros((n, ROW_V4), dtype=np.uint8)
    l4 = rows6[:, 40 : 40 + (ROW_V4 - L4)]
    out[:, L4:] = l4
    vtc = get32(rows6, 0)
    plen = get16(rows6, 4)
    nh = rows6[:, 6]
    out[:, 0] = 0x45
    out[:, 1] = ((vtc >> np.uint32(20)) & np.uint32(0xFF)).astype(np.uint8)  # traffic class
    put16(out, ipv4.OFF_TOTAL_LENGTH, (plen + ipv4.IPV4_LEN).astype(np.uint16))
    out[:, ipv4.OFF_TTL] = rows6[:, 7]
    is_icmp6 = nh == icmpv6.PROTO
    proto = np.where(is_icmp6, icmp.PROTO, nh).astype(np.uint8)
    out[:, ipv4.OFF_PROTO] = proto
    put32(out, ipv4.OFF_SRC, nat_ip)
    out[:, ipv4.OFF_DST : ipv4.OFF_DST + 4] = rows6[:, 36:40]  # the embedded IPv4 (last 4 bytes of dst)
    put16(out, ipv4.OFF_CHECKSUM, checksum_rows(out[:, : ipv4.IPV4_LEN]))

    old_pseudo = _v6_addr_sum(rows6, 8) + _v6_addr_sum(rows6, 24)
    new_addr = addr32_sum(get32(out, ipv4.OFF_SRC)) + addr32_sum(get32(out, ipv4.OFF_DST))
    minus_old = ~fold_vec(old_pseudo).astype(np.uint64) & _FFFF
    # TCP/UDP: the pseudo-header's length and protocol stay equal, the addresses change
    delta = minus_old + fold_vec(new_addr).astype(np.uint64)
    delta += word_delta(get16(out, L4 + tcp.OFF_SPORT), nat_port)
    # ICMPv6 -> ICMP: the whole pseudo-header leaves, type/code and identifier change
    old_type = get16(out, L4)
    echo = (old_type >> np.uint16(8)) == icmpv6.Icmpv6Type.ECHO_REQUEST
    reply = (old_type >> np.uint16(8)) == icmpv6.Icmpv6Type.ECHO_REPLY
    new_type = np.where(echo, icmp.IcmpType.ECHO_REQUEST << 8, icmp.IcmpType.ECHO_REPLY << 8).astype(
        np.uint16
    )
    pseudo_rest = plen.astype(np.uint64) + np.uint64(icmpv6.PROTO)
    icmp_delta = (
        (~fold_vec(old_pseudo + pseudo_rest).astype(np.uint64) & _FFFF)
        + word_delta(old_type, new_type)
        + word_delta(get16(out, ICMP_ID), nat_port)
    )
    ok = ~is_icmp6 | echo | reply
    if is_icmp6.any():
        put16(out, L4, np.where(is_icmp6, new_type, old_type))
        put16(out, ICMP_ID, np.where(is_icmp6, nat_port, get16(out, ICMP_ID)))
    has_ports = (proto == tcp.PROTO) | (proto == udp.PROTO)
    put16(out, L4 + tcp.OFF_SPORT, np.where(has_ports, nat_port, get16(out, L4 + tcp.OFF_SPORT)))
    _l4_csum_update(out, proto, delta, icmp_delta)
    return out, ok


def addr32_sum(x: npt.NDArray[np.integer]) -> U64:
    """Sum of the two 16-bit halves of 32-bit values."""
    v = x.astype(np.uint64)
    return (v >> np.uint64(16)) + (v & _FFFF)


def to_ipv6(
    rows4: U8, *, src6_hi: U64, src6_lo: U64, dst6_hi: U64, dst6_lo: U64, dport: U16
) -> tuple[U8, Bools]:
    """IPv4 rows (:data:`ROW_V4` bytes) as IPv6 rows (:data:`ROW_V6` bytes): the NAT64 reply path.

    Addresses become the given IPv6 ones (source ``64:ff9b::<IPv4 source>``, destination the VM),
    the TCP/UDP destination port or ICMP identifier := ``dport``; ICMP echo becomes ICMPv6 echo.
    Returns the rows and which could be translated. A UDP checksum of zero (allowed over IPv4,
    not over IPv6) cannot be updated incrementally: those rows come back with checksum 0 and the
    caller computes it over the payload.
    """
    n = len(rows4)
    out = np.zeros((n, ROW_V6), dtype=np.uint8)
    out[:, 40:] = rows4[:, L4 : L4 + (ROW_V6 - 40)]
    tos = rows4[:, ipv4.OFF_TOS].astype(np.uint32)
    put32(out, 0, (np.uint32(6 << 28) | (tos << np.uint32(20))).astype(np.uint32))
    plen = (get16(rows4, ipv4.OFF_TOTAL_LENGTH) - ipv4.IPV4_LEN).astype(np.uint16)
    put16(out, 4, plen)
    proto = rows4[:, ipv4.OFF_PROTO]
    is_icmp = proto == icmp.PROTO
    nh = np.where(is_icmp, icmpv6.PROTO, proto).astype(np.uint8)
    out[:, 6] = nh
    out[:, 7] = rows4[:, ipv4.OFF_TTL]
    for at, hi, lo in ((8, src6_hi, src6_lo), (24, dst6_hi, dst6_lo)):
        out[:, at : at + 8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
        out[:, at + 8 : at + 16] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    old_addr = addr32_sum(get32(rows4, ipv4.OFF_SRC)) + addr32_sum(get32(rows4, ipv4.OFF_DST))
    new_pseudo = words_sum(src6_hi) + words_sum(src6_lo) + words_sum(dst6_hi) + words_sum(dst6_lo)
    minus_old = ~fold_vec(old_addr).astype(np.uint64) & _FFFF
    delta = minus_old + fold_vec(new_pseudo).astype(np.uint64)
    delta += word_delta(get16(out, 40 + tcp.OFF_DPORT), dport)
    old_type = get16(out, 40)
    echo = (old_type >> np.uint16(8)) == icmp.IcmpType.ECHO_REQUEST
    reply = (old_type >> np.uint16(8)) == icmp.IcmpType.ECHO_REPLY
    new_type = np.where(echo, icmpv6.Icmpv6Type.ECHO_REQUEST << 8, icmpv6.Icmpv6Type.ECHO_REPLY << 8)
    new_type = new_type.astype(np.uint16)
    id_at = 40 + icmpv6.OFF_IDENTIFIER
    icmp_delta = (
        fold_vec(new_pseudo + plen.astype(np.uint64) + np.uint64(icmpv6.PROTO)).astype(np.uint64)
        + word_delta(old_type, new_type)
        + word_delta(get16(out, id_at), dport)
    )
    ok = ~is_icmp | echo | reply
    if is_icmp.any():
        put16(out, 40, np.where(is_icmp, new_type, old_type))
        put16(out, id_at, np.where(is_icmp, dport, get16(out, id_at)))
    has_ports = (proto == tcp.PROTO) | (proto == udp.PROTO)
    put16(out, 40 + tcp.OFF_DPORT, np.where(has_ports, dport, get16(out, 40 + tcp.OFF_DPORT)))
    # transport checksums sit 20 bytes later than in an IPv4 row
    view = out[:, 20:]
    l4_proto = np.where(is_icmp, icmp.PROTO, proto).astype(np.uint8)
    _l4_csum_update(view, l4_proto, delta, icmp_delta)
    out[:, 20:] = view
    return out, ok
