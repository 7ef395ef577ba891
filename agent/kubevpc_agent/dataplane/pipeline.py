"""dpservice's packet pipeline as one graph (DPSERVICE.md §3): every node, wired in one place.

``build_pipeline`` constructs the nodes with the tables they read and returns the validated graph
the worker drives. The compiled views (port table, LPM, VNF map) are built once here and shared,
so each refreshes once per change however many nodes read it.

Today's paths (dpservice's, minus the network functions that are not built yet)::

    cls ─┬─ arp ───────────────────────────────────────────────────────────── tx
         ├─ ipv6_nd ───────────────────────────────────────────────────────── tx
         ├─ conntrack ─┬─ dhcp / dhcpv6 ───────────────────────────────────── tx
         │             ├─ ipv4_lookup / ipv6_lookup ─┬─────────────────────── tx      (to a VM)
         │             │                             └─ ipip_encap ────────── tx      (to the underlay)
         └─ ipip_decap ─ conntrack ─────────────────────────────────────────── tx      (uplink to a VM)

Where the network-functions issue slots in (dpservice's order): ``conntrack`` → ``dnat`` (VM
traffic, VIP/NAT underlays) or ``lb`` (LB underlays) or ``firewall`` (interface/prefix underlays);
the lookups → ``snat`` → ``firewall`` → ``tx`` / ``ipip_encap``; ``lb``/``dnat`` → ``packet_relay``
→ ``ipip_encap``; ``ipip_encap`` → ``cls`` for LB recirculation. Each is an edge name in the
owning node's ``NEXT_NODES`` plus one constructor call below.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import Port
from kubevpc_agent.nodes.arp import Arp
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.conntrack import Conntrack
from kubevpc_agent.nodes.dhcp import Dhcp
from kubevpc_agent.nodes.dhcpv6 import Dhcpv6
from kubevpc_agent.nodes.drop import Drop
from kubevpc_agent.nodes.ipip_decap import IpipDecap
from kubevpc_agent.nodes.ipip_encap import IpipEncap
from kubevpc_agent.nodes.ipv4_lookup import Ipv4Lookup
from kubevpc_agent.nodes.ipv6_lookup import Ipv6Lookup
from kubevpc_agent.nodes.ipv6_nd import Ipv6Nd
from kubevpc_agent.nodes.tx import Tx
from kubevpc_agent.tables.lpm import Lpm4, Lpm6
from kubevpc_agent.tables.multipath import Multipath
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs
from kubevpc_agent.tables.vnf_map import VnfMap


def build_pipeline(state: AgentState, macs: PortMacs, ports: Sequence[Port]) -> Graph:
    """The validated graph over ``ports``; nodes read ``state`` and ``macs`` (never copies)."""
    config = state.config
    port_table = PortTable(state)
    pf_ids = port_table.pf_ids
    multipath = Multipath(pf_ids, config.wcmp_percent) if pf_ids else None
    nodes: list[Node] = [
        Cls(port_table),
        Arp(state, macs, config),
        Ipv6Nd(state, macs, config),
        IpipDecap(VnfMap(state), port_table, macs),
        Conntrack(port_table),
        Dhcp(state, macs, config),
        Dhcpv6(state, macs, config),
        Ipv4Lookup(Lpm4(state), port_table, macs, multipath),
        Ipv6Lookup(Lpm6(state), port_table, macs),
        IpipEncap(port_table, macs),
        Tx(ports),
        Drop(),
    ]
    graph = Graph(nodes, entry="cls", drop="drop")
    if graph.unreachable:
        raise ValueError(f"pipeline nodes no edge reaches: {graph.unreachable}")
    return graph
