"""An agent's state built through real table commands, and the whole pipeline over memory ports.

dpservice's test topology (``testkit.dp_topology``: pf0, pf1, four VFs, VM1..VM4) with every
interface created by ``CreateInterface`` so VNIs, routes and underlay addresses are what the
control plane would produce; ``Harness`` feeds frames into ports, runs the graph to completion
and collects what each port sent, checking every emitted frame with ``testkit.packets``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address

import numpy as np

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane.pipeline import build_pipeline
from kubevpc_agent.graph.batch import MAX_BATCH, Batch, PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.trace import Tracer
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import FlowTable, make_keys
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VM1, VM2, VM3, VM4, Vm
from testkit.packets import assert_valid

ROUTER_MAC = "02:aa:bb:cc:dd:01"  # the underlay router behind pf0/pf1, as the worker would learn it
REMOTE_UNDERLAY = IPv6Address("fc00:2::64")  # another node's interface underlay
ALL_VMS = (VM1, VM2, VM3, VM4)


def underlay_of(vm: Vm) -> IPv6Address:
    return IPv6Address(f"fc00:1::d0:0:0:{vm.port}")


def build_state(config: AgentConfig = CONFIG, vms: Iterable[Vm] = ALL_VMS) -> AgentState:
    """dpservice's test interfaces created through the table commands."""
    state = AgentState(config)
    for vm in vms:
        state.apply(
            cmd.CreateInterface(
                interface_id=vm.name,
                device=PORTS[vm.port].device,
                vni=vm.vni,
                ipv4=IPv4Address(vm.ip),
                ipv6=IPv6Address(vm.ipv6),
                underlay=underlay_of(vm),
                hostname=vm.hostname,
            )
        )
    return state


def add_route(state: AgentState, vni: int, prefix: str, nexthop: IPv6Address = REMOTE_UNDERLAY) -> None:
    ip, length = prefix.split("/")
    state.apply(cmd.CreateRoute(vni=vni, ip=ip_address(ip), length=int(length), nexthop=nexthop))


@dataclass
class Harness:
    """The pipeline over one MemoryPort per configured port."""

    state: AgentState
    pool_size: int = 4096
    macs: PortMacs = field(init=False)
    ports: list[MemoryPort] = field(init=False)
    graph: Graph = field(init=False)
    pool: PacketPool = field(init=False)

    def __post_init__(self) -> None:
        specs = [replace(p, driver="memory") for p in self.state.config.ports]
        self.macs = PortMacs(specs)
        for pf in (PF0, PF1):
            self.macs.learn(pf, mac_bytes(ROUTER_MAC))
        for vm in ALL_VMS:  # the VMs' MACs, as ARP/DHCP would teach them
            self.macs.learn(vm.port, mac_bytes(vm.mac))
        self.ports = [MemoryPort(spec) for spec in specs]
        self.graph = build_pipeline(self.state, self.macs, self.ports)
        self.graph.tracer = Tracer()
        self.pool = PacketPool(self.pool_size)

    def send(self, port: int, frames: Sequence[bytes], *, validate: bool = True) -> dict[int, list[bytes]]:
        """Inject ``frames`` on ``port``, run the graph, return what each port sent (validated)."""
        self.ports[port].inject(frames)
        while self.ports[port].rx_queue:
            self.graph.enqueue(self.ports[port].receive(self.pool, MAX_BATCH))
            self.graph.run()
        out = {p.spec.port_id: p.take_sent() for p in self.ports}
        for frames_out in out.values():
            for frame in frames_out if validate else ():
                assert_valid(frame)
        return {k: v for k, v in out.items() if v}

    def apply(self, command: object) -> None:
        """Apply a table command as the dataplane worker does: nodes' ``before_command`` hooks first."""
        for node in self.graph.nodes:
            hook = getattr(node, "before_command", None)
            if callable(hook):
                hook(command, self.state)
        self.state.apply(command)  # type: ignore[arg-type]

    def counters(self) -> dict[str, int]:
        """Every non-zero node counter as ``node.counter``."""
        return {f"{node}.{name}": value for node, name, value in self.graph.counter_snapshot() if value}


@dataclass
class NodeRun:
    """What one ``Node.process`` call did: edges, the batch afterwards, counter deltas."""

    edges: list[int]
    batch: Batch
    counters: dict[str, int]  # non-zero deltas only

    @property
    def frames(self) -> list[bytes]:
        return self.batch.frames()


def receive(frames: Sequence[bytes], port: int, pool: PacketPool | None = None) -> Batch:
    """A batch of ``frames`` as received on ``port`` (a MemoryPort puts them at the headroom)."""
    rx = MemoryPort(replace(PORTS[port], driver="memory"))
    rx.inject(frames)
    batch = rx.receive(pool or PacketPool(max(64, 2 * len(frames))), MAX_BATCH)
    assert len(batch) == len(frames)
    return batch


def resolve_flows(flows: FlowTable, batch: Batch, now: float = 0.0) -> Batch:
    """Give a classified batch its flows as conntrack would (VNF type 0 in the key, as for
    interface and LB underlay traffic): created when new, found otherwise."""
    keys = make_keys(
        l3=batch.l3,
        proto=batch.proto,
        src_hi=batch.src_hi,
        src_lo=batch.src_lo,
        dst_hi=batch.dst_hi,
        dst_lo=batch.dst_lo,
        sport=batch.sport,
        dport=batch.dport,
        vni=batch.vni,
        vnf_type=np.zeros(len(batch), dtype=np.uint8),
    )
    resolved = flows.resolve(keys, now, batch.rx_port)
    batch.flow, batch.flow_dir = resolved.flow, resolved.dir
    return batch


def run_node(node: Node, batch: Batch) -> NodeRun:
    """Call ``node.process`` on ``batch``; edges as a list, counters as deltas."""
    before = node.counter_values()
    edges = node.process(batch)
    after = node.counter_values()
    edge_list = [int(edges)] * len(batch) if isinstance(edges, int) else np.asarray(edges).tolist()
    deltas = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    return NodeRun(edge_list, batch, deltas)
