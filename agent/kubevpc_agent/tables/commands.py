"""One frozen dataclass per mutating operation of :class:`~kubevpc_agent.tables.state.AgentState`.

A command carries every value the control plane resolved (generated underlay addresses, the
Maglev table, the parsed addresses), so applying it is deterministic: the control plane applies it
to the authoritative state (where it may fail with a :class:`DpError` and change nothing), and
only a command that succeeded there is sent to the dataplane process, whose replica applies it and
ends in the same state (docs/architecture.md). Commands are plain picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from kubevpc_agent.tables.model import FirewallRule, IPAddress, LbPort, Pxe


@dataclass(frozen=True, slots=True)
class Initialize:
    """Drop neighbour NATs (and VNI-0 DNAT keys), reset every VNI's routes to the interfaces' own."""


@dataclass(frozen=True, slots=True)
class CreateInterface:
    interface_id: str
    device: str  # API device name of the port (``net_tapN``)
    vni: int
    ipv4: IPv4Address | None  # None: IPv4 disabled ("0.0.0.0")
    ipv6: IPv6Address | None  # None: IPv6 disabled ("::")
    underlay: IPv6Address
    hostname: str = ""
    pxe: Pxe | None = None


@dataclass(frozen=True, slots=True)
class DeleteInterface:
    interface_id: str


@dataclass(frozen=True, slots=True)
class CreatePrefix:
    """An alias prefix routed to an interface, with its own underlay."""

    interface_id: str
    ip: IPAddress  # as given (listed back unmasked, as dpservice does)
    length: int
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class DeletePrefix:
    interface_id: str
    ip: IPAddress
    length: int


@dataclass(frozen=True, slots=True)
class CreateLbPrefix:
    """A load-balancer target prefix of an interface: an underlay only, no route."""

    interface_id: str
    ip: IPAddress
    length: int
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class DeleteLbPrefix:
    interface_id: str
    ip: IPAddress
    length: int


@dataclass(frozen=True, slots=True)
class CreateVip:
    interface_id: str
    vip: IPAddress  # an IPv6 one is refused with BAD_IPVER (after the interface check, as dpservice)
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class DeleteVip:
    interface_id: str


@dataclass(frozen=True, slots=True)
class CreateNat:
    interface_id: str
    nat_ip: IPAddress  # an IPv6 one is refused with BAD_IPVER (after the interface check)
    min_port: int  # the slice is [min_port, max_port)
    max_port: int
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class DeleteNat:
    interface_id: str


@dataclass(frozen=True, slots=True)
class CreateNeighborNat:
    nat_ip: IPv4Address
    vni: int
    min_port: int
    max_port: int
    underlay: IPv6Address  # the remote node's NAT underlay


@dataclass(frozen=True, slots=True)
class DeleteNeighborNat:
    nat_ip: IPv4Address
    vni: int
    min_port: int
    max_port: int


@dataclass(frozen=True, slots=True)
class CreateLoadBalancer:
    lb_id: str
    vni: int
    ip: IPAddress
    ports: tuple[LbPort, ...]
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class DeleteLoadBalancer:
    lb_id: str


@dataclass(frozen=True, slots=True)
class CreateLbTarget:
    lb_id: str
    target: IPv6Address
    maglev: tuple[int, ...]  # the table for the target set after the addition


@dataclass(frozen=True, slots=True)
class DeleteLbTarget:
    lb_id: str
    target: IPv6Address
    maglev: tuple[int, ...]  # the table for the target set after the removal


@dataclass(frozen=True, slots=True)
class CreateRoute:
    vni: int
    ip: IPAddress  # prefix as given; the table masks it (1.2.3.255/24 == 1.2.3.0/24)
    length: int
    nexthop: IPv6Address
    nexthop_vni: int = 0


@dataclass(frozen=True, slots=True)
class DeleteRoute:
    vni: int
    ip: IPAddress
    length: int


@dataclass(frozen=True, slots=True)
class ResetVni:
    vni: int


@dataclass(frozen=True, slots=True)
class CreateFirewallRule:
    interface_id: str
    rule: FirewallRule  # prefixes masked, as the datapath matches them
    source_ip: IPAddress  # as given, echoed by Get/List (dpservice keeps the unmasked address)
    destination_ip: IPAddress


@dataclass(frozen=True, slots=True)
class DeleteFirewallRule:
    interface_id: str
    rule_id: str


Command = (
    Initialize
    | CreateInterface
    | DeleteInterface
    | CreatePrefix
    | DeletePrefix
    | CreateLbPrefix
    | DeleteLbPrefix
    | CreateVip
    | DeleteVip
    | CreateNat
    | DeleteNat
    | CreateNeighborNat
    | DeleteNeighborNat
    | CreateLoadBalancer
    | DeleteLoadBalancer
    | CreateLbTarget
    | DeleteLbTarget
    | CreateRoute
    | DeleteRoute
    | ResetVni
    | CreateFirewallRule
    | DeleteFirewallRule
)
