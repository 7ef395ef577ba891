"""AgentState: every object the API created, in the shape the datapath reads it.

One instance lives in the control-plane process (authoritative: validates, raises
:class:`~kubevpc_agent.tables.errors.DpError`, rolls back) and one replica in each dataplane
process (applies the same commands, which cannot fail there). ``version`` and the per-VNI and
per-table versions bump on every change so compiled datapath views know when to rebuild.

The read API below is what nodes use; mutations are the command handlers (see ``commands.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.tables.model import (
    FirewallRule,
    Interface,
    LoadBalancer,
    NatRange,
    NeighborNat,
    RouteEntry,
    VnfEntry,
)


@dataclass
class VniTables:
    """Routing state of one VNI; exists while an interface or a load balancer uses the VNI."""

    vni: int
    routes4: dict[IPv4Network, RouteEntry] = field(default_factory=dict)
    routes6: dict[IPv6Network, RouteEntry] = field(default_factory=dict)
    refcount: int = 0
    version: int = 0  # bumps on every route change in this VNI


@dataclass
class SnatEntry:
    """Source-NAT data of one VM address (dpservice's SNAT table, key (VM IPv4, VNI))."""

    vip: IPv4Address | None = None
    nat: NatRange | None = None


@dataclass
class AgentState:
    """All agent state; see the module docstring."""

    config: AgentConfig
    ports: dict[int, PortSpec] = field(default_factory=dict)
    interfaces: dict[str, Interface] = field(default_factory=dict)  # by interface id
    port_interface: dict[int, str] = field(default_factory=dict)  # VF port id -> interface id
    vnis: dict[int, VniTables] = field(default_factory=dict)
    vnf: dict[IPv6Address, VnfEntry] = field(default_factory=dict)  # our underlay addresses
    snat: dict[tuple[IPv4Address, int], SnatEntry] = field(default_factory=dict)  # (VM IPv4, VNI)
    dnat: dict[tuple[IPv4Address, int], IPv4Address | None] = field(default_factory=dict)  # None: NAT IP
    neighbor_nats: list[NeighborNat] = field(default_factory=list)  # insertion order
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)  # by LB id
    firewall: dict[str, list[FirewallRule]] = field(default_factory=dict)  # interface id -> rules
    initialized: bool = False
    version: int = 0  # bumps on every applied change
    vnf_version: int = 0
    nat_version: int = 0
    lb_version: int = 0
    firewall_version: int = 0

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = {p.port_id: p for p in self.config.ports}

    # --- read API used by the datapath ---------------------------------------------------------

    def interface_by_port(self, port_id: int) -> Interface | None:
        """The interface bound to a VF port, if any."""
        iface_id = self.port_interface.get(port_id)
        return None if iface_id is None else self.interfaces.get(iface_id)

    def pf_ports(self) -> list[PortSpec]:
        """Uplink ports, pf0 first."""
        return [p for p in self.ports.values() if p.kind is PortKind.PF]

    def vni_tables(self, vni: int) -> VniTables | None:
        return self.vnis.get(vni)
