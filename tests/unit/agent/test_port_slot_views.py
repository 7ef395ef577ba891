"""Ports share one list of slot views per packet pool (memory must not grow with ports x slots)."""

from __future__ import annotations

from kubevpc_agent.graph.batch import HEADROOM, SLOT_SIZE, PacketPool
from kubevpc_agent.ports.base import slot_views


def test_every_port_gets_the_same_views_of_one_pool() -> None:
    pool = PacketPool(64)
    first = slot_views(pool)
    assert all(slot_views(pool) is first for _ in range(300))  # 300 TAP ports, one list
    assert len(first) == 64 and all(len(view) == SLOT_SIZE - HEADROOM for view in first)


def test_views_write_into_their_slot_after_the_headroom() -> None:
    pool = PacketPool(4)
    views = slot_views(pool)
    views[2][:3] = b"abc"
    assert bytes(pool.data[2, HEADROOM : HEADROOM + 3]) == b"abc"
    assert not pool.data[1].any() and not pool.data[3].any()


def test_another_pool_gets_its_own_views() -> None:
    a, b = PacketPool(4), PacketPool(8)
    assert slot_views(a) is not slot_views(b)
    assert len(slot_views(b)) == 8
