"""Bob Jenkins' lookup3 hash as DPDK's ``rte_jhash.h`` computes it, bit for bit, scalar and vectorized.

dpservice hashes every flow key with it (``rte_jhash_32b(key, 11, 0xfee1900d)``, DPSERVICE.md
§4.12), and the same value picks the WCMP uplink, the Maglev slot and NAT ports, so agreeing with
dpservice on these choices means agreeing on this function. Words are the key's little-endian
32-bit words (DPDK runs on little-endian x86; its flow-key fields are host-order integers).

The vectorized form hashes one key per row of an ``(n, words)`` ``uint32`` matrix with column
arithmetic, for a whole batch at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

GOLDEN_RATIO = 0xDEADBEEF  # RTE_JHASH_GOLDEN_RATIO: lookup3's initial state constant
MASK32 = 0xFFFFFFFF
DPSERVICE_INITVAL = 0xFEE1900D  # dpservice's hash_func_init_val for every jhash table

U32 = npt.NDArray[np.uint32]


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & MASK32


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = ((a - c) & MASK32) ^ _rot(c, 4)
    c = (c + b) & MASK32
    b = ((b - a) & MASK32) ^ _rot(a, 6)
    a = (a + c) & MASK32
    c = ((c - b) & MASK32) ^ _rot(b, 8)
    b = (b + a) & MASK32
    a = ((a - c) & MASK32) ^ _rot(c, 16)
    c = (c + b) & MASK32
    b = ((b - a) & MASK32) ^ _rot(a, 19)
    a = (a + c) & MASK32
    c = ((c - b) & MASK32) ^ _rot(b, 4)
    b = (b + a) & MASK32
    return a, b, c


def _final(a: int, b: int, c: int) -> int:
    c = ((c ^ b) - _rot(b, 14)) & MASK32
    a = ((a ^ c) - _rot(c, 11)) & MASK32
    b = ((b ^ a) - _rot(a, 25)) & MASK32
    c = ((c ^ b) - _rot(b, 16)) & MASK32
    a = ((a ^ c) - _rot(c, 4)) & MASK32
    b = ((b ^ a) - _rot(a, 14)) & MASK32
    c = ((c ^ b) - _rot(b, 24)) & MASK32
    return c


def jhash(key: bytes, initval: int = 0) -> int:
    """``rte_jhash(key, len(key), initval)``: any byte string, read as little-endian words."""
    length = len(key)
    padded = key + b"\x00" * (-length % 4)  # the tail masks drop these bytes again
    words = [int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)]
    a = b = c = (GOLDEN_RATIO + length + initval) & MASK32
    if length == 0:
        return c
    i = 0
    while length > 12:
        a, b, c = _mix((a + words[i]) & MASK32, (b + words[i + 1]) & MASK32, (c + words[i + 2]) & MASK32)
        i += 3
        length -= 12
    # the last 1..12 bytes: whole words as they are, a partial last word masked to its bytes
    tail = [0, 0, 0]
    for j in range((length + 3) // 4):
        nbytes = min(4, length - 4 * j)
        tail[j] = words[i + j] & ((1 << (8 * nbytes)) - 1)
    return _final((a + tail[0]) & MASK32, (b + tail[1]) & MASK32, (c + tail[2]) & MASK32)


def jhash_32b(words: Sequence[int], initval: int = 0) -> int:
    """``rte_jhash_32b(words, len(words), initval)``: a key of whole 32-bit words."""
    return jhash(b"".join((w & MASK32).to_bytes(4, "little") for w in words), initval)


def jhash_3words(a: int, b: int, c: int, initval: int = 0) -> int:
    """``rte_jhash_3words``: equal to :func:`jhash_32b` of the three words."""
    base = GOLDEN_RATIO + initval
    return _final((a + 12 + base) & MASK32, (b + 12 + base) & MASK32, (c + 12 + base) & MASK32)


def jhash_2words(a: int, b: int, initval: int = 0) -> int:
    """``rte_jhash_2words``: equal to :func:`jhash_32b` of the two words."""
    base = GOLDEN_RATIO + initval
    return _final((a + 8 + base) & MASK32, (b + 8 + base) & MASK32, (8 + base) & MASK32)


def jhash_1word(a: int, initval: int = 0) -> int:
    """``rte_jhash_1word``: equal to :func:`jhash_32b` of the one word."""
    base = GOLDEN_RATIO + initval
    return _final((a + 4 + base) & MASK32, (4 + base) & MASK32, (4 + base) & MASK32)


# --- vectorized --------------------------------------------------------------------------------
# uint32 numpy arithmetic wraps modulo 2**32, exactly C's unsigned arithmetic.


def _rot_vec(x: U32, k: int) -> U32:
    return (x << np.uint32(k)) | (x >> np.uint32(32 - k))


def _mix_vec(a: U32, b: U32, c: U32) -> tuple[U32, U32, U32]:
    a = (a - c) ^ _rot_vec(c, 4)
    c = c + b
    b = (b - a) ^ _rot_vec(a, 6)
    a = a + c
    c = (c - b) ^ _rot_vec(b, 8)
    b = b + a
    a = (a - c) ^ _rot_vec(c, 16)
    c = c + b
    b = (b - a) ^ _rot_vec(a, 19)
    a = a + c
    c = (c - b) ^ _rot_vec(b, 4)
    b = b + a
    return a, b, c


def _final_vec(a: U32, b: U32, c: U32) -> U32:
    c = (c ^ b) - _rot_vec(b, 14)
    a = (a ^ c) - _rot_vec(c, 11)
    b = (b ^ a) - _rot_vec(a, 25)
    c = (c ^ b) - _rot_vec(b, 16)
    a = (a ^ c) - _rot_vec(c, 4)
    b = (b ^ a) - _rot_vec(a, 14)
    c = (c ^ b) - _rot_vec(b, 24)
    return c


def jhash_32b_vec(words: U32, initval: int = 0) -> U32:
    """:func:`jhash_32b` of every row of an ``(n, k)`` ``uint32`` matrix (``k`` ≥ 1 words)."""
    n, k = words.shape
    start = np.uint32((GOLDEN_RATIO + 4 * k + initval) & MASK32)
    a = np.full(n, start, dtype=np.uint32)
    b = a.copy()
    c = a.copy()
    i = 0
    remaining = k
    while remaining > 3:
        a, b, c = _mix_vec(a + words[:, i], b + words[:, i + 1], c + words[:, i + 2])
        i += 3
        remaining -= 3
    a = a + words[:, i]
    if remaining > 1:
        b = b + words[:, i + 1]
    if remaining > 2:
        c = c + words[:, i + 2]
    return _final_vec(a, b, c)
