"""Maglev table (DPSERVICE.md §4.9): known vectors, exact balance, determinism.

Complements ``test_maglev.py`` (flow balance and disruption through the LB lookup). The vectors
were produced by an independent C implementation of the same formulas (MurmurHash2
with seed 0 over the 16 address bytes, djb2 with bit 31 cleared, 503 slots, round-robin
population), so a regression in either hash or in the population order shows up here.
"""

from __future__ import annotations

import hashlib
from ipaddress import IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_agent.tables.maglev import MAGLEV_SIZE, build_maglev, djb2_hash, murmur_hash2, sort_targets

A = IPv6Address


@pytest.mark.parametrize(
    ("address", "murmur", "djb2"),
    [
        ("1234::1", 1527180593, 1141535756),
        ("1234::2", 4151689563, 1141535757),
        ("fc00:2::64:0:1", 1855348392, 1743547880),
        ("2001:db8::1", 2917685176, 1984522956),
    ],
)
def test_hash_vectors(address: str, murmur: int, djb2: int) -> None:
    assert murmur_hash2(A(address).packed) == murmur
    assert djb2_hash(A(address).packed) == djb2


def test_murmur_hash2_tail_bytes() -> None:
    # lengths that are not a multiple of 4 use the tail switch (not reached with 16-byte addresses)
    assert murmur_hash2(b"") == 0
    assert len({murmur_hash2(b"a"), murmur_hash2(b"ab"), murmur_hash2(b"abc"), murmur_hash2(b"abcd")}) == 4


TWO_TARGETS_HEAD = [int(c) for c in "10000111100010101001010110101011"]


@pytest.mark.parametrize(
    ("targets", "sha256_prefix"),
    [
        (["1234::1", "1234::2"], "9263a0525a98bcce"),
        (["fc00:2::64:0:1"], "561dc0533eb1201e"),
        (["2001:db8::3", "2001:db8::1", "fc00:1::d000:aa:0:7"], "fd454ad52a2f3f22"),
        ([f"2001:db8::{i:x}" for i in range(1, 65)], "aeab6e4a1bf1a990"),
    ],
)
def test_table_vectors(targets: list[str], sha256_prefix: str) -> None:
    table = build_maglev(sort_targets([A(t) for t in targets]))
    assert len(table) == MAGLEV_SIZE
    assert hashlib.sha256(bytes(table)).hexdigest()[:16] == sha256_prefix


def test_two_target_table_head() -> None:
    assert list(build_maglev(sort_targets([A("1234::2"), A("1234::1")])))[:32] == TWO_TARGETS_HEAD


def test_no_targets_no_table() -> None:
    assert build_maglev(()) == ()


def test_targets_sort_by_address_bytes() -> None:
    ordered = (A("::2"), A("2001:db8::"), A("fc00::1"))
    assert sort_targets([A("fc00::1"), A("::2"), A("2001:db8::")]) == ordered


target_sets = st.sets(st.integers(min_value=0, max_value=(1 << 128) - 1), min_size=1, max_size=64).map(
    lambda ints: sort_targets([A(i) for i in ints])
)


@settings(max_examples=150, deadline=None)
@given(target_sets)
def test_balance_is_within_one_slot(targets: tuple[IPv6Address, ...]) -> None:
    """Every round of the population gives each target one slot, so counts differ by at most one."""
    table = build_maglev(targets)
    counts = [table.count(i) for i in range(len(targets))]
    assert sum(counts) == MAGLEV_SIZE
    assert max(counts) - min(counts) <= 1
    assert set(table) == set(range(len(targets)))


@settings(max_examples=50, deadline=None)
@given(target_sets, st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order(targets: tuple[IPv6Address, ...], rnd: object) -> None:
    shuffled = list(targets)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert build_maglev(sort_targets(shuffled)) == build_maglev(targets)
