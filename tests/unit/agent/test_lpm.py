"""Longest-prefix match tables against a brute-force reference, per VNI, IPv4 and IPv6."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.tables.lpm import MISS, Lpm4, Lpm6
from kubevpc_agent.tables.model import NextHopKind, RouteEntry
from kubevpc_agent.tables.state import AgentState, VniTables

Net = IPv4Network | IPv6Network


def state_with(routes: dict[int, list[Net]]) -> AgentState:
    state = AgentState(AgentConfig())
    for vni, nets in routes.items():
        tables = VniTables(vni)
        for i, net in enumerate(nets):
            tables.table(net)[net] = RouteEntry(net, NextHopKind.PORT, port_id=i % 100)
        state.vnis[vni] = tables
    state.version += 1
    return state


def reference(state: AgentState, vni: int, addr: int, v6: bool) -> RouteEntry | None:
    tables = state.vnis.get(vni)
    if tables is None:
        return None
    routes = tables.routes6 if v6 else tables.routes4
    best: RouteEntry | None = None
    for net, entry in routes.items():
        if addr & int(net.netmask) == int(net.network_address) and (
            best is None or net.prefixlen > best.prefix.prefixlen
        ):
            best = entry
    return best


def entries(state: AgentState, v6: bool) -> list[RouteEntry]:
    """Route entries in the tables' global order (VNIs ascending, dict order inside)."""
    out: list[RouteEntry] = []
    for vni in sorted(state.vnis):
        out.extend((state.vnis[vni].routes6 if v6 else state.vnis[vni].routes4).values())
    return out


def nets4(draw: st.DrawFn) -> list[Net]:
    n = draw(st.integers(0, 40))
    out: list[Net] = []
    for _ in range(n):
        length = draw(st.sampled_from([0, 1, 8, 16, 23, 24, 25, 31, 32]))
        addr = draw(st.integers(0, 2**32 - 1)) >> (32 - length) << (32 - length) if length else 0
        out.append(IPv4Network((addr, length)))
    return list(dict.fromkeys(out))


def nets6(draw: st.DrawFn) -> list[Net]:
    n = draw(st.integers(0, 40))
    out: list[Net] = []
    for _ in range(n):
        length = draw(st.sampled_from([0, 1, 32, 63, 64, 65, 96, 127, 128]))
        top = draw(st.sampled_from([0, 0x2001 << 112, (2**16 - 1) << 112]))
        addr = (top | draw(st.integers(0, 2**112 - 1))) >> (128 - length) << (128 - length) if length else 0
        out.append(IPv6Network((addr, length)))
    return list(dict.fromkeys(out))


