"""Maglev lookup table of a load balancer, bit-compatible with dpservice (``src/dp_maglev.c``).

Built in the control plane when a target is added or removed (DPSERVICE.md §4.9) and stored in
``LoadBalancer.maglev``; the datapath only indexes it: ``targets[maglev[flow_hash % 503]]``.
Being bit-compatible means an HA pair or a mixed kubevpc/dpservice fleet with the same targets
sends a flow to the same target.

Per target (targets sorted by their 16 address bytes): ``offset = MurmurHash2(addr, seed 0) %
503`` and ``skip = djb2(addr) with bit 31 cleared % 502 + 1``; its preference list is ``(offset +
j * skip) % 503``. Targets take turns claiming their next free preferred slot until the table is
full (the Maglev paper's population); a slot left free (impossible for a prime size, kept for
parity) gets ``slot % n``.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address

MAGLEV_SIZE = 503  # slots; prime, so every skip visits every slot (dpservice DP_LB_MAGLEV_LOOKUP_SIZE)
_M = 0x5BD1E995  # MurmurHash2 multiplier
_MASK32 = 0xFFFFFFFF


def murmur_hash2(data: bytes, seed: int = 0) -> int:
    """MurmurHash2 (32-bit, little-endian word reads), as ``dp_murmur_hash2``."""
    length = len(data)
    h = (seed ^ length) & _MASK32
    full = length - length % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k
    tail = data[full:]
    if tail:
        if len(tail) == 3:
            h ^= tail[2] << 16
        if len(tail) >= 2:
            h ^= tail[1] << 8
        h ^= tail[0]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def djb2_hash(data: bytes) -> int:
    """djb2 (``h * 33 + byte`` from 5381) with bit 31 cleared, as ``dp_djb_hash``."""
    h = 5381
    for byte in data:
        h = (h * 33 + byte) & _MASK32
    return h & 0x7FFFFFFF


def sort_targets(targets: Sequence[IPv6Address]) -> tuple[IPv6Address, ...]:
    """Targets in the order the table indexes them: ascending address bytes."""
    return tuple(sorted(targets, key=lambda a: a.packed))


def build_maglev(targets: Sequence[IPv6Address]) -> tuple[int, ...]:
    """The slot -> target-index table for ``targets`` (which must already be sorted); ``()`` if none."""
    n = len(targets)
    if n == 0:
        return ()
    offsets = [murmur_hash2(t.packed) % MAGLEV_SIZE for t in targets]
    skips = [djb2_hash(t.packed) % (MAGLEV_SIZE - 1) + 1 for t in targets]
    table = [-1] * MAGLEV_SIZE
    nexts = [0] * n
    filled = 0
    while filled < MAGLEV_SIZE:
        progressed = False
        for i in range(n):
            j = nexts[i]
            offset, skip = offsets[i], skips[i]
            while j < MAGLEV_SIZE:
                pos = (offset + j * skip) % MAGLEV_SIZE
                j += 1
                if table[pos] < 0:
                    table[pos] = i
                    filled += 1
                    progressed = True
                    break
            nexts[i] = j
            if filled == MAGLEV_SIZE:
                break
        if not progressed:
            break
    return tuple(i % n if slot < 0 else slot for i, slot in enumerate(table))
