"""Resolve a ClusterView into a Topology: references followed, conflicts decided, selectors applied.

Everything here is cluster-wide and independent of agent state. Rules:
- An object that cannot be programmed (missing VPC, no agent on its node, a clash with an older
  object) gets a readable *problem* and is *frozen*: nothing new is created for it and whatever
  the agents already hold for it stays. So a bad edit never tears down a working interface.
- Clashes are decided by age (creationTimestamp, then namespace/name): the older object wins.
- Objects in a frozen VPC are frozen too.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from kubevpc_operator.models.cluster import ClusterView
from kubevpc_operator.models.common import IPNetwork, Meta, ObjectKey
from kubevpc_operator.models.load_balancer import LoadBalancer
from kubevpc_operator.models.nat_gateway import NATGateway
from kubevpc_operator.models.network_interface import NetworkInterface
from kubevpc_operator.models.vpc import Peering
from kubevpc_operator.planning.state import Kind, Owner
from kubevpc_operator.planning.vpcs import active_peerings, resolve_vnis

HOSTNAME_LABEL = "kubernetes.io/hostname"  # every node carries it; node selectors may use it


@dataclass(frozen=True)
class Problem:
    """Why an object is not programmed: ``reason`` is a condition reason, ``message`` for people.

    ``waiting``: it may resolve by itself (another object or an agent appears), so retry;
    ``degraded``: it is something the user should look at (reported by the Degraded condition).
    """

    reason: str  # VPCNotFound | WaitingForVNI | WaitingForAgent | Conflict | VNIConflict | InvalidVPC
    message: str
    waiting: bool = False
    degraded: bool = True


def owner_of(kind: Kind, meta: Meta) -> Owner:
    return Owner(kind, meta.namespace, meta.name, meta.uid)


def _age(meta: Meta) -> tuple[str, str, str]:
    return (meta.created, meta.namespace, meta.name)


@dataclass(frozen=True)
class ResolvedInterface:
    nic: NetworkInterface
    vni: int
    owner: Owner

    @property
    def node(self) -> str:
        return self.nic.node_name


@dataclass(frozen=True)
class ResolvedLoadBalancer:
    lb: LoadBalancer
    vni: int
    targets: tuple[str, ...]  # interface uids, sorted
    nodes: tuple[str, ...]  # nodes running an instance, sorted
    owner: Owner

    @property
    def prefix(self) -> str:
        return str(self.lb.host_prefix())

    def instance_for(self, node: str) -> str | None:
        """Which instance ``node`` sends LB traffic to: its own, else one spread by node name."""
        if not self.nodes:
            return None
        if node in self.nodes:
            return node
        return self.nodes[zlib.crc32(node.encode()) % len(self.nodes)]


@dataclass(frozen=True)
class NatMembership:
    gateway: NATGateway
    vni: int
    members: tuple[str, ...]  # names of the interfaces that get a slot
    keep: tuple[str, ...]  # names of frozen interfaces: they hold the slot they have
    owner: Owner
    contested: tuple[tuple[str, str], ...] = ()  # (interface, older gateway serving it instead)


@dataclass(frozen=True)
class Topology:
    vnis: Mapping[ObjectKey, int] = field(default_factory=dict)
    interfaces: Mapping[str, ResolvedInterface] = field(default_factory=dict)  # by uid
    load_balancers: Mapping[str, ResolvedLoadBalancer] = field(default_factory=dict)  # by uid
    nat_gateways: Mapping[str, NatMembership] = field(default_factory=dict)  # by uid
    peers: Mapping[int, tuple[tuple[int, Peering], ...]] = field(
        default_factory=dict
    )  # vni -> (peer vni, ours)
    frozen: frozenset[str] = frozenset()  # uids whose agent state is left as it is
    problems: Mapping[str, Problem] = field(default_factory=dict)  # uid -> why it is not programmed
    nodes: frozenset[str] = frozenset()
    owners: Mapping[str, Owner] = field(default_factory=dict)  # every known object, by uid
    vpcs: frozenset[ObjectKey] = frozenset()  # every VPC that exists, with a VNI or not

    @cached_property
    def _serving(self) -> dict[str, frozenset[int]]:
        vnis: dict[str, set[int]] = {node: set() for node in self.nodes}
        for resolved in self.interfaces.values():
            vnis.setdefault(resolved.node, set()).add(resolved.vni)
        for lb in self.load_balancers.values():
            for node in lb.nodes:
                vnis.setdefault(node, set()).add(lb.vni)
        return {node: frozenset(values) for node, values in vnis.items()}

    def serving(self, node: str) -> frozenset[int]:
        """VNIs in use on ``node``: an interface or a load balancer instance lives there."""
        return self._serving.get(node, frozenset())

    def nodes_serving(self, vnis: Iterable[int]) -> frozenset[str]:
        wanted = set(vnis)
        return frozenset(node for node in self.nodes if self.serving(node) & wanted)

    @cached_property
    def by_vni(self) -> dict[int, list[ResolvedInterface]]:
        """Resolved interfaces per VNI, in name order."""
        groups: dict[int, list[ResolvedInterface]] = {}
        for resolved in sorted(self.interfaces.values(), key=lambda r: r.nic.meta.name):
            groups.setdefault(resolved.vni, []).append(resolved)
        return groups

    def peer_vnis(self, vni: int) -> frozenset[int]:
        return frozenset(peer for peer, _ in self.peers.get(vni, ()))

    def interface_by_name(self, key: ObjectKey) -> ResolvedInterface | None:
        return next((r for r in self.interfaces.values() if r.nic.key == key), None)


def resolve_topology(view: ClusterView) -> Topology:
    problems: dict[str, Problem] = {}
    owners: dict[str, Owner] = {}
    nodes = view.node_names()
    node_labels = {node.name: {**node.labels, HOSTNAME_LABEL: node.name} for node in view.nodes}

    # VPCs: VNIs in force; a younger VPC whose VNI an older one holds cannot be used.
    assignment = resolve_vnis(view.vpcs)
    vpc_uids = {vpc.key: vpc.meta.uid for vpc in view.vpcs}
    for vpc in view.vpcs:
        owners[vpc.meta.uid] = owner_of(Kind.VPC, vpc.meta)
        if vpc.key in assignment.conflicts:
            problems[vpc.meta.uid] = Problem("VNIConflict", assignment.conflicts[vpc.key])
    frozen_vpcs = set(view.frozen_vpcs)

    vpc_problems: dict[ObjectKey, Problem | None] = {}

    def vpc_problem(vpc: ObjectKey) -> Problem | None:
        if vpc not in vpc_problems:
            vpc_problems[vpc] = _vpc_problem(vpc)
        return vpc_problems[vpc]

    def _vpc_problem(vpc: ObjectKey) -> Problem | None:
        if vpc in frozen_vpcs:
            return Problem("InvalidVPC", f"VPC {vpc.name} has an invalid spec")
        if vpc not in vpc_uids:
            return Problem("VPCNotFound", f"VPC {vpc.name} not found", waiting=True)
        if vpc in assignment.conflicts:
            return Problem("InvalidVPC", f"VPC {vpc.name} cannot be used: {assignment.conflicts[vpc]}")
        if vpc not in assignment.vnis:
            return Problem("WaitingForVNI", f"VPC {vpc.name} has no VNI yet", waiting=True, degraded=False)
        return None

    # Interfaces, oldest first, so clashes go against the younger one.
    interfaces: dict[str, ResolvedInterface] = {}
    devices: dict[tuple[str, str], NetworkInterface] = {}
    addresses: dict[tuple[ObjectKey, str], NetworkInterface] = {}  # (VPC, prefix text) -> holder
    vips: dict[ipaddress.IPv4Address, NetworkInterface] = {}
    for nic in sorted(view.interfaces, key=lambda n: _age(n.meta)):
        owners[nic.uid] = owner_of(Kind.NETWORK_INTERFACE, nic.meta)
        problem = vpc_problem(nic.vpc)
        if problem is None and nic.node_name not in nodes:
            problem = Problem(
                "WaitingForAgent", f"no agent serves node {nic.node_name}", waiting=True, degraded=False
            )
        if problem is None:
            clash = _interface_clash(nic, devices, addresses, vips)
            problem = Problem("Conflict", clash) if clash else None
        if problem is not None:
            problems[nic.uid] = problem
            continue
        devices[(nic.node_name, nic.device.agent_name)] = nic
        for _, text, _ in nic.routed_prefixes:
            addresses[(nic.vpc, text)] = nic
        if nic.virtual_ip is not None:
            vips[nic.virtual_ip] = nic
        interfaces[nic.uid] = ResolvedInterface(nic, assignment.vnis[nic.vpc], owners[nic.uid])

    frozen = set(view.frozen) | set(problems)

    # Load balancers: one IP per VPC; targets by label; instances where selected (or with targets).
    load_balancers: dict[str, ResolvedLoadBalancer] = {}
    lb_ips: dict[tuple[ObjectKey, IPNetwork], str] = {}
    for lb in sorted(view.load_balancers, key=lambda b: _age(b.meta)):
        owners[lb.uid] = owner_of(Kind.LOAD_BALANCER, lb.meta)
        problem = vpc_problem(lb.vpc)
        prefix = lb.host_prefix()
        if problem is None and (lb.vpc, prefix) in lb_ips:
            problem = Problem("Conflict", f"IP {lb.ip} is already used by {lb_ips[(lb.vpc, prefix)]}")
        if problem is None and (lb.vpc, str(prefix)) in addresses:
            holder = addresses[(lb.vpc, str(prefix))].meta.name
            problem = Problem("Conflict", f"IP {lb.ip} is already used by NetworkInterface {holder}")
        if problem is not None:
            problems[lb.uid] = problem
            frozen.add(lb.uid)
            continue
        lb_ips[(lb.vpc, prefix)] = f"LoadBalancer {lb.meta.name}"
        selector = lb.target_selector
        targets = sorted(
            r.nic.uid
            for r in interfaces.values()
            if selector is not None
            and r.nic.vpc == lb.vpc
            and selector.matches(r.nic.meta.labels)
            and any(ip.version == lb.ip.version for ip in r.nic.ips)
        )
        if lb.node_selector is None:
            instance_nodes = sorted({interfaces[uid].node for uid in targets})
        else:
            node_selector = lb.node_selector
            instance_nodes = sorted(n for n in nodes if node_selector.matches(node_labels.get(n, {})))
        load_balancers[lb.uid] = ResolvedLoadBalancer(
            lb, assignment.vnis[lb.vpc], tuple(targets), tuple(instance_nodes), owners[lb.uid]
        )

    # NAT gateways: public IPs are unique cluster-wide; an interface belongs to the oldest gateway.
    nat_gateways: dict[str, NatMembership] = {}
    nat_ips: dict[ipaddress.IPv4Address, NATGateway] = {}
    claimed: dict[str, str] = {}  # interface uid -> the (older) gateway that serves it
    for gateway in sorted(view.nat_gateways, key=lambda g: _age(g.meta)):
        owners[gateway.uid] = owner_of(Kind.NAT_GATEWAY, gateway.meta)
        problem = vpc_problem(gateway.vpc)
        if problem is None:
            nat_clash = next((ip for ip in gateway.ips if ip in nat_ips or ip in vips), None)
            if nat_clash is not None:
                other = nat_ips.get(nat_clash)
                holder = (
                    f"NATGateway {other.meta.name}"
                    if other
                    else f"NetworkInterface {vips[nat_clash].meta.name}"
                )
                problem = Problem("Conflict", f"IP {nat_clash} is already used by {holder}")
        if problem is not None:
            problems[gateway.uid] = problem
            frozen.add(gateway.uid)
            continue
        for ip in gateway.ips:
            nat_ips[ip] = gateway
        selector = gateway.interface_selector
        members = []
        contested = []
        for r in sorted(interfaces.values(), key=lambda r: r.nic.meta.name):
            nic = r.nic
            if nic.vpc != gateway.vpc or nic.virtual_ip is not None:
                continue  # an interface with a virtual IP has its own public address
            if selector is not None and not selector.matches(nic.meta.labels):
                continue
            if nic.uid in claimed:
                contested.append((nic.meta.name, claimed[nic.uid]))
                continue
            members.append(nic.meta.name)
            claimed[nic.uid] = gateway.meta.name
        keep = tuple(
            sorted(
                nic.meta.name
                for nic in view.interfaces
                if nic.uid in frozen and nic.vpc == gateway.vpc and nic.meta.name in gateway.recorded
            )
        )
        nat_gateways[gateway.uid] = NatMembership(
            gateway, assignment.vnis[gateway.vpc], tuple(members), keep, owners[gateway.uid], tuple(contested)
        )

    peers: dict[int, list[tuple[int, Peering]]] = {}
    for vpc_key, links in active_peerings(vpc for vpc in view.vpcs if vpc.key in assignment.vnis).items():
        vni = assignment.vnis[vpc_key]
        for peer_key, peering in links:
            if peer_key in assignment.vnis:
                peers.setdefault(vni, []).append((assignment.vnis[peer_key], peering))

    frozen |= set(problems)
    return Topology(
        vnis=dict(assignment.vnis),
        interfaces=interfaces,
        load_balancers=load_balancers,
        nat_gateways=nat_gateways,
        peers={vni: tuple(sorted(links, key=lambda link: link[0])) for vni, links in peers.items()},
        frozen=frozenset(frozen),
        problems=problems,
        nodes=nodes,
        owners=owners,
        vpcs=frozenset(vpc_uids) | frozen_vpcs,
    )


def _interface_clash(
    nic: NetworkInterface,
    devices: Mapping[tuple[str, str], NetworkInterface],
    addresses: Mapping[tuple[ObjectKey, str], NetworkInterface],
    vips: Mapping[ipaddress.IPv4Address, NetworkInterface],
) -> str | None:
    other = devices.get((nic.node_name, nic.device.agent_name))
    if other is not None:
        return f"device {nic.device.agent_name} on node {nic.node_name} is already used by {other.meta.name}"
    for _, prefix, _ in nic.routed_prefixes:
        other = addresses.get((nic.vpc, prefix))
        if other is not None:
            return f"{prefix} is already used by NetworkInterface {other.meta.name} in VPC {nic.vpc.name}"
    if nic.virtual_ip is not None and nic.virtual_ip in vips:
        holder = vips[nic.virtual_ip].meta.name
        return f"virtual IP {nic.virtual_ip} is already used by NetworkInterface {holder}"
    return None
