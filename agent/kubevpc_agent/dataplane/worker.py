"""The dataplane worker: one single-threaded loop that owns the ports, the graph and the replica.

Each turn of the loop:

1. wait for work: ``epoll`` on the port fds and the control pipe, with a timeout of zero while
   packets keep coming and up to ``idle_timeout`` (bounded by the next timer) when idle, so an
   idle worker sleeps instead of spinning;
2. receive from every ready port up to ``batch`` frames (adaptive: whatever is pending, so batches
   grow by themselves under load, BRIEF.md §6);
3. apply every pending control-plane command to the replica ``AgentState``. Doing this *after*
   receiving keeps the API's ordering promise: a packet sent after an RPC returned is received
   after that RPC's command was queued, so it sees the change;
4. run the graph once over everything received (tx nodes hand frames to the ports);
5. timers: periodic frames (GARP, RA), flow ageing, the PF router MAC look-up.

Counters stay here; the control plane asks for a :class:`DataplaneSnapshot` over the pipe.
"""

from __future__ import annotations

import importlib
import logging
import select
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol, cast

import numpy as np

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane.link import Barrier, BarrierReply, StatsReply, StatsRequest, Stop
from kubevpc_agent.dataplane.periodic import PeriodicMessages
from kubevpc_agent.dataplane.router_mac import Backoff, kernel_router_mac
from kubevpc_agent.dataplane.snapshot import DataplaneSnapshot, NodeRuntime, PortCounters
from kubevpc_agent.graph.batch import MAX_BATCH, Batch, PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.port import Port, PortKind
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes

log = logging.getLogger(__name__)

AGE_INTERVAL = 1.0  # seconds between flow-ageing calls
ETHERTYPE_IPV6 = (0x86, 0xDD)
IPIP_NEXT_HEADERS = (4, 41)


class GraphBuilder(Protocol):
    def __call__(self, state: AgentState, macs: PortMacs, ports: Sequence[Port]) -> Graph: ...


class Ageing(Protocol):
    """A node with timed state (conntrack): ``age`` expires what is older than its timeout."""

    def age(self, now: float) -> None: ...


class CommandHook(Protocol):
    """A node whose state a table command invalidates (conntrack purges flows of deleted objects).

    Called before the command is applied, with the replica as it still is.
    """

    def before_command(self, command: object, state: AgentState) -> None: ...


class TableFigures(Protocol):
    """A node reporting table occupancy for the metrics: table -> (capacity, entries)."""

    def table_figures(self) -> dict[str, tuple[int, int]]: ...


class PortFigures(Protocol):
    """A node reporting per-port figures for the metrics: figure -> port id -> value."""

    def port_figures(self) -> dict[str, dict[int, int]]: ...


class Periodic(Protocol):
    """Emits frames on a timer (GARP, RA, unsolicited NA): ``dataplane/periodic.py``."""

    def next_due(self) -> float: ...

    def run_due(self, now: float) -> None: ...


@dataclass(frozen=True)
class DataplaneOptions:
    """How the worker runs (not part of dpservice's command line)."""

    cpu: int | None = None  # dataplane CPU; None = the highest allowed one (if there are two or more)
    pin: bool = True  # pin the worker to ``cpu`` and steer kernel receive work away from it
    router_macs: Mapping[str, str] = field(default_factory=dict)  # PF ifname -> static router MAC
    idle_timeout: float = 0.05  # longest sleep when idle (seconds)
    batch: int = MAX_BATCH  # most frames taken from one port per turn
    pool_capacity: int = 0  # 0 = sized from the port count
    periodic: bool = True  # GARP / RA / unsolicited NA rounds (dataplane/periodic.py)


def default_graph_builder() -> GraphBuilder:
    """dpservice's pipeline (``dataplane/pipeline.py``), imported when the worker starts."""
    module = importlib.import_module("kubevpc_agent.dataplane.pipeline")
    return cast(GraphBuilder, module.build_pipeline)


