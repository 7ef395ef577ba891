"""Underlay IPv6 addresses: the scheme dpservice uses for everything reachable from outside.

Every interface, VIP, NAT slice, load balancer, alias prefix and LB prefix owns one underlay
address inside the host's /64 (``--ipv6``), DPSERVICE.md §1.3 (``dp_generate_ul_ipv6``)::

    bytes 0-7   the host's /64 prefix
    byte  8     0xd0 (address type)
    byte  9     0 (subtype)
    byte  10    flags: 0 when generated here, 0x80 when the client chose it, 0x40 secondary pool
    byte  11    a random byte
    bytes 12-15 big-endian counter, one step per generated address, starting at a random 0..255

A client may bring its own address (``preferred_underlay_route``, used for HA pairs); it must lie
in the same /64 and carry the 0x80 flag, so it can never collide with a generated one.

The allocator lives in the control plane only: commands carry the address it produced, so the
dataplane's replica never generates anything.
"""

from __future__ import annotations

import random
from ipaddress import IPv6Address

UNDERLAY_TYPE = 0xD0  # byte 8 of every underlay address we hand out
FLAG_EXTERNAL = 0x80  # byte 10: chosen by the client (preferred_underlay_route)
FLAG_SECONDARY = 0x40  # byte 10: secondary pool (virtual services)
COUNTER_MASK = 0xFFFFFFFF  # bytes 12-15


def build_underlay(prefix64: bytes, random_byte: int, counter: int) -> IPv6Address:
    """The generated underlay address for ``counter`` in the /64 ``prefix64`` (8 bytes)."""
    if len(prefix64) != 8:
        raise ValueError("prefix64 must be 8 bytes")
    raw = (
        prefix64
        + bytes((UNDERLAY_TYPE, 0, 0, random_byte & 0xFF))
        + (counter & COUNTER_MASK).to_bytes(4, "big")
    )
    return IPv6Address(raw)


def is_valid_preferred(address: IPv6Address, host: IPv6Address) -> bool:
    """Whether a client-chosen underlay is acceptable: ``::`` (= generate), or ours and flagged external."""
    if address == IPv6Address(0):
        return True
    raw = address.packed
    return raw[:8] == host.packed[:8] and bool(raw[10] & FLAG_EXTERNAL)


class UnderlayAllocator:
    """Hands out generated underlay addresses in the host /64, dpservice's way.

    ``peek`` shows the next address without using it; ``commit`` uses it. A request that fails
    after ``peek`` leaves the allocator untouched, so errors change nothing here either.
    """

    def __init__(self, host: IPv6Address, rng: random.Random | None = None) -> None:
        self._prefix = host.packed[:8]
        self._rng = rng if rng is not None else random.Random()
        self._counter = self._rng.randrange(256)  # random start, as dpservice (rand() % 256)
        self._pending: IPv6Address | None = None

    def peek(self) -> IPv6Address:
        """The address the next ``commit`` uses (stable until committed)."""
        if self._pending is None:
            self._pending = build_underlay(self._prefix, self._rng.randrange(256), self._counter + 1)
        return self._pending

    def commit(self) -> None:
        """Consume the address ``peek`` returned."""
        self.peek()
        self._counter = (self._counter + 1) & COUNTER_MASK
        self._pending = None
