"""dpservice's packet pipeline as one graph (DPSERVICE.md §3): every node, wired in one place.

``build_pipeline`` constructs the nodes with the tables they read and returns the validated graph
the worker drives. The compiled views (port table, LPM, VNF map) are built once here and shared,
so each refreshes once per change however many nodes read it.

The paths (dpservice's)::

    cls ─┬─ arp / ipv6_nd ─────────────────────────────────────────────────────────────── tx
         ├─ conntrack ─┬─ dhcp / dhcpv6 ───────────────────────────────────────────────── tx
         │             └─ dnat ─┬─ ipv4_lookup / ipv6_lookup ─ snat ─ firewall ─┬──────── tx   (to a VM)
         │                      │                                               └─ ipip_encap ─ tx
         │                      └─ packet_relay ─ ipip_encap ─ tx     (neighbour NAT, echo replies)
         └─ ipip_decap ─ conntrack ─┬─ dnat ─ …              (VIP / NAT underlays, as above)
                                    ├─ lb ─┬─ ipip_encap ─┬─ tx      (remote target)
                                    │      │              └─ cls     (local target: recirculated)
                                    │      └─ packet_relay           (echo to the LB IP)
                                    └─ firewall ─ tx                 (interface / prefix underlays)

One flow table (``tables/conntrack.py``) is shared by every stateful node; the NAT port allocator
releases ports through the table's release hook when flows go.
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
from kubevpc_agent.nodes.dnat import Dnat
from kubevpc_agent.nodes.drop import Drop
from kubevpc_agent.nodes.firewall import Firewall
from kubevpc_agent.nodes.ipip_decap import IpipDecap
from kubevpc_agent.nodes.ipip_encap import IpipEncap
from kubevpc_agent.nodes.ipv4_lookup import Ipv4Lookup
from kubevpc_agent.nodes.ipv6_lookup import Ipv6Lookup
from kubevpc_agent.nodes.ipv6_nd import Ipv6Nd
from kubevpc_agent.nodes.lb import Lb
from kubevpc_agent.nodes.packet_relay import PacketRelay
from kubevpc_agent.nodes.snat import Snat
from kubevpc_agent.nodes.tx import Tx
from kubevpc_agent.tables.conntrack import FlowTable
from kubevpc_agent.tables.firewall_eval import FirewallTable
from kubevpc_agent.tables.lb_select import LbTable
from kubevpc_agent.tables.lpm import Lpm4, Lpm6
from kubevpc_agent.tables.multipath import Multipath
from kubevpc_agent.tables.nat import NatPorts, NatView
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
    vnf_map = VnfMap(state)
    flows = FlowTable(config.conntrack_capacity, config.flow_timeout)
    nat = NatView(state)
    nat_ports = NatPorts()
    flows.release_hooks.append(nat_ports.release)
    nodes: list[Node] = [
        Cls(port_table),
        Arp(state, macs, config),
        Ipv6Nd(state, macs, config),
        IpipDecap(vnf_map, port_table, macs),
        Conntrack(port_table, flows, nat),
        Dhcp(state, macs, config),
        Dhcpv6(state, macs, config),
        Dnat(flows, nat),
        Lb(LbTable(state), flows, vnf_map),
        PacketRelay(flows, port_table),
        Ipv4Lookup(Lpm4(state), port_table, macs, multipath),
        Ipv6Lookup(Lpm6(state), port_table, macs),
        Snat(flows, nat, nat_ports),
        Firewall(FirewallTable(state), flows, port_table, enforce=not config.fw_drop_compat),
        IpipEncap(port_table, macs),
        Tx(ports),
        Drop(),
    ]
    graph = Graph(nodes, entry="cls", drop="drop")
    if graph.unreachable:
        raise ValueError(f"pipeline nodes no edge reaches: {graph.unreachable}")
    return graph
