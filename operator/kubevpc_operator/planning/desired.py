"""What one node's agent should hold, given the topology, NAT slots and the known underlay addresses.

On node N:
- interfaces: every resolved interface whose node is N, with its VIP, NAT slot, alias prefixes,
  the IPs of the load balancers that target it (as LB prefixes) and its firewall rules;
- load balancers: every load balancer with an instance on N; targets are the underlay addresses
  of its targets' LB prefixes (on any node, N included);
- routes, for each VNI that N serves: the addresses and alias prefixes of the VNI's interfaces on
  other nodes, its load balancer IPs (to the instance on N, else to one spread by node name), and
  the same for every peered VNI, filtered by the prefixes the peering allows;
- neighbor NATs, for each VNI that N serves: the NAT slots of the VNI's interfaces on other nodes;
- with a border router configured (``router``): for each VNI that N serves, the default routes
  ``0.0.0.0/0`` and ``::/0`` to it (internet access for VIPs, NAT gateways and public load
  balancers; dpservice applies NAT only to traffic that leaves through a default route).

Entries that need another node's underlay address wait until that address is known (``waiting``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubevpc_operator.models.common import IPNetwork
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.models.network_interface import FirewallRule, NetworkInterface
from kubevpc_operator.models.network_interface import Pxe as PxeSpec
from kubevpc_operator.planning.nat import NatAllocation
from kubevpc_operator.planning.state import (
    Export,
    ExportKind,
    FirewallRuleState,
    InterfaceState,
    LoadBalancerState,
    Nat,
    NeighborNatState,
    NodeState,
    Owner,
    Protected,
    Pxe,
    RouteState,
)
from kubevpc_operator.planning.topology import NatMembership, ResolvedInterface, Topology

Exports = Mapping[tuple[str, Export], str]  # (node, export) -> underlay IPv6 address


@dataclass(frozen=True)
class NodeDesired:
    state: NodeState
    owners: frozenset[str] = frozenset()  # uids with at least one entry on this node
    waiting: Mapping[str, str] = field(default_factory=dict)  # uid -> what is missing


def nat_by_interface(
    topology: Topology, allocations: Mapping[str, NatAllocation]
) -> dict[str, tuple[NatMembership, NatSlot]]:
    """The NAT slot of every interface that has one, by interface uid."""
    result: dict[str, tuple[NatMembership, NatSlot]] = {}
    for gateway_uid, membership in topology.nat_gateways.items():
        allocation = allocations.get(gateway_uid)
        if allocation is None:
            continue
        for resolved in topology.interfaces.values():
            nic = resolved.nic
            if nic.vpc == membership.gateway.vpc and nic.meta.name in membership.members:
                slot = allocation.assigned.get(nic.meta.name)
                if slot is not None:
                    result[nic.uid] = (membership, slot)
    return result


def build_node_desired(
    topology: Topology,
    allocations: Mapping[str, NatAllocation],
    exports: Exports,
    node: str,
    router: str = "",
) -> NodeDesired:
    waiting: dict[str, str] = {}
    owners: set[str] = set()
    nats = nat_by_interface(topology, allocations)

    lb_prefixes: dict[str, set[str]] = {}
    for lb in topology.load_balancers.values():
        for uid in lb.targets:
            lb_prefixes.setdefault(uid, set()).add(lb.prefix)

    interfaces: dict[str, InterfaceState] = {}
    for resolved in topology.interfaces.values():
        if resolved.node != node:
            continue
        nat = nats.get(resolved.nic.uid)
        interfaces[resolved.nic.uid] = interface_state(
            resolved,
            nat=Nat(str(nat[1].ip), nat[1].min_port, nat[1].max_port) if nat else None,
            lb_prefixes=frozenset(lb_prefixes.get(resolved.nic.uid, ())),
        )
        owners.add(resolved.nic.uid)

    load_balancers: dict[str, LoadBalancerState] = {}
    for lb in topology.load_balancers.values():
        if node not in lb.nodes:
            continue
        targets = set()
        for uid in lb.targets:
            target = topology.interfaces[uid]
            underlay = exports.get((target.node, Export(ExportKind.LB_PREFIX, uid, lb.prefix)))
            if underlay is None:
                waiting[lb.owner.uid] = f"the target {target.nic.meta.name} has no underlay address yet"
            else:
                targets.add(underlay)
        load_balancers[lb.lb.uid] = LoadBalancerState(
            id=lb.lb.uid,
            vni=lb.vni,
            ip=str(lb.lb.ip),
            ports=tuple((p.protocol.value, p.port) for p in lb.lb.ports),
            targets=frozenset(targets),
            owner=lb.owner,
        )
        owners.add(lb.lb.uid)

    routes, route_owners = _routes(topology, exports, node, waiting, router)
    owners |= route_owners
    neighbor_nats = _neighbor_nats(topology, nats, exports, node, waiting)
    owners |= {entry.owner.uid for entry in neighbor_nats.values() if entry.owner is not None}
    return NodeDesired(
        NodeState(interfaces, load_balancers, routes, neighbor_nats),
        owners=frozenset(owners | set(waiting)),
        waiting=waiting,
    )


def interface_state(
    resolved: ResolvedInterface, nat: Nat | None, lb_prefixes: frozenset[str]
) -> InterfaceState:
    nic = resolved.nic
    return InterfaceState(
        id=nic.uid,
        vni=resolved.vni,
        device=nic.device.agent_name,
        ipv4=str(nic.ipv4) if nic.ipv4 is not None else "",
        ipv6=str(nic.ipv6) if nic.ipv6 is not None else "",
        hostname=nic.hostname,
        pxe=_pxe(nic.pxe),
        vip=str(nic.virtual_ip) if nic.virtual_ip is not None else None,
        nat=nat,
        prefixes=frozenset(str(p) for p in nic.prefixes),
        lb_prefixes=lb_prefixes,
        firewall_rules=tuple(firewall_rule_state(rule) for rule in nic.firewall_rules),
        owner=resolved.owner,
    )


def _pxe(pxe: PxeSpec | None) -> Pxe | None:
    return None if pxe is None else Pxe(pxe.server, pxe.boot_file)


def firewall_rule_state(rule: FirewallRule) -> FirewallRuleState:
    protocol = rule.protocol.value.lower()
    ported = protocol in ("tcp", "udp")
    return FirewallRuleState(
        id=rule.id,
        direction=rule.direction.value.lower(),
        priority=rule.priority,
        source=str(rule.source),
        destination=str(rule.destination),
        protocol=protocol,
        source_ports=(rule.source_ports.first, rule.source_ports.last) if ported else (-1, -1),
        destination_ports=(rule.destination_ports.first, rule.destination_ports.last) if ported else (-1, -1),
        icmp=(rule.icmp_type, rule.icmp_code) if protocol == "icmp" else (-1, -1),
        action=rule.action.value.lower(),
    )


@dataclass(frozen=True)
class _RouteSource:
    prefix: IPNetwork
    text: str  # str(prefix), computed once
    node: str  # where the next hop lives
    export: Export
    owner: Owner
    name: str  # for "waiting" messages


def _interface_sources(resolved: ResolvedInterface) -> list[_RouteSource]:
    nic: NetworkInterface = resolved.nic
    return [
        _RouteSource(
            prefix,
            text,
            resolved.node,
            Export(ExportKind.PREFIX, nic.uid, text) if alias else Export(ExportKind.INTERFACE, nic.uid),
            resolved.owner,
            nic.meta.name,
        )
        for prefix, text, alias in nic.routed_prefixes
    ]


DEFAULT_PREFIXES = ("0.0.0.0/0", "::/0")


def _routes(
    topology: Topology, exports: Exports, node: str, waiting: dict[str, str], router: str = ""
) -> tuple[dict[tuple[int, str], RouteState], set[str]]:
    by_vni = topology.by_vni
    lbs_by_vni: dict[int, list[_RouteSource]] = {}
    for lb in topology.load_balancers.values():
        instance = lb.instance_for(node)
        if instance is not None:
            prefix = lb.lb.host_prefix()
            export = Export(ExportKind.LOAD_BALANCER, lb.lb.uid)
            source = _RouteSource(prefix, lb.prefix, instance, export, lb.owner, lb.lb.meta.name)
            lbs_by_vni.setdefault(lb.vni, []).append(source)

    def sources(vni: int, *, remote_only: bool) -> list[_RouteSource]:
        result = []
        for resolved in by_vni.get(vni, ()):
            if remote_only and resolved.node == node:
                continue  # the agent routes its own interfaces and alias prefixes itself
            result += _interface_sources(resolved)
        return result + lbs_by_vni.get(vni, [])

    routes: dict[tuple[int, str], RouteState] = {}
    owners: set[str] = set()
    for vni in sorted(topology.serving(node)):
        # Prefixes the agent already routes in this VNI (local interfaces): never shadow them.
        local = {text for r in by_vni.get(vni, ()) if r.node == node for _, text, _ in r.nic.routed_prefixes}
        candidates = [(vni, s) for s in sources(vni, remote_only=True)]
        for peer_vni, peering in topology.peers.get(vni, ()):
            candidates += [
                (peer_vni, s) for s in sources(peer_vni, remote_only=False) if peering.allows(s.prefix)
            ]
        for nexthop_vni, source in candidates:
            key = (vni, source.text)
            if source.text in local or key in routes:
                continue  # first source wins: own VPC before peers, peers in VNI order
            underlay = exports.get((source.node, source.export))
            owners.add(source.owner.uid)
            if underlay is None:
                waiting[source.owner.uid] = f"{source.name} has no underlay address on {source.node} yet"
                continue
            routes[key] = RouteState(vni, source.text, nexthop_vni, underlay, owner=source.owner)
        if router:
            for default in DEFAULT_PREFIXES:
                if default not in local:
                    routes.setdefault((vni, default), RouteState(vni, default, vni, router))
    return routes, owners


def _neighbor_nats(
    topology: Topology,
    nats: Mapping[str, tuple[NatMembership, NatSlot]],
    exports: Exports,
    node: str,
    waiting: dict[str, str],
) -> dict[tuple[str, int, int, int], NeighborNatState]:
    serving = topology.serving(node)
    result: dict[tuple[str, int, int, int], NeighborNatState] = {}
    for uid, (_, slot) in sorted(nats.items()):
        resolved = topology.interfaces[uid]
        if resolved.node == node or resolved.vni not in serving:
            continue
        underlay = exports.get((resolved.node, Export(ExportKind.NAT, uid)))
        if underlay is None:
            waiting[uid] = f"the NAT of {resolved.nic.meta.name} has no underlay address yet"
            continue
        entry = NeighborNatState(
            str(slot.ip), resolved.vni, slot.min_port, slot.max_port, underlay, owner=resolved.owner
        )
        result[entry.key] = entry
    return result


def protected_for(topology: Topology, exports: Exports) -> Protected:
    """Observed entries of frozen objects, which planning must not delete."""
    frozen = topology.frozen
    return Protected(
        interface_ids=frozen,
        load_balancer_ids=frozen,
        underlays=frozenset(underlay for (_, export), underlay in exports.items() if export.uid in frozen),
    )


def is_ipv6_prefix(prefix: str) -> bool:
    return isinstance(ipaddress.ip_network(prefix), ipaddress.IPv6Network)
