"""An in-memory port (VPP's ``pg``): tests inject frames and read what the graph sent."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import count

import numpy as np

from kubevpc_agent.graph.batch import HEADROOM, SLOT_SIZE, Batch, PacketPool, PoolExhaustedError
from kubevpc_agent.graph.port import PortSpec

_pkt_ids = count(1)


class MemoryPort:
    """A port whose wire is two Python queues."""

    def __init__(self, spec: PortSpec) -> None:
        self.spec = spec
        self.rx_queue: deque[bytes] = deque()
        self.sent: list[bytes] = []
        self.rx_dropped = 0  # frames that found no pool slot

    def inject(self, frames: Iterable[bytes]) -> None:
        self.rx_queue.extend(frames)

    def take_sent(self) -> list[bytes]:
        out, self.sent = self.sent, []
        return out

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        n = min(budget, len(self.rx_queue))
        frames = [self.rx_queue.popleft() for _ in range(n)]
        frames = [f for f in frames if len(f) <= SLOT_SIZE - HEADROOM]
        try:
            slots = pool.alloc(len(frames))
        except PoolExhaustedError:
            self.rx_dropped += len(frames)
            return Batch(pool, 0)
        batch = Batch(pool, len(frames))
        batch.slot[:] = slots
        batch.off[:] = HEADROOM
        for i, frame in enumerate(frames):
            pool.data[slots[i], HEADROOM : HEADROOM + len(frame)] = np.frombuffer(frame, dtype=np.uint8)
            batch.length[i] = len(frame)
            batch.pkt_id[i] = next(_pkt_ids)
        batch.rx_port[:] = self.spec.port_id
        return batch

    def send(self, batch: Batch) -> int:
        self.sent.extend(batch.frames())
        return len(batch)

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        self.rx_queue.clear()
