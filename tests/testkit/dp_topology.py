"""dpservice's test topology (DPSERVICE.md §6.2/§6.3) as agent state, and a way to run one node.

Ports in dpservice's vdev order: pf0, pf1 (``22:22:22:22:22:0x``), then four VFs whose own MAC is
the VM's MAC (TAP mode), ``66:66:66:66:66:0x``. VM1..VM3 are bound like ``prepare_ifaces`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

import numpy as np

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import Batch, PacketPool
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables.model import Interface, Pxe
from kubevpc_agent.tables.state import AgentState

PF0, PF1, VF0, VF1, VF2, VF3 = range(6)
PORTS = (
    PortSpec(PF0, "net_tap0", "dtap0", "22:22:22:22:22:00", PortKind.PF),
    PortSpec(PF1, "net_tap1", "dtap1", "22:22:22:22:22:01", PortKind.PF),
    PortSpec(VF0, "net_tap2", "dtapvf_0", "66:66:66:66:66:00", PortKind.VF),
    PortSpec(VF1, "net_tap3", "dtapvf_1", "66:66:66:66:66:01", PortKind.VF),
    PortSpec(VF2, "net_tap4", "dtapvf_2", "66:66:66:66:66:02", PortKind.VF),
    PortSpec(VF3, "net_tap5", "dtapvf_3", "66:66:66:66:66:03", PortKind.VF),
)
GATEWAY_MAC_MULTICAST = "33:33:00:00:00:01"
PXE_SERVER = IPv6Address("2001:dede::1")
DHCP_DNS = (IPv4Address("8.8.4.4"), IPv4Address("8.8.8.8"))
DHCPV6_DNS = (IPv6Address("2001:4860:4860::6464"), IPv6Address("2002:4861:4861::6464"))


@dataclass(frozen=True)
class Vm:
    name: str
    port: int
    mac: str
    vni: int
    ip: str
    ipv6: str
    hostname: str = ""


VM1 = Vm("vm1", VF0, "66:66:66:66:66:00", 100, "10.100.1.1", "2000:100:1::1", "vm1-host")
VM2 = Vm("vm2", VF1, "66:66:66:66:66:01", 100, "10.100.1.2", "2000:100:1::2")
VM3 = Vm("vm3", VF2, "66:66:66:66:66:02", 200, "10.200.1.3", "2000:200:1::3")
VM4 = Vm("vm4", VF3, "66:66:66:66:66:03", 100, "10.100.1.4", "2000:100:1::4")

CONFIG = AgentConfig(
    ports=PORTS,
    pf0="dtap0",
    pf1="dtap1",
    vf_pattern="dtapvf_",
    underlay_ipv6=IPv6Address("fc00:1::1"),
    enable_ipv6_overlay=True,
    dhcp_mtu=1337,
    dhcp_dns=DHCP_DNS,
    dhcpv6_dns=DHCPV6_DNS,
)


def interface_of(vm: Vm, *, ipv4: bool = True, ipv6: bool = True, pxe: Pxe | None = None) -> Interface:
    return Interface(
        id=vm.name,
        device=PORTS[vm.port].device,
        port_id=vm.port,
        vni=vm.vni,
        ipv4=IPv4Address(vm.ip) if ipv4 else None,
        ipv6=IPv6Address(vm.ipv6) if ipv6 else None,
        underlay=IPv6Address(f"fc00:1::{vm.port}"),
        hostname=vm.hostname,
        pxe=pxe,
    )


def bind(state: AgentState, iface: Interface) -> Interface:
    """Put an interface on its port (what CreateInterface does to the state)."""
    state.interfaces[iface.id] = iface
    state.port_interface[iface.port_id] = iface.id
    state.version += 1
    return iface


def unbind(state: AgentState, iface_id: str) -> None:
    iface = state.interfaces.pop(iface_id)
    del state.port_interface[iface.port_id]
    state.version += 1


@dataclass
class Result:
    """What one node call did to a batch of frames from one port."""

    edges: list[int]
    frames: list[bytes]
    tx_ports: list[int]
    counters: dict[str, int]  # deltas, only the non-zero ones


def run_node(node: Node, frames: Sequence[bytes], port: int) -> Result:
    """Receive ``frames`` on ``port`` through a MemoryPort and hand the batch to ``node``."""
    pool = PacketPool(64)
    rx = MemoryPort(replace(PORTS[port], driver="memory"))
    rx.inject(frames)
    batch: Batch = rx.receive(pool, 64)
    assert len(batch) == len(frames)
    before = node.counter_values()
    edges = node.process(batch)
    edge_list = [int(edges)] * len(batch) if isinstance(edges, int) else np.asarray(edges).tolist()
    after = node.counter_values()
    deltas = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    return Result(edge_list, batch.frames(), batch.tx_port.tolist(), deltas)
