"""The network-function nodes in a row, without the graph, for node-level tests.

``NatRig`` holds dpservice's test topology (VM1..VM4, default routes to the router ``fc00::ffff``)
with one flow table, NAT view and port allocator shared by its nodes, exactly as
``build_pipeline`` wires them. ``upto(node, frames, port)`` receives frames on a port and walks
them through the nodes that come before ``node`` on dpservice's path (cls, ipip_decap for uplink
frames, conntrack, dnat, the lookup, snat), asserting each step lets them through, and returns the
batch as ``node`` would get it; the test then calls ``run_node(node, batch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address

import numpy as np

from kubevpc_agent.graph.batch import L3, Batch, PacketPool
from kubevpc_agent.graph.node import Node
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.conntrack import Conntrack
from kubevpc_agent.nodes.dnat import Dnat
from kubevpc_agent.nodes.ipip_decap import IpipDecap
from kubevpc_agent.nodes.ipv4_lookup import Ipv4Lookup
from kubevpc_agent.nodes.ipv6_lookup import Ipv6Lookup
from kubevpc_agent.nodes.packet_relay import PacketRelay
from kubevpc_agent.nodes.snat import Snat
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import FlowTable
from kubevpc_agent.tables.lpm import Lpm4, Lpm6
from kubevpc_agent.tables.multipath import Multipath
from kubevpc_agent.tables.nat import NatPorts, NatView
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from kubevpc_agent.tables.vnf_map import VnfMap
from testkit.dp_topology import PF0, PF1, PORTS, Vm
from testkit.overlay import ALL_VMS, ROUTER_MAC, add_route, build_state, receive, run_node

ROUTER_UL = IPv6Address("fc00::ffff")
NAT_IP, VIP_IP = IPv4Address("172.21.1.1"), IPv4Address("172.20.0.1")
NAT_UL, VIP_UL = IPv6Address("fc00:1::d000:4e:0:1"), IPv6Address("fc00:1::d000:4e:0:2")


@dataclass
class NatRig:
    """The node chain; see the module docstring."""

    state: AgentState = field(default_factory=build_state)
    capacity: int = 1024
    now: float = 100.0

    def __post_init__(self) -> None:
        for vni in (100, 200):
            add_route(self.state, vni, "0.0.0.0/0", ROUTER_UL)
            add_route(self.state, vni, "::/0", ROUTER_UL)
        specs = [replace(p, driver="memory") for p in PORTS]
        self.macs = PortMacs(specs)
        for pf in (PF0, PF1):
            self.macs.learn(pf, mac_bytes(ROUTER_MAC))
        for vm in ALL_VMS:
            self.macs.learn(vm.port, mac_bytes(vm.mac))
        self.ports = PortTable(self.state)
        self.flows = FlowTable(self.capacity, self.state.config.flow_timeout)
        self.nat = NatView(self.state)
        self.nat_ports = NatPorts()
        self.flows.release_hooks.append(self.nat_ports.release)
        self.cls = Cls(self.ports)
        self.decap = IpipDecap(VnfMap(self.state), self.ports, self.macs)
        self.conntrack = Conntrack(self.ports, self.flows, self.nat, clock=lambda: self.now)
        self.dnat = Dnat(self.flows, self.nat)
        self.lookup4 = Ipv4Lookup(Lpm4(self.state), self.ports, self.macs, Multipath(self.ports.pf_ids, 100))
        self.lookup6 = Ipv6Lookup(Lpm6(self.state), self.ports, self.macs)
        self.snat = Snat(self.flows, self.nat, self.nat_ports)
        self.relay = PacketRelay(self.flows, self.ports)
        self.pool = PacketPool(256)

    def apply(self, command: object) -> None:
        """As the worker applies a command: conntrack's purge hook first, then the state."""
        self.conntrack.before_command(command, self.state)
        self.state.apply(command)  # type: ignore[arg-type]

    def add_nat(self, vm: Vm, lo: int = 100, hi: int = 102) -> None:
        self.apply(cmd.CreateNat(vm.name, NAT_IP, lo, hi, NAT_UL))

    def add_vip(self, vm: Vm) -> None:
        self.apply(cmd.CreateVip(vm.name, VIP_IP, VIP_UL))

    def upto(self, target: Node, frames: Sequence[bytes], port: int) -> Batch:
        """The batch as ``target`` gets it (every earlier node must pass every frame on)."""
        batch = receive(frames, port, self.pool)
        chain: list[Node] = [self.cls]
        if self.ports.is_pf[port]:
            chain.append(self.decap)
        chain += [self.conntrack, self.dnat]
        for node in chain:
            if node is target:
                return batch
            self._pass(node, batch)
        if target is self.relay:
            return batch
        lookup = self.lookup4 if (batch.l3 == L3.IPV4).all() else self.lookup6
        if target in (self.lookup4, self.lookup6):
            return batch
        self._pass(lookup, batch)
        if target is self.snat:
            return batch
        self._pass(self.snat, batch)
        return batch

    @staticmethod
    def _pass(node: Node, batch: Batch) -> None:
        run = run_node(node, batch)
        assert 0 not in run.edges, f"{node.name} dropped: {run.counters}"

    def through(self, frames: Sequence[bytes], port: int) -> Batch:
        """Every frame through the whole chain up to and including snat."""
        batch = self.upto(self.snat, frames, port)
        self._pass(self.snat, batch)
        return batch


def frames_of(batch: Batch) -> list[bytes]:
    return batch.frames()


def column(batch: Batch, name: str) -> list[int]:
    return [int(v) for v in np.asarray(getattr(batch, name))]
