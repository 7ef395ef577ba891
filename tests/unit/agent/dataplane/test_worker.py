"""The dataplane worker loop over memory ports: ordering, counters, timers, router MAC, the fork."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address

import numpy as np
import pytest

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane import DataplaneError, DataplaneOptions, start_dataplane
from kubevpc_agent.dataplane.worker import Worker
from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import Port, PortKind, PortSpec
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables.commands import CreateInterface
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs

VF0 = PortSpec(0, "net_tap0", "dtapvf_0", "02:00:00:00:00:10", PortKind.VF, "memory")
VF1 = PortSpec(1, "net_tap1", "dtapvf_1", "02:00:00:00:00:11", PortKind.VF, "memory")
PF0 = PortSpec(2, "net_tap2", "dtap0", "02:00:00:00:00:20", PortKind.PF, "memory")
CONFIG = AgentConfig(ports=(VF0, VF1, PF0))
OPTIONS = DataplaneOptions(pin=False, idle_timeout=0.01)
ROUTER = bytes.fromhex("0200000000ee")


class Cross(Node):
    """Sends VF0 traffic to VF1 and back, and counts interfaces the replica knows at that moment."""

    name = "cls"
    NEXT_NODES = {1: "tx"}

    class Counter(IntEnum):
        SEEN_WITH_INTERFACE = 0

    COUNTER_HELP = {Counter.SEEN_WITH_INTERFACE: "Packets processed while an interface existed"}

    def __init__(self, state: AgentState) -> None:
        super().__init__()
        self.state = state

    def process(self, batch: Batch) -> np.ndarray:
        if self.state.interfaces:
            self.count(self.Counter.SEEN_WITH_INTERFACE, len(batch))
        batch.tx_port[:] = np.where(batch.rx_port == 0, 1, 0)
        return np.where(batch.rx_port < 2, 1, 0)


class Tx(Node):
    name = "tx"

    def __init__(self, ports: Sequence[Port]) -> None:
        super().__init__()
        self.ports = ports

    def process(self, batch: Batch) -> int:
        for port_id in np.unique(batch.tx_port).tolist():
            self.ports[port_id].send(batch.select(batch.tx_port == port_id))
        return 0


class Drop(Node):
    name = "drop"

    def process(self, batch: Batch) -> int:
        return 0


class Aged(Node):
    name = "ct"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[float] = []

    def age(self, now: float) -> None:
        self.calls.append(now)

    def process(self, batch: Batch) -> int:
        return 0


def build(state: AgentState, macs: PortMacs, ports: Sequence[Port]) -> Graph:
    return Graph([Cross(state), Tx(ports), Drop(), Aged()])


def frame(n: int = 0) -> bytes:
    return bytes.fromhex("ffffffffffff02000000beef0800") + bytes([n]) * 46


def ipip_from(src: bytes) -> bytes:
    ipv6 = bytes([0x60, 0, 0, 0, 0, 20, 4, 64]) + bytes(32)
    return bytes.fromhex("020000000020") + src + b"\x86\xdd" + ipv6 + bytes(20)


def interface() -> CreateInterface:
    return CreateInterface(
        "vm1", "net_tap0", 7, IPv4Address("10.0.0.1"), None, IPv6Address("fc00:1::1"), hostname="vm1"
    )


def memory(worker: Worker, port_id: int) -> MemoryPort:
    port = worker.ports[port_id]
    assert isinstance(port, MemoryPort)
    return port


def make_worker(options: DataplaneOptions = OPTIONS) -> Worker:
    return Worker(CONFIG, [MemoryPort(s) for s in (VF0, VF1, PF0)], options, build)


def test_worker_forwards_what_it_receives_and_frees_every_slot() -> None:
    worker = make_worker()
    memory(worker, 0).inject([frame(i) for i in range(5)])
    assert worker.step(timeout=0) == 5
    assert memory(worker, 1).take_sent() == [frame(i) for i in range(5)]
    assert worker.pool.available == worker.pool.capacity
    assert worker.busy
    assert worker.step(timeout=0) == 0
    assert not worker.busy


def test_commands_queued_before_a_packet_arrives_apply_before_that_packet() -> None:
    """Receive first, then drain the pipe, then run the graph: the RPC-then-packet order holds."""
    worker = make_worker()

    class Pipe:
        def __init__(self) -> None:
            self.queue: list[object] = [interface()]

        def poll(self) -> bool:
            return bool(self.queue)

        def recv(self) -> object:
            return self.queue.pop(0)

    worker.conn = Pipe()  # type: ignore[assignment]
    memory(worker, 0).inject([frame()])
    worker.step(timeout=0)
    assert worker.snapshot().node_counter("cls", "seen_with_interface") == 1
    assert worker.figures["commands"] == 1


def test_snapshot_carries_port_node_and_loop_figures() -> None:
    worker = make_worker()
    memory(worker, 0).inject([frame(i) for i in range(3)])
    memory(worker, 2).inject([frame()])
    worker.step(timeout=0)
    snap = worker.snapshot()
    assert [p.device for p in snap.ports] == ["net_tap0", "net_tap1", "net_tap2"]
    cls = next(n for n in snap.nodes if n.node == "cls")
    assert (cls.calls, cls.packets, cls.drops) == (1, 4, 1)
    assert snap.worker["rx_packets"] == 4
    assert snap.worker["pool_available"] == snap.worker["pool_capacity"]


def test_router_mac_is_learned_from_ipip_frames_on_the_pf_only() -> None:
    worker = make_worker()
    memory(worker, 2).inject([frame(), ipip_from(ROUTER)])
    worker.step(timeout=0)
    assert worker.macs.peer_mac(2) == ROUTER
    memory(worker, 2).inject([frame()])  # not IP-in-IPv6: no change
    worker.step(timeout=0)
    assert worker.macs.peer_mac(2) == ROUTER
    memory(worker, 0).inject([ipip_from(bytes.fromhex("0200000000aa"))])  # a VF: not a router
    worker.step(timeout=0)
    assert worker.macs.peer_mac(0) == bytes.fromhex("020000000010")


def test_a_static_router_mac_wins_over_learning() -> None:
    worker = make_worker(DataplaneOptions(pin=False, router_macs={"dtap0": "02:00:00:00:00:77"}))
    assert worker.macs.peer_mac(2) == bytes.fromhex("020000000077")
    memory(worker, 2).inject([ipip_from(ROUTER)])
    worker.step(timeout=0)
    assert worker.macs.peer_mac(2) == bytes.fromhex("020000000077")


def test_ageing_nodes_are_called_on_their_timer() -> None:
    worker = make_worker()
    aged = worker.graph.node("ct")
    assert isinstance(aged, Aged)
    worker._next_age = 0.0
    worker.step(timeout=0)
    assert len(aged.calls) == 1
    worker.step(timeout=0)
    assert len(aged.calls) == 1  # next one a second later


def test_idle_worker_sleeps_in_poll() -> None:
    worker = make_worker(DataplaneOptions(pin=False, idle_timeout=0.02))
    worker._next_age = float("inf")
    worker._router_lookup = None
    start = time.monotonic()
    worker.step()
    assert time.monotonic() - start >= 0.015
    assert worker.figures["idle_waits"] == 1


def test_forked_worker_applies_commands_and_answers_stats() -> None:
    ports = [MemoryPort(s) for s in (VF0, VF1, PF0)]
    link = start_dataplane(CONFIG, ports, OPTIONS, build)
    try:
        assert link.started is not None and link.started.pid != 0
        link.send(interface())
        link.barrier()
        snap = link.stats()
        assert snap is not None
        assert snap.worker["commands"] == 1
        assert snap.worker["state_version"] >= 1
        assert link.is_alive()
    finally:
        link.close()
    assert not link.is_alive()


def test_worker_that_cannot_build_its_graph_fails_the_start() -> None:
    def broken(state: AgentState, macs: PortMacs, ports: Sequence[Port]) -> Graph:
        raise RuntimeError("no pipeline today")

    with pytest.raises(DataplaneError, match="no pipeline today"):
        start_dataplane(CONFIG, [MemoryPort(s) for s in (VF0, VF1, PF0)], OPTIONS, broken)


def test_worker_exits_when_the_control_plane_goes_away() -> None:
    link = start_dataplane(CONFIG, [MemoryPort(s) for s in (VF0, VF1, PF0)], OPTIONS, build)
    link._conn.close()  # the control plane vanished without saying goodbye
    _, status = os.waitpid(link.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
