"""Underlay addresses: dpservice's generated layout and the rules for client-chosen ones (§1.3)."""

from __future__ import annotations

import random
from ipaddress import IPv6Address, IPv6Network

import pytest

from kubevpc_agent.tables.underlay import UnderlayAllocator, build_underlay, is_valid_preferred

HOST = IPv6Address("fc00:1::1")


def test_generated_layout() -> None:
    addr = build_underlay(HOST.packed[:8], random_byte=0x2A, counter=5)
    assert addr == IPv6Address("fc00:1::d000:2a:0:5")
    raw = addr.packed
    assert raw[8:12] == bytes((0xD0, 0, 0, 0x2A))
    assert int.from_bytes(raw[12:], "big") == 5


def test_counter_wraps_at_32_bits() -> None:
    assert build_underlay(HOST.packed[:8], 0, 1 << 32) == build_underlay(HOST.packed[:8], 0, 0)


def test_allocator_counts_up_from_a_random_start_in_the_host_prefix() -> None:
    alloc = UnderlayAllocator(HOST, random.Random(7))
    seen = []
    for _ in range(300):
        seen.append(alloc.peek())
        alloc.commit()
    counters = [int.from_bytes(a.packed[12:], "big") for a in seen]
    assert 1 <= counters[0] <= 256
    assert counters == list(range(counters[0], counters[0] + 300))
    assert all(a in IPv6Network("fc00:1::/64") for a in seen)
    assert all(a.packed[8:11] == b"\xd0\x00\x00" for a in seen)  # type 0xd0, subtype 0, flags 0
    assert len(set(seen)) == 300


def test_peek_is_stable_until_commit() -> None:
    alloc = UnderlayAllocator(HOST, random.Random(1))
    first = alloc.peek()
    assert alloc.peek() == first
    alloc.commit()
    assert alloc.peek() != first


def test_random_start_differs_between_allocators() -> None:
    starts = {UnderlayAllocator(HOST).peek() for _ in range(20)}
    assert len(starts) > 1


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("::", True),  # = generate one
        ("fc00:1::8000:0:1", True),  # dpservice's own test values
        ("fc00:1::c000:0:2", True),
        ("fc00:1::d000:8001:0:1", True),  # flags 0x80 on a generated-style address
        ("fc00:1::d000:1:0:1", False),  # a generated-style address: flag 0x80 missing
        ("fc00:2::8000:0:1", False),  # another /64
        ("fc00:1:0:1::8000:0:1", False),  # differs in the 4th group: another /64
        ("::1", False),
    ],
)
def test_preferred_underlay_rules(address: str, valid: bool) -> None:
    assert is_valid_preferred(IPv6Address(address), HOST) is valid


def test_preferred_cannot_collide_with_generated() -> None:
    alloc = UnderlayAllocator(HOST)
    for _ in range(100):
        assert not is_valid_preferred(alloc.peek(), HOST)
        alloc.commit()