class Worker:
    """The loop described in the module docstring; ``step`` runs one turn (tests drive it)."""

    def __init__(
        self,
        config: AgentConfig,
        ports: Sequence[Port],
        options: DataplaneOptions | None = None,
        build_graph: GraphBuilder | None = None,
    ) -> None:
        self.config = config
        self.options = options or DataplaneOptions()
        self.ports = list(ports)
        specs = [p.spec for p in self.ports]
        self.state = AgentState(config=config, ports={s.port_id: s for s in specs})
        self.macs = PortMacs(specs)
        capacity = self.options.pool_capacity or max(16384, 2 * MAX_BATCH * (len(self.ports) + 2))
        self.pool = PacketPool(capacity)
        self.graph = (build_graph or default_graph_builder())(self.state, self.macs, self.ports)
        self.periodic: Periodic | None = None
        if self.options.periodic:
            self.periodic = PeriodicMessages(self.state, self.macs, self.ports, self.graph)
        self.ageing: list[Ageing] = [n for n in self.graph.nodes if callable(getattr(n, "age", None))]  # type: ignore[misc]
        self.command_hooks: list[CommandHook] = [
            n  # type: ignore[misc]
            for n in self.graph.nodes
            if callable(getattr(n, "before_command", None))
        ]
        self.table_reporting: list[TableFigures] = [
            n  # type: ignore[misc]
            for n in self.graph.nodes
            if callable(getattr(n, "table_figures", None))
        ]
        self.port_reporting: list[PortFigures] = [
            n  # type: ignore[misc]
            for n in self.graph.nodes
            if callable(getattr(n, "port_figures", None))
        ]
        self.epoll = select.epoll()
        self._by_fd: dict[int, Port] = {}
        self._always: list[Port] = []  # ports without an fd (memory ports): polled every turn
        for port in self.ports:
            fd = port.fileno()
            if fd >= 0:
                self._by_fd[fd] = port
                self.epoll.register(fd, select.EPOLLIN)
            else:
                self._always.append(port)
        now = time.monotonic()
        self._pf = [p for p in self.ports if p.spec.kind is PortKind.PF]
        self._static_router = {p.spec.port_id for p in self._pf if p.spec.ifname in self.options.router_macs}
        for p in self._pf:
            if p.spec.port_id in self._static_router:
                self.macs.learn(p.spec.port_id, mac_bytes(self.options.router_macs[p.spec.ifname]))
        self._router_lookup = Backoff(now) if len(self._static_router) < len(self._pf) else None
        self._next_age = now + AGE_INTERVAL
        self.conn: Connection | None = None
        self.stopping = False
        self.busy = False
        self.figures: dict[str, float] = {
            "loops": 0,
            "idle_waits": 0,
            "rx_packets": 0,
            "rx_batches": 0,
            "commands": 0,
            "busy_seconds": 0.0,
        }

    # --- the loop --------------------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        """Listen to the control plane on ``conn``."""
        self.conn = conn
        self.epoll.register(conn.fileno(), select.EPOLLIN)

    def run(self) -> None:
        while not self.stopping:
            self.step()

    def step(self, timeout: float | None = None) -> int:
        """One turn of the loop; returns how many frames it received."""
        figures = self.figures
        figures["loops"] += 1
        now = time.monotonic()
        if timeout is None:
            timeout = 0.0 if self.busy else max(0.0, min(self.options.idle_timeout, self._next_timer() - now))
        if timeout > 0:
            figures["idle_waits"] += 1
        events = self.epoll.poll(timeout)
        started = time.perf_counter()
        received = self._receive(fd for fd, _ in events)
        self._drain_control()
        if received:
            self.graph.run()
        now = time.monotonic()
        self._timers(now)
        self.busy = received > 0
        if received:
            figures["busy_seconds"] += time.perf_counter() - started
        return received

    def _receive(self, ready_fds: Iterable[int]) -> int:
        total = 0
        by_fd, pool, budget = self._by_fd, self.pool, self.options.batch
        ready = [by_fd[fd] for fd in ready_fds if fd in by_fd]
        for port in (*ready, *self._always):
            batch = port.receive(pool, min(budget, pool.available))
            n = len(batch)
            if n:
                total += n
                if port.spec.kind is PortKind.PF and port.spec.port_id not in self._static_router:
                    self._learn_router(port.spec.port_id, batch)
                self.graph.enqueue(batch)
        if total:
            self.figures["rx_packets"] += total
            self.figures["rx_batches"] += 1
        return total

    def _learn_router(self, port_id: int, batch: Batch) -> None:
        """The source MAC of the last IP-in-IPv6 frame of a PF batch is the underlay next hop."""
        frame = batch.frame(len(batch) - 1)
        if len(frame) > 20 and (frame[12], frame[13]) == ETHERTYPE_IPV6 and frame[20] in IPIP_NEXT_HEADERS:
            src = frame[6:12]
            if not np.array_equal(self.macs.peer[port_id], src):
                self.macs.learn(port_id, bytes(src))

    def _drain_control(self) -> None:
        conn = self.conn
        if conn is None:
            return
        while conn.poll():
            try:
                message = conn.recv()
            except EOFError:  # the control plane is gone: so are we
                self.stopping = True
                return
            self.handle(message)

    def handle(self, message: Any) -> None:
        """Apply one message from the control plane."""
        if isinstance(message, StatsRequest):
            self._reply(StatsReply(message.seq, self.snapshot()))
        elif isinstance(message, Barrier):
            self._reply(BarrierReply(message.seq))
        elif isinstance(message, Stop):
            self.stopping = True
        else:
            for hook in self.command_hooks:
                hook.before_command(message, self.state)
            self.state.apply(message)
            self.figures["commands"] += 1

    def _reply(self, message: object) -> None:
        if self.conn is not None:
            self.conn.send(message)

    # --- timers ----------------------------------------------------------------------------------

    def _next_timer(self) -> float:
        due = self._next_age
        if self.periodic is not None:
            due = min(due, self.periodic.next_due())
        if self._router_lookup is not None:
            due = min(due, self._router_lookup.due)
        return due

    def _timers(self, now: float) -> None:
        if self.periodic is not None and now >= self.periodic.next_due():
            self.periodic.run_due(now)
        if now >= self._next_age:
            for node in self.ageing:
                node.age(now)
            self._next_age = now + AGE_INTERVAL
        lookup = self._router_lookup
        if lookup is not None and now >= lookup.due:
            found = self.lookup_router_macs()
            lookup.next(time.monotonic(), found)

    def lookup_router_macs(self) -> bool:
        """Ask the kernel for each PF's router MAC; True if every dynamic PF has one."""
        found_all = True
        for port in self._pf:
            if port.spec.port_id in self._static_router:
                continue
            mac = kernel_router_mac(port.spec.ifname)
            if mac is None:
                found_all = False
            else:
                self.macs.learn(port.spec.port_id, mac)
        return found_all

    # --- counters --------------------------------------------------------------------------------

    def snapshot(self) -> DataplaneSnapshot:
        ports = []
        for port in self.ports:
            stats = getattr(port, "stats", None)
            counters = stats.as_dict() if stats is not None else {}
            spec = port.spec
            ports.append(PortCounters(spec.port_id, spec.device, spec.ifname, spec.kind.name, counters))
        nodes = tuple(
            NodeRuntime(n.name, st.calls, st.packets, st.drops)
            for n, st in zip(self.graph.nodes, self.graph.stats, strict=True)
        )
        worker = dict(self.figures)
        worker["pool_capacity"] = self.pool.capacity
        worker["pool_available"] = self.pool.available
        worker["state_version"] = self.state.version
        tables: dict[str, tuple[int, int]] = {}
        for reporter in self.table_reporting:
            tables.update(reporter.table_figures())
        interfaces: dict[str, dict[str, int]] = {}
        for port_reporter in self.port_reporting:
            for figure, by_port in port_reporter.port_figures().items():
                named = interfaces.setdefault(figure, {})
                for port_id, value in by_port.items():
                    iface = self.state.port_interface.get(port_id)
                    if iface is not None:
                        named[iface] = value
        return DataplaneSnapshot(
            tuple(ports), tuple(self.graph.counter_snapshot()), nodes, worker, tables, interfaces
        )

    def close(self) -> None:
        self.epoll.close()
        for port in self.ports:
            port.close()
