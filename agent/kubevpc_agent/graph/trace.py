"""Packet trace: which node sent which packet where, for the first packets after enabling.

A bounded ring of ``(pkt_id, node, next)`` records (VPP's trace, dpservice's graphtrace). It is
off by default and costs nothing then; tests print it as their failure message and the CLI shows it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kubevpc_agent.graph.batch import Batch


@dataclass(frozen=True, slots=True)
class TraceRecord:
    pkt_id: int
    node: str
    next: str | None  # None: consumed by a terminal node (tx, drop)


class Tracer:
    """Keeps the last ``capacity`` records of at most ``max_packets`` distinct packets."""

    def __init__(self, capacity: int = 4096, max_packets: int = 256) -> None:
        self.records: deque[TraceRecord] = deque(maxlen=capacity)
        self.max_packets = max_packets
        self._ids: set[int] = set()

    def record(self, node: str, batch: Batch, next_node: str | None) -> None:
        for pkt_id in batch.pkt_id.tolist():
            if pkt_id not in self._ids:
                if len(self._ids) >= self.max_packets:
                    continue
                self._ids.add(pkt_id)
            self.records.append(TraceRecord(pkt_id, node, next_node))

    def path(self, pkt_id: int) -> list[str]:
        """The nodes one packet went through, in order."""
        return [r.node for r in self.records if r.pkt_id == pkt_id]

    def format(self) -> str:
        return "\n".join(f"#{r.pkt_id}: {r.node} -> {r.next or '(end)'}" for r in self.records)
