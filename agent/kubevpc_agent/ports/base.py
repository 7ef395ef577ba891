"""What every real port shares: per-port counters and building the received batch.

Counters are plain integers updated once per ``receive``/``send`` call (never per packet); the
dataplane worker snapshots them for Prometheus at scrape time.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import HEADROOM, Batch, PacketPool


@dataclass
class PortStats:
    """Packets and bytes through one port, and what it had to drop."""

    rx_packets: int = 0
    rx_bytes: int = 0
    rx_dropped: int = 0  # arrived but not delivered: no free pool slot, read error, too long
    tx_packets: int = 0
    tx_bytes: int = 0
    tx_dropped: int = 0  # handed to ``send`` but not transmitted: device queue or ring full

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class PacketIds:
    """Unique packet ids for the trace, handed out in blocks (one per received batch)."""

    def __init__(self) -> None:
        self._next = 1

    def take(self, n: int) -> npt.NDArray[np.uint64]:
        first = self._next
        self._next += n
        return np.arange(first, first + n, dtype=np.uint64)


PACKET_IDS = PacketIds()  # one sequence per process: the dataplane worker has one graph


def rx_batch(
    pool: PacketPool, port_id: int, slots: npt.NDArray[np.int32], lengths: npt.NDArray[np.int32]
) -> Batch:
    """A batch of freshly received frames stored at ``HEADROOM`` in ``slots``."""
    n = len(slots)
    batch = Batch(pool, n)
    batch.slot[:] = slots
    batch.off[:] = HEADROOM
    batch.length[:] = lengths
    batch.rx_port[:] = port_id
    batch.pkt_id[:] = PACKET_IDS.take(n)
    return batch


_SLOT_VIEWS: weakref.WeakKeyDictionary[PacketPool, list[memoryview]] = weakref.WeakKeyDictionary()


def slot_views(pool: PacketPool) -> list[memoryview]:
    """One writable memoryview per pool slot, starting at ``HEADROOM``: ``readinto`` targets.

    Built once per pool and shared by every port reading into it: the pool grows with the port
    count, so one list per port would cost ports x slots views (gigabytes at a few hundred TAPs).
    """
    views = _SLOT_VIEWS.get(pool)
    if views is None:
        flat = pool.data.reshape(-1).data
        size = pool.data.shape[1]
        views = [flat[s * size + HEADROOM : (s + 1) * size] for s in range(pool.capacity)]
        _SLOT_VIEWS[pool] = views
    return views
