"""Maglev properties (hypothesis): balance of slots and of real flows, and minimal disruption.

The table is built by ``tables/maglev.py`` and read by ``tables/lb_select.py`` with dpservice's
conntrack hash of the flow key, the pair the ``lb`` node uses; these tests hold them to the Maglev
paper's promises. Flow-level stickiness across target removal (conntrack) is tested in
``tests/unit/agent/nodes/test_lb.py`` and ``tests/integration/test_graph_paths_lb.py``.
"""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import IPv4Address, IPv6Address

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_agent.graph.batch import L3
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, jhash_32b_vec
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.flow_key import key_words
from kubevpc_agent.tables.lb_select import LbTable
from kubevpc_agent.tables.maglev import MAGLEV_SIZE, build_maglev, sort_targets
from kubevpc_agent.tables.model import LbPort, Protocol
from kubevpc_agent.tables.state import AgentState
from testkit.dp_topology import CONFIG

addresses = st.integers(0, (1 << 128) - 1).map(IPv6Address)
target_sets = st.lists(addresses, min_size=1, max_size=64, unique=True).map(sort_targets)


def owners(targets: tuple[IPv6Address, ...]) -> list[IPv6Address]:
    """Slot -> target address."""
    return [targets[i] for i in build_maglev(targets)]


@settings(max_examples=200, deadline=None)
@given(target_sets)
def test_slots_are_shared_evenly(targets: tuple[IPv6Address, ...]) -> None:
    table = build_maglev(targets)
    assert len(table) == MAGLEV_SIZE
    counts = Counter(table)
    assert set(counts) == set(range(len(targets)))
    assert max(counts.values()) - min(counts.values()) <= 1  # round-robin population


@settings(max_examples=200, deadline=None)
@given(target_sets.filter(lambda t: len(t) >= 2), st.data())
def test_a_removed_target_keeps_no_slot(targets: tuple[IPv6Address, ...], data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(targets))
    assert gone not in owners(tuple(t for t in targets if t != gone))


@settings(max_examples=200, deadline=None)
@given(target_sets.filter(lambda t: len(t) < 64), addresses)
def test_an_added_target_takes_its_fair_share(targets: tuple[IPv6Address, ...], new: IPv6Address) -> None:
    if new in targets:
        return
    taken = sum(1 for a in owners(sort_targets([*targets, new])) if a == new)
    assert abs(taken - MAGLEV_SIZE / (len(targets) + 1)) <= 1


def moved_by_adding(targets: tuple[IPv6Address, ...], new: IPv6Address) -> float:
    """Share of the slots that change hands among the old targets when ``new`` joins (removing
    ``new`` again moves the same slots back)."""
    before, after = owners(targets), owners(sort_targets([*targets, new]))
    return sum(1 for b, a in zip(before, after, strict=True) if a != new and a != b) / MAGLEV_SIZE


def test_a_target_joining_or_leaving_moves_few_other_slots() -> None:
    """Maglev's minimal disruption is statistical, not a bound per case: for a few targets whose
    permutations happen to interleave badly a join can move a third of the others' slots (hypothesis
    found 0.35 for two targets joined by a third; 0.445 was the worst of 81,000 random small sets).
    So: over a fixed sample of 400 random sets of 1-63 targets, on average under 5 % move and in 99 %
    of cases under 20 % (a table rebuilt without Maglev's consistency moves about half)."""
    rng = random.Random(20261125)
    moved = []
    for _ in range(400):
        count = rng.choice([1, 2, 3, 4, 6, 8, 16, 32, 63])
        targets = sort_targets(list({IPv6Address(rng.getrandbits(128)) for _ in range(count)}))
        moved.append(moved_by_adding(targets, IPv6Address(rng.getrandbits(128))))
    moved.sort()
    assert sum(moved) / len(moved) < 0.05, sum(moved) / len(moved)
    assert moved[int(0.99 * len(moved))] < 0.2, moved[-10:]


def flow_hashes(n: int, seed: int) -> np.ndarray:
    """dpservice conntrack hashes of ``n`` random TCP flows from the internet to LB 172.22.2.1:80."""
    rng = random.Random(seed)
    src = np.array([rng.getrandbits(32) for _ in range(n)], dtype=np.uint64)
    sport = np.array([rng.randrange(1024, 65536) for _ in range(n)], dtype=np.uint16)
    words = key_words(
        l3=np.full(n, L3.IPV4, dtype=np.uint8),
        proto=np.full(n, Protocol.TCP, dtype=np.uint8),
        src_hi=np.zeros(n, dtype=np.uint64),
        src_lo=src,
        dst_hi=np.zeros(n, dtype=np.uint64),
        dst_lo=np.full(n, int(IPv4Address("172.22.2.1")), dtype=np.uint64),
        sport=sport,
        dport=np.full(n, 80, dtype=np.uint16),
        vni=np.full(n, 100, dtype=np.uint32),
        vnf_type=np.zeros(n, dtype=np.uint8),
    )
    return jhash_32b_vec(words, DPSERVICE_INITVAL)


@settings(max_examples=50, deadline=None)
@given(st.lists(addresses, min_size=4, max_size=4, unique=True), st.integers(0, 2**32 - 1))
def test_random_flows_spread_within_a_quarter_of_even(targets: list[IPv6Address], seed: int) -> None:
    """1,000 flows over 4 targets, through the LB table the ``lb`` node reads."""
    state = AgentState(CONFIG)
    state.apply(
        cmd.CreateLoadBalancer(
            lb_id="lb",
            vni=100,
            ip=IPv4Address("172.22.2.1"),
            ports=(LbPort(Protocol.TCP, 80),),
            underlay=IPv6Address("fc00:1::ab"),
        )
    )
    chosen: list[IPv6Address] = []
    for target in targets:
        chosen = [*chosen, target]
        state.apply(cmd.CreateLbTarget("lb", target, build_maglev(sort_targets(chosen))))
    table = LbTable(state)
    hashes = flow_hashes(1000, seed)
    lb = table.lookup(
        np.full(1000, 100, dtype=np.uint32),
        np.zeros(1000, dtype=bool),
        np.zeros(1000, dtype=np.uint64),
        np.full(1000, int(IPv4Address("172.22.2.1")), dtype=np.uint64),
    )
    assert (lb == 0).all()
    index, _, _ = table.select(lb, hashes)
    counts = np.bincount(index, minlength=4)
    assert ((counts >= 750 / 4) & (counts <= 1250 / 4)).all(), counts.tolist()
