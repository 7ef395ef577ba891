"""The flow table (``tables/conntrack.py``): keys, both directions, batch-internal duplicates, bounds."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from kubevpc_agent.graph.batch import L3
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, jhash_32b
from kubevpc_agent.tables.conntrack import (
    NO_FLOW,
    Dir,
    FlowTable,
    KeyFields,
    Keys,
    TcpState,
    dpservice_hash,
    invert,
    make_keys,
)

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
PORT = np.int16(2)


def keys_v4(src: list[int], dst: list[int], sport: list[int], dport: list[int], proto: int = TCP) -> Keys:
    n = len(src)
    return make_keys(
        l3=np.full(n, L3.IPV4, np.uint8),
        proto=np.full(n, proto, np.uint8),
        src_hi=np.zeros(n, np.uint64),
        src_lo=np.array(src, np.uint64),
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=np.array(dst, np.uint64),
        sport=np.array(sport, np.uint16),
        dport=np.array(dport, np.uint16),
        vni=np.full(n, 100, np.uint32),
        vnf_type=np.zeros(n, np.uint8),
    )


def ports(n: int) -> npt.NDArray[np.int16]:
    return np.full(n, PORT, np.int16)


def random_keys(n: int, seed: int = 1) -> Keys:
    rng = np.random.default_rng(seed)
    return keys_v4(
        rng.integers(0, 2**32, n).tolist(),
        rng.integers(0, 2**32, n).tolist(),
        rng.integers(1, 65536, n).tolist(),
        rng.integers(1, 65536, n).tolist(),
    )


def test_both_directions_are_found_after_one_insertion() -> None:
    table = FlowTable(64)
    k = keys_v4([0x0A640101], [0x2D560606], [12345], [443])
    r = table.resolve(k, now=1.0, port=ports(1))
    assert r.created.tolist() == [True]
    assert table.count == 1
    assert table.lookup(k) == ([r.flow[0]], [Dir.ORIGINAL])
    flow, direction = table.lookup(invert(k))
    assert flow.tolist() == r.flow.tolist() and direction.tolist() == [Dir.REPLY]
    assert table.created_port[r.flow[0]] == PORT
    assert table.last_seen[r.flow[0]] == 1.0


def test_invert_swaps_ports_and_maps_echo_types() -> None:
    f = KeyFields.of(invert(keys_v4([1], [2], [10], [20])))
    assert (f.src_lo[0], f.dst_lo[0], f.sport[0], f.dport[0]) == (2, 1, 20, 10)
    echo = KeyFields.of(invert(keys_v4([1], [2], [8], [0x40], proto=ICMP)))
    assert (echo.sport[0], echo.dport[0]) == (0, 0x40)  # request (8) -> reply (0), identifier kept
    unreachable = KeyFields.of(invert(keys_v4([1], [2], [1], [7], proto=ICMPV6)))
    assert unreachable.sport[0] == 0  # ICMPv6 types other than echo invert to 0
    ping6 = KeyFields.of(invert(keys_v4([1], [2], [128], [7], proto=ICMPV6)))
    assert ping6.sport[0] == 129


def test_packets_of_one_new_flow_in_a_batch_share_it_and_the_reply_joins_it() -> None:
    table = FlowTable(64)
    k = keys_v4([1, 1, 5], [2, 2, 6], [10, 10, 50], [20, 20, 60])
    batch = np.concatenate([k, invert(k[:1])])
    r = table.resolve(batch, now=0.0, port=ports(4))
    assert r.created.tolist() == [True, False, True, False]
    assert r.flow[0] == r.flow[1] == r.flow[3] != r.flow[2]
    assert r.dir.tolist() == [Dir.ORIGINAL, Dir.ORIGINAL, Dir.ORIGINAL, Dir.REPLY]
    assert table.count == 2


def test_full_table_refuses_new_flows_and_keeps_old_ones() -> None:
    table = FlowTable(4)
    old = random_keys(4, seed=7)
    first = table.resolve(old, now=0.0, port=ports(4))
    assert first.created.all()
    flood = random_keys(100, seed=8)
    r = table.resolve(flood, now=1.0, port=ports(100))
    assert r.full.all() and (r.flow == NO_FLOW).all()
    again = table.resolve(old, now=2.0, port=ports(4))
    assert again.flow.tolist() == first.flow.tolist() and not again.created.any()


def test_reply_key_owned_by_another_flow_is_a_conflict() -> None:
    table = FlowTable(8)
    a = keys_v4([1], [2], [10], [20])
    table.resolve(a, now=0.0, port=ports(1))
    fa = table.lookup(a)[0]
    nat_reply = keys_v4([2], [9], [20], [100])  # NAT rewrote a's reply key: (2:20 -> 9:100)
    assert table.rekey_reply(fa, nat_reply).tolist() == [True]
    assert table.lookup(invert(a))[0].tolist() == [NO_FLOW]  # the old reply key is gone
    # a packet whose inverse is that rewritten reply key cannot start a flow of its own
    r = table.resolve(invert(nat_reply), now=0.0, port=ports(1))
    assert r.conflict.tolist() == [True]


def test_remove_frees_both_keys_and_calls_release_hooks_first() -> None:
    table = FlowTable(8)
    k = random_keys(3)
    r = table.resolve(k, now=0.0, port=ports(3))
    seen: list[list[int]] = []
    table.release_hooks.append(lambda t, flows: seen.append(sorted(flows.tolist())))
    table.remove(r.flow[:2])
    assert seen == [sorted(r.flow[:2].tolist())]
    assert table.lookup(k)[0].tolist() == [NO_FLOW, NO_FLOW, r.flow[2]]
    assert table.lookup(invert(k[:2]))[0].tolist() == [NO_FLOW, NO_FLOW]
    assert table.count == 1


def test_ageing_removes_exactly_the_idle_flows() -> None:
    table = FlowTable(16, flow_timeout=30)
    k = random_keys(4)
    r = table.resolve(k, now=0.0, port=ports(4))
    table.last_seen[r.flow[2:]] = 20.0
    assert table.age(now=30.5) == 2
    assert table.lookup(k)[0].tolist() == [NO_FLOW, NO_FLOW, *r.flow[2:].tolist()]


def test_tcp_state_machine_and_timeouts() -> None:
    table = FlowTable(4, flow_timeout=30)
    f = table.resolve(keys_v4([1], [2], [10], [20]), now=0.0, port=ports(1)).flow
    steps = [
        (Dir.ORIGINAL, 0x02, TcpState.NEW_SYN),
        (Dir.ORIGINAL, 0x10, TcpState.NEW_SYN),  # ACK before SYN|ACK: nothing
        (Dir.REPLY, 0x12, TcpState.NEW_SYNACK),
        (Dir.ORIGINAL, 0x10, TcpState.ESTABLISHED),
        (Dir.REPLY, 0x18, TcpState.ESTABLISHED),  # PSH|ACK keeps it
        (Dir.ORIGINAL, 0x11, TcpState.FINWAIT),
        (Dir.REPLY, 0x11, TcpState.RST_FIN),
    ]
    for direction, flags, state in steps:
        table.track_tcp(f, np.array([direction], np.uint8), np.array([flags], np.uint8))
        assert table.tcp_state[f[0]] == state, (direction, hex(flags))
        expected = 86_400 if state == TcpState.ESTABLISHED else 30
        assert table.timeout[f[0]] == expected


def test_synack_from_the_syn_side_does_not_advance() -> None:
    table = FlowTable(4)
    f = table.resolve(keys_v4([1], [2], [10], [20]), now=0.0, port=ports(1)).flow
    table.track_tcp(f, np.array([Dir.ORIGINAL], np.uint8), np.array([0x02], np.uint8))
    table.track_tcp(f, np.array([Dir.ORIGINAL], np.uint8), np.array([0x12], np.uint8))
    assert table.tcp_state[f[0]] == TcpState.NEW_SYN


def test_dpservice_hash_matches_the_packed_key() -> None:
    """The 44-byte key of VM1 10.100.1.1:12345 -> 45.86.6.6:443/TCP in VNI 100, hashed word by word."""
    k = keys_v4([0x0A640101], [0x2D560606], [12345], [443])
    words = [0x2D560606, 0, 0, 0, (443 << 16) | (TCP << 8), 0x0A640101, 0, 0, 0, 12345 << 16, 100]
    assert dpservice_hash(k).tolist() == [jhash_32b(words, DPSERVICE_INITVAL)]


@pytest.mark.parametrize("n", [1, 1000, 30_000])
def test_many_flows_survive_rebuilds(n: int) -> None:
    table = FlowTable(n)
    k = random_keys(n, seed=n)
    r = table.resolve(k, now=0.0, port=ports(n))
    assert r.created.sum() == len(np.unique(k, axis=0))
    half = r.flow[: n // 2]
    table.remove(half)
    table.rebuild()
    flow, _ = table.lookup(k)
    assert (flow[: n // 2] == NO_FLOW).all()
    assert (flow[n // 2 :] == r.flow[n // 2 :]).all()