@st.composite
def tables_and_queries(draw: st.DrawFn, v6: bool) -> tuple[dict[int, list[Net]], list[tuple[int, int]]]:
    bits = 128 if v6 else 32
    vnis = draw(st.lists(st.integers(0, 2**24 - 1), min_size=1, max_size=3, unique=True))
    routes = {vni: (nets6 if v6 else nets4)(draw) for vni in vnis}
    queries: list[tuple[int, int]] = []
    for _ in range(draw(st.integers(1, 30))):
        vni = draw(st.sampled_from([*vnis, 7]))
        nets = routes.get(vni, [])
        if nets and draw(st.booleans()):
            net = draw(st.sampled_from(nets))
            first, last = int(net.network_address), int(net.broadcast_address)
            addr = draw(st.sampled_from([first, last, first + (last - first) // 2, (last + 1) % 2**bits]))
        else:
            addr = draw(st.integers(0, 2**bits - 1))
        queries.append((vni, addr))
    return routes, queries


@settings(max_examples=200, deadline=None)
@given(tables_and_queries(v6=False))
def test_ipv4_matches_reference(case: tuple[dict[int, list[Net]], list[tuple[int, int]]]) -> None:
    routes, queries = case
    state = state_with(routes)
    lpm = Lpm4(state)
    got = lpm.lookup(
        np.array([v for v, _ in queries], np.uint32), np.array([a for _, a in queries], np.uint64)
    )
    table = entries(state, v6=False)
    assert [None if i == MISS else table[i] for i in got.tolist()] == [
        reference(state, v, a, v6=False) for v, a in queries
    ]


@settings(max_examples=200, deadline=None)
@given(tables_and_queries(v6=True))
def test_ipv6_matches_reference(case: tuple[dict[int, list[Net]], list[tuple[int, int]]]) -> None:
    routes, queries = case
    state = state_with(routes)
    lpm = Lpm6(state)
    got = lpm.lookup(
        np.array([v for v, _ in queries], np.uint32),
        np.array([a >> 64 for _, a in queries], np.uint64),
        np.array([a & (2**64 - 1) for _, a in queries], np.uint64),
    )
    table = entries(state, v6=True)
    assert [None if i == MISS else table[i] for i in got.tolist()] == [
        reference(state, v, a, v6=True) for v, a in queries
    ]


def test_only_changed_vnis_are_recompiled_and_removed_ones_vanish() -> None:
    state = state_with({1: [ip_network("10.0.0.0/8")], 2: [ip_network("10.0.0.0/8")]})
    lpm = Lpm4(state)
    kept = lpm._vnis[2]
    net = ip_network("10.1.0.0/16")
    state.vnis[1].routes4[net] = RouteEntry(net, NextHopKind.PORT, port_id=5)  # type: ignore[index]
    state.vnis[1].version += 1
    state.version += 1
    assert lpm.refresh()
    assert lpm._vnis[2] is kept
    probe = np.array([0x0A010203], np.uint64)
    assert lpm.targets.port[lpm.lookup(np.array([1], np.uint32), probe)].tolist() == [5]
    del state.vnis[1]
    state.version += 1
    assert lpm.refresh()
    assert lpm.lookup(np.array([1], np.uint32), probe).tolist() == [MISS]
    assert not lpm.refresh()  # nothing changed since


def test_large_table_stays_exact() -> None:
    rng = np.random.default_rng(7)
    lengths = rng.choice([16, 20, 24, 28, 32], 20000)
    addrs = rng.integers(0, 2**32, 20000, dtype=np.uint64)
    nets = list(
        dict.fromkeys(
            IPv4Network((int(a) >> (32 - int(n)) << (32 - int(n)), int(n)))
            for a, n in zip(addrs, lengths, strict=True)
        )
    )
    state = state_with({42: nets})
    lpm = Lpm4(state)
    sample = [nets[i] for i in rng.integers(0, len(nets), 300)]
    queries = [int(n.network_address) + int(rng.integers(0, n.num_addresses)) for n in sample]
    got = lpm.lookup(np.full(len(queries), 42, np.uint32), np.array(queries, np.uint64))
    table = entries(state, v6=False)
    assert [table[i] for i in got.tolist()] == [reference(state, 42, a, v6=False) for a in queries]


def test_slow_compiles_are_paced_and_changes_apply_together_later() -> None:
    state = state_with({1: [ip_network("10.0.0.0/8")]})
    lpm = Lpm4(state)
    lpm._pacer.IMMEDIATE = -1.0  # treat every compile as slow: the next one waits
    lpm._pacer.BACKOFF = 1e6
    net = ip_network("10.1.0.0/16")
    state.vnis[1].routes4[net] = RouteEntry(net, NextHopKind.PORT, port_id=5)  # type: ignore[index]
    state.vnis[1].version += 1
    state.version += 1
    assert lpm.refresh()  # the first change after a quick start applies at once
    net2 = ip_network("10.2.0.0/16")
    state.vnis[1].routes4[net2] = RouteEntry(net2, NextHopKind.PORT, port_id=6)  # type: ignore[index]
    state.vnis[1].version += 1
    state.version += 1
    probe = np.array([0x0A020304], np.uint64)
    assert not lpm.refresh()  # paced: still the old table
    assert lpm.targets.port[lpm.lookup(np.array([1], np.uint32), probe)].tolist() == [0]
    lpm._pacer._not_before = 0.0  # the wait is over
    assert lpm.refresh()
    assert lpm.targets.port[lpm.lookup(np.array([1], np.uint32), probe)].tolist() == [6]
