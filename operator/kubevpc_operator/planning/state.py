"""What one node's agent holds, in plain data: the vocabulary of desired and observed state.

Addresses are canonical text (``str(ipaddress.ip_address(...))``), prefixes ``"10.0.0.0/24"``, as on
the wire. ``owner`` says which custom resource an entry belongs to (for events and status); it
never takes part in comparisons. Underlay addresses the agent assigns are not part of the state
either: they are *exports* (``Export``), reported next to the observed state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    VPC = "VPC"
    NETWORK_INTERFACE = "NetworkInterface"
    LOAD_BALANCER = "LoadBalancer"
    NAT_GATEWAY = "NATGateway"


@dataclass(frozen=True)
class Owner:
    """The custom resource an agent entry belongs to."""

    kind: Kind
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.kind.value} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Nat:
    ip: str
    min_port: int  # [min_port, max_port)
    max_port: int


@dataclass(frozen=True)
class FirewallRuleState:
    id: str
    direction: str  # "ingress" | "egress"
    priority: int
    source: str  # prefix text
    destination: str
    protocol: str = "any"  # "any" | "tcp" | "udp" | "icmp"
    source_ports: tuple[int, int] = (-1, -1)
    destination_ports: tuple[int, int] = (-1, -1)
    icmp: tuple[int, int] = (-1, -1)  # (type, code)
    action: str = "accept"  # "accept" | "drop"


@dataclass(frozen=True)
class Pxe:
    server: str
    boot_file: str


@dataclass(frozen=True)
class InterfaceState:
    id: str
    vni: int
    device: str
    ipv4: str  # "" when the interface has none ("0.0.0.0" on the wire)
    ipv6: str  # "" when the interface has none ("::" on the wire)
    hostname: str = ""
    pxe: Pxe | None = None
    vip: str | None = None
    nat: Nat | None = None
    prefixes: frozenset[str] = frozenset()
    lb_prefixes: frozenset[str] = frozenset()
    firewall_rules: tuple[FirewallRuleState, ...] = ()
    pxe_known: bool = field(default=True, compare=False)  # False: observed, and the agent cannot tell
    owner: Owner | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LoadBalancerState:
    id: str
    vni: int
    ip: str
    ports: tuple[tuple[int, int], ...]  # sorted (protocol number, port)
    targets: frozenset[str] = frozenset()  # underlay IPv6 addresses
    owner: Owner | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RouteState:
    vni: int
    prefix: str
    nexthop_vni: int
    nexthop: str  # underlay IPv6
    owner: Owner | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, str]:
        return (self.vni, self.prefix)


@dataclass(frozen=True)
class NeighborNatState:
    ip: str
    vni: int
    min_port: int
    max_port: int
    underlay: str
    owner: Owner | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, int, int, int]:
        return (self.ip, self.vni, self.min_port, self.max_port)


class ExportKind(Enum):
    """Agent objects that get their own underlay address."""

    INTERFACE = "interface"
    PREFIX = "prefix"
    LB_PREFIX = "lb_prefix"
    VIP = "vip"
    NAT = "nat"
    LOAD_BALANCER = "load_balancer"


@dataclass(frozen=True)
class Export:
    """One underlay address's owner: ``uid`` is the interface id or load balancer id."""

    kind: ExportKind
    uid: str
    detail: str = ""  # the prefix, for PREFIX and LB_PREFIX

    def __lt__(self, other: object) -> bool:  # deterministic ordering for reports
        if not isinstance(other, Export):
            return NotImplemented
        return (self.kind.value, self.uid, self.detail) < (other.kind.value, other.uid, other.detail)


@dataclass(frozen=True)
class NodeState:
    """Everything one agent holds (or should hold)."""

    interfaces: Mapping[str, InterfaceState] = field(default_factory=dict)
    load_balancers: Mapping[str, LoadBalancerState] = field(default_factory=dict)
    routes: Mapping[tuple[int, str], RouteState] = field(default_factory=dict)
    neighbor_nats: Mapping[tuple[str, int, int, int], NeighborNatState] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedNode:
    """What an agent reported: its state, plus the underlay address of each exported object."""

    state: NodeState = field(default_factory=NodeState)
    exports: Mapping[Export, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Protected:
    """Observed entries planning must leave alone: they belong to objects with invalid specs."""

    interface_ids: frozenset[str] = frozenset()
    load_balancer_ids: frozenset[str] = frozenset()
    underlays: frozenset[str] = frozenset()  # route next hops, neighbor NAT and LB target addresses
