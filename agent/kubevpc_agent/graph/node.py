"""The node contract: a batch in, one next edge per packet out.

Every node declares ``Next``, an ``IntEnum`` with ``DROP = 0`` first (DPDK's convention),
``NEXT_NODES`` mapping its other edges to node *names*, and ``Counter``, an ``IntEnum``, with
``COUNTER_HELP``; nodes of one kind may share these (``tables.routing``, ``tables.responder``).
``process`` returns either one edge for the whole batch (DPDK's "stream move", no split) or an
array of edges; the runtime splits the batch and frees dropped frames.
Nodes accumulate counters locally and add them once per batch: never a metric call per packet.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import Batch, Edges

DROP = 0  # edge 0 of every node leads to the drop node


class Node:
    """Base class of graph nodes. Subclasses set ``name``, ``NEXT_NODES``, ``COUNTER_HELP``."""

    name: ClassVar[str]
    NEXT_NODES: ClassVar[Mapping[int, str]] = {}
    COUNTER_HELP: ClassVar[Mapping[IntEnum, str]] = {}

    def __init__(self) -> None:
        self.counters: npt.NDArray[np.uint64] = np.zeros(max(len(self.COUNTER_HELP), 1), dtype=np.uint64)

    def count(self, counter: IntEnum, n: int | np.integer = 1) -> None:
        """Add ``n`` to a counter (call once per batch, not per packet)."""
        self.counters[counter] += np.uint64(n)

    def process(self, batch: Batch) -> int | Edges:
        """Return the next edge for the whole batch (int) or per packet (array)."""
        raise NotImplementedError

    def counter_values(self) -> dict[str, int]:
        """Counter name (lower case) → value, for metrics and the CLI."""
        return {c.name.lower(): int(self.counters[c]) for c in self.COUNTER_HELP}


class PerPacketNode(Node):
    """A slow-path node (ARP, DHCP, ND, ...) that handles its few packets one at a time.

    ``next_for`` may rewrite the frame in place (``batch.frame(i)`` is a view) or replace it via
    :meth:`replace_frame`, and returns the edge. It counts into ``self.tally[counter] += 1``, a
    plain list added to the node's counters once per batch. Hot nodes must stay vectorized instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tally: list[int] = [0] * len(self.counters)

    def process(self, batch: Batch) -> Edges:
        self.tally = tally = [0] * len(self.counters)
        edges = np.zeros(len(batch), dtype=np.intp)
        for i in range(len(batch)):
            edges[i] = self.next_for(batch, i)
        for index, n in enumerate(tally):
            if n:
                self.counters[index] += np.uint64(n)
        return edges

    def next_for(self, batch: Batch, i: int) -> int:
        raise NotImplementedError

    @staticmethod
    def replace_frame(batch: Batch, i: int, frame: bytes | bytearray) -> None:
        """Put a new frame (e.g. a reply of another length) into packet ``i``'s slot."""
        from kubevpc_agent.graph.batch import HEADROOM, SLOT_SIZE

        n = len(frame)
        if n > SLOT_SIZE - HEADROOM:
            raise ValueError(f"frame of {n} bytes does not fit a slot")
        slot = int(batch.slot[i])
        batch.pool.data[slot, HEADROOM : HEADROOM + n] = np.frombuffer(bytes(frame), dtype=np.uint8)
        batch.off[i] = HEADROOM
        batch.length[i] = n
