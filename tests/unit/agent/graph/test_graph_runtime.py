"""The graph runtime: edge resolution, batch splitting, stream moves, freeing, tracing."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import pytest

from kubevpc_agent.graph.batch import Batch, PacketPool
from kubevpc_agent.graph.graph import Graph, GraphError
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.graph.trace import Tracer
from kubevpc_agent.ports.memory import MemoryPort


class Split(Node):
    """Sends even first bytes to 'sink', odd ones to drop."""

    name = "cls"
    NEXT_NODES = {1: "sink"}

    def process(self, batch: Batch) -> np.ndarray:
        first = batch.read(0, 1)[:, 0]
        return np.where(first % 2 == 0, 1, 0)


class Sink(Node):
    name = "sink"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bytes] = []

    def process(self, batch: Batch) -> int:
        self.seen.extend(batch.frames())
        return 0


class Drop(Node):
    name = "drop"

    class Counter(IntEnum):
        DROPPED = 0

    COUNTER_HELP = {Counter.DROPPED: "Packets dropped"}

    def process(self, batch: Batch) -> int:
        self.count(self.Counter.DROPPED, len(batch))
        return 0


def receive(frames: list[bytes], pool: PacketPool) -> Batch:
    port = MemoryPort(PortSpec(0, "mem0", "mem0", "02:00:00:00:00:01", PortKind.VF, "memory"))
    port.inject(frames)
    return port.receive(pool, 1024)


def test_split_by_edge_frees_every_slot() -> None:
    pool = PacketPool(64)
    sink, drop = Sink(), Drop()
    graph = Graph([Split(), sink, drop])
    graph.enqueue(receive([bytes([i]) * 60 for i in range(10)], pool))
    graph.run()
    assert sorted(f[0] for f in sink.seen) == [0, 2, 4, 6, 8]
    assert drop.counter_values() == {"dropped": 5}
    assert graph.stats[graph.index["cls"]].drops == 5
    assert pool.available == 64


def test_unknown_edge_target_is_rejected() -> None:
    class Broken(Node):
        name = "cls"
        NEXT_NODES = {1: "nowhere"}

    with pytest.raises(GraphError, match="unknown node 'nowhere'"):
        Graph([Broken(), Drop()])


def test_unreachable_nodes_are_reported() -> None:
    class Orphan(Node):
        name = "orphan"

    graph = Graph([Split(), Sink(), Drop(), Orphan()])
    assert graph.unreachable == ["orphan"]


def test_trace_records_each_packets_path() -> None:
    pool = PacketPool(16)
    graph = Graph([Split(), Sink(), Drop()])
    graph.tracer = Tracer()
    batch = receive([b"\x00" * 60, b"\x01" * 60], pool)
    even, odd = (int(x) for x in batch.pkt_id)
    graph.enqueue(batch)
    graph.run()
    assert graph.tracer.path(even) == ["cls", "sink"]
    assert graph.tracer.path(odd) == ["cls", "drop"]


def test_read_and_write_handle_mixed_offsets() -> None:
    pool = PacketPool(8)
    batch = receive([bytes(range(60)), bytes(range(1, 61))], pool)
    batch.off[1] -= 4  # as if frame 1 had a header prepended
    batch.length[1] += 4
    pool.data[batch.slot[1], batch.off[1] : batch.off[1] + 4] = 0xEE
    cols = batch.read(0, 6)
    assert cols[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert cols[1].tolist() == [0xEE] * 4 + [1, 2]
    batch.write(2, np.array([[9, 9], [8, 8]], dtype=np.uint8))
    assert batch.frames()[0][:4] == bytes([0, 1, 9, 9])
    assert batch.frames()[1][:4] == bytes([0xEE, 0xEE, 8, 8])
