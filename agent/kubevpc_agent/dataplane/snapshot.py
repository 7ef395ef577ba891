"""The worker's counters as one picklable value, taken between two batches.

The dataplane worker owns every counter (ports, graph nodes, its own loop); the control-plane
process asks for a snapshot at scrape time over the link (never a metric call per packet) and
``kubevpc_agent.metrics`` turns it into Prometheus samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PortCounters:
    port_id: int
    device: str  # API device name (net_tapN)
    ifname: str
    kind: str  # "PF" or "VF"
    counters: dict[str, int]  # PortStats fields: rx_packets, rx_bytes, rx_dropped, tx_...


@dataclass(frozen=True, slots=True)
class NodeRuntime:
    node: str
    calls: int
    packets: int
    drops: int


@dataclass(frozen=True, slots=True)
class DataplaneSnapshot:
    ports: tuple[PortCounters, ...] = ()
    node_counters: tuple[tuple[str, str, int], ...] = ()  # (node, counter, value)
    nodes: tuple[NodeRuntime, ...] = ()
    worker: dict[str, float] = field(default_factory=dict)  # loop figures, pool use, commands
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (capacity, entries)
    interfaces: dict[str, dict[str, int]] = field(default_factory=dict)  # figure -> interface id -> value

    def port(self, device: str) -> PortCounters | None:
        return next((p for p in self.ports if p.device == device), None)

    def node_counter(self, node: str, counter: str) -> int:
        return next((v for n, c, v in self.node_counters if n == node and c == counter), 0)
