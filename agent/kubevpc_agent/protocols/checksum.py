"""Internet checksum (RFC 1071), its incremental update (RFC 1624), scalar and vectorized.

Scalar helpers serve slow paths that build whole packets (ARP/DHCP/ND replies); the vectorized
ones serve hot nodes that rewrite headers of a whole batch (NAT, TTL-free forwarding, encap).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def fold(total: int) -> int:
    """Fold a 32-bit-or-wider one's-complement sum into 16 bits."""
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """One's-complement sum of ``data`` as big-endian 16-bit words (odd length zero-padded)."""
    raw = bytes(data)
    if len(raw) % 2:
        raw += b"\x00"
    words = np.frombuffer(raw, dtype=">u2")
    return fold(int(words.sum(dtype=np.uint64)))


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum of ``data`` plus an already-summed ``initial`` (e.g. a pseudo-header)."""
    return (~fold(ones_sum(data) + initial)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """One's-complement sum of the IPv4 (4-byte addresses) or IPv6 (16-byte) pseudo-header."""
    return fold(ones_sum(src) + ones_sum(dst) + proto + length)


def update16(old_checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changed from ``old`` to ``new``."""
    total = (~old_checksum & 0xFFFF) + (~old_word & 0xFFFF) + new_word
    return (~fold(total)) & 0xFFFF


U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]


def fold_vec(total: npt.NDArray[np.uint64] | U32) -> U16:
    """Vectorized :func:`fold` for sums below 2**48."""
    t = total.astype(np.uint64)
    t = (t & np.uint64(0xFFFF)) + (t >> np.uint64(16))
    t = (t & np.uint64(0xFFFF)) + (t >> np.uint64(16))
    t = (t & np.uint64(0xFFFF)) + (t >> np.uint64(16))
    return t.astype(np.uint16)


def update16_vec(old_checksum: U16, old_words: U16, new_words: U16) -> U16:
    """Vectorized RFC 1624 update for one changed 16-bit word per row."""
    total = (~old_checksum).astype(np.uint64) + (~old_words).astype(np.uint64) + new_words.astype(np.uint64)
    return ~fold_vec(total)


def update32_vec(old_checksum: U16, old_value: U32, new_value: U32) -> U16:
    """Vectorized RFC 1624 update for one changed 32-bit field (e.g. an IPv4 address) per row."""
    mask = np.uint32(0xFFFF)
    total = (
        (~old_checksum).astype(np.uint64)
        + (~(old_value >> np.uint32(16)) & mask).astype(np.uint64)
        + (~old_value & mask).astype(np.uint64)
        + (new_value >> np.uint32(16)).astype(np.uint64)
        + (new_value & mask).astype(np.uint64)
    )
    return ~fold_vec(total)


def checksum_rows(words: npt.NDArray[np.uint8]) -> U16:
    """Internet checksum of every row of an ``(n, 2k)`` byte matrix (e.g. IPv4 headers)."""
    w = words.reshape(len(words), -1, 2).astype(np.uint64)
    total = (w[:, :, 0] * np.uint64(256) + w[:, :, 1]).sum(axis=1)
    return ~fold_vec(total)
