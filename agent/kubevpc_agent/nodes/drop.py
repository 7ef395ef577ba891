"""drop: the end of every packet no node forwards (DPSERVICE.md §3.1: every node's edge 0).

In:  packets a node sent to its DROP edge; the reason is already counted there, per node.
Out: none (terminal); the runtime frees the slots.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import Node


class Counter(IntEnum):
    DROPPED = 0


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.DROPPED: "Packets dropped (reasons: the other nodes' counters)"
}


class Drop(Node):
    """Counts and discards."""

    name = "drop"
    NEXT_NODES: ClassVar[Mapping[int, str]] = {}  # terminal
    COUNTER_HELP = COUNTER_HELP

    def process(self, batch: Batch) -> int:
        self.count(Counter.DROPPED, len(batch))
        return 0
