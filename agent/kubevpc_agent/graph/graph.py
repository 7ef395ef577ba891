"""Build, validate and walk a graph of nodes (DPDK rte_graph's model, in Python).

``build`` resolves every node's ``NEXT_NODES`` names once and fails on unknown names; nodes no
edge reaches are reported. ``run`` drains pending batches: each node gets all batches queued for
it merged into one, returns its edges, and the runtime splits the batch by edge. Terminal nodes
(``tx``, ``drop``: no ``NEXT_NODES``) consume their batch; the runtime then frees its slots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import DROP, Node
from kubevpc_agent.graph.trace import Tracer


class GraphError(ValueError):
    """The graph is malformed (unknown edge target, duplicate node name, missing drop)."""


@dataclass
class NodeStats:
    """Per-node runtime figures, read at scrape time."""

    calls: int = 0
    packets: int = 0
    drops: int = 0  # packets this node sent to its DROP edge


class Graph:
    """A validated graph of nodes with pending queues."""

    def __init__(self, nodes: Sequence[Node], entry: str = "cls", drop: str = "drop") -> None:
        self.nodes = list(nodes)
        self.index: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            if node.name in self.index:
                raise GraphError(f"two nodes named {node.name!r}")
            self.index[node.name] = i
        for required in (entry, drop):
            if required not in self.index:
                raise GraphError(f"graph has no {required!r} node")
        self.entry = self.index[entry]
        self.drop = self.index[drop]
        # next_index[i][edge] -> node index; edge 0 always goes to drop
        self.next_index: list[list[int]] = []
        for node in self.nodes:
            width = max([0, *node.NEXT_NODES.keys()]) + 1
            table = [self.drop] * width
            for edge, target in node.NEXT_NODES.items():
                if edge == DROP:
                    raise GraphError(f"{node.name}: edge 0 is reserved for drop")
                if target not in self.index:
                    raise GraphError(f"{node.name}: edge {edge} leads to unknown node {target!r}")
                table[edge] = self.index[target]
            self.next_index.append(table)
        self.terminal = [not node.NEXT_NODES for node in self.nodes]
        self.stats = [NodeStats() for _ in self.nodes]
        self.pending: list[list[Batch]] = [[] for _ in self.nodes]
        self._ready: deque[int] = deque()
        self.tracer: Tracer | None = None

    @property
    def unreachable(self) -> list[str]:
        """Names of nodes that no edge and no entry point reaches."""
        seen = {self.entry, self.drop}
        todo = [self.entry]
        while todo:
            i = todo.pop()
            for j in self.next_index[i]:
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return [n.name for i, n in enumerate(self.nodes) if i not in seen]

    def node(self, name: str) -> Node:
        return self.nodes[self.index[name]]

    def enqueue(self, batch: Batch, node: int | None = None) -> None:
        """Queue a batch for a node (default: the entry node)."""
        if len(batch) == 0:
            return
        target = self.entry if node is None else node
        if not self.pending[target]:
            self._ready.append(target)
        self.pending[target].append(batch)

    def run(self) -> None:
        """Process until no node has pending packets."""
        ready, pending, nodes, stats = self._ready, self.pending, self.nodes, self.stats
        while ready:
            i = ready.popleft()
            queued = pending[i]
            if not queued:
                continue
            pending[i] = []
            batch = Batch.concat(queued)
            node = nodes[i]
            st = stats[i]
            st.calls += 1
            st.packets += len(batch)
            edges = node.process(batch)
            if self.terminal[i]:
                if self.tracer is not None:
                    self.tracer.record(node.name, batch, None)
                batch.pool.free(batch.slot)
                continue
            table = self.next_index[i]
            if isinstance(edges, (int, np.integer)):
                edge = int(edges)
                if self.tracer is not None:
                    self.tracer.record(node.name, batch, self.nodes[table[edge]].name)
                if edge == DROP:
                    st.drops += len(batch)
                self.enqueue(batch, table[edge])
                continue
            self._split(i, node, batch, np.asarray(edges))

    def _split(self, i: int, node: Node, batch: Batch, edges: np.ndarray) -> None:
        table = self.next_index[i]
        counts = np.bincount(edges, minlength=len(table))
        if len(counts) > len(table):
            raise GraphError(f"{node.name} returned edge {len(counts) - 1}, it has {len(table)}")
        self.stats[i].drops += int(counts[DROP])
        nonzero = np.flatnonzero(counts)
        if len(nonzero) == 1:
            edge = int(nonzero[0])
            if self.tracer is not None:
                self.tracer.record(node.name, batch, self.nodes[table[edge]].name)
            self.enqueue(batch, table[edge])
            return
        for e in nonzero.tolist():
            sub = batch.select(np.flatnonzero(edges == e))
            if self.tracer is not None:
                self.tracer.record(node.name, sub, self.nodes[table[e]].name)
            self.enqueue(sub, table[e])

    def to_dot(self) -> str:
        """The graph in Graphviz dot form (DPDK ``rte_graph_export``)."""
        lines = ["digraph kubevpc {"]
        for node in self.nodes:
            for edge, target in sorted(node.NEXT_NODES.items()):
                lines.append(f'  "{node.name}" -> "{target}" [label="{edge}"];')
            if node.NEXT_NODES:
                lines.append(f'  "{node.name}" -> "{self.nodes[self.drop].name}" [style=dashed];')
        lines.append("}")
        return "\n".join(lines)

    def counter_snapshot(self) -> Iterable[tuple[str, str, int]]:
        """(node, counter, value) for every node counter: the metrics exporter's input."""
        for node in self.nodes:
            for name, value in node.counter_values().items():
                yield node.name, name, value
