"""Domain objects of the agent's state: what the gRPC API creates and the datapath reads.

Plain frozen dataclasses with ``ipaddress`` types: no proto types (those stay in ``api/``) and no
numpy (compiled datapath views live beside the tables that build them). Field names follow
dpservice's concepts so DPSERVICE.md can be read alongside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

GATEWAY_IPV4 = IPv4Address("169.254.0.1")  # the VM's default gateway, answered by ARP/DHCP
GATEWAY_IPV6 = IPv6Address("fe80::1")  # the VM's IPv6 gateway, answered by ND/DHCPv6
NAT64_PREFIX = IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix, translated by NAT64


class VnfType(IntEnum):
    """What an underlay address stands for (dpservice ``enum dp_vnf_type``)."""

    UNDEFINED = 0
    LB_ALIAS_PFX = 1  # a load-balancer prefix of an interface: a target of some LB
    ALIAS_PFX = 2  # an alias prefix routed to an interface
    LB = 3  # a load balancer's own address
    VIP = 4  # an interface's virtual IP (1:1 NAT)
    NAT = 5  # an interface's NAT gateway slice
    INTERFACE_IP = 6  # the interface itself


class Protocol(IntEnum):
    """IP protocol numbers the dataplane knows."""

    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58


class Direction(IntEnum):
    """Firewall rule direction, numbered as on the wire."""

    INGRESS = 0
    EGRESS = 1


class Action(IntEnum):
    """Firewall rule action (our numbering: the wire has DROP=0, ACCEPT=1; ``api/convert.py`` maps
    by name)."""

    ACCEPT = 0
    DROP = 1


@dataclass(frozen=True, slots=True)
class Pxe:
    """PXE boot parameters handed out by DHCP."""

    next_server: IPAddress
    boot_filename: str


@dataclass(frozen=True, slots=True)
class Interface:
    """A VM's network interface bound to one VF port in one VNI."""

    id: str
    device: str
    port_id: int
    vni: int
    ipv4: IPv4Address | None  # None when dpservice's request said 0.0.0.0
    ipv6: IPv6Address | None  # None when dpservice's request said ::
    underlay: IPv6Address
    hostname: str = ""
    pxe: Pxe | None = None


@dataclass(frozen=True, slots=True)
class VnfEntry:
    """An underlay address owned by this node and what traffic to it means."""

    underlay: IPv6Address
    type: VnfType
    vni: int
    port_id: int  # VF port for interface-bound types; the first PF for LB
    prefix: IPNetwork | None = None  # alias / LB prefix, or the VIP / NAT / LB address as /32


class NextHopKind(IntEnum):
    """Where a route sends packets."""

    PORT = 0  # a local VF port (interface address or alias prefix)
    UNDERLAY = 1  # encapsulate towards ``nexthop`` through a PF


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One entry of a VNI's routing table (longest prefix match)."""

    prefix: IPNetwork
    kind: NextHopKind
    port_id: int = -1  # NextHopKind.PORT
    nexthop: IPv6Address | None = None  # NextHopKind.UNDERLAY
    nexthop_vni: int = 0  # stored and listed only, as in dpservice
    external: bool = False  # created by CreateRoute (listed by ListRoutes)


@dataclass(frozen=True, slots=True)
class NatRange:
    """A port slice ``[min_port, max_port)`` of a NAT IP."""

    nat_ip: IPv4Address
    min_port: int
    max_port: int


@dataclass(frozen=True, slots=True)
class NeighborNat:
    """A slice of a NAT IP that another node serves; inbound traffic for it is relayed there."""

    nat_ip: IPv4Address
    vni: int
    min_port: int
    max_port: int
    underlay: IPv6Address


@dataclass(frozen=True, slots=True)
class LbPort:
    """One balanced (protocol, port) of a load balancer."""

    protocol: Protocol
    port: int


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    """A load balancer; ``maglev`` is the precomputed slot→target-index table."""

    id: str
    vni: int
    ip: IPAddress
    ports: tuple[LbPort, ...]
    underlay: IPv6Address
    targets: tuple[IPv6Address, ...] = ()  # sorted by address bytes
    maglev: tuple[int, ...] = ()  # len 503 (or 0 without targets): index into ``targets``


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive L4 port range; ``-1`` bounds mean "any" (dpservice's encoding)."""

    lower: int = -1
    upper: int = -1


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """A per-interface stateful firewall rule, evaluated once per flow."""

    id: str
    direction: Direction
    action: Action
    priority: int
    source: IPNetwork
    destination: IPNetwork
    protocol: Protocol | None = None  # None: any protocol
    src_ports: PortRange = field(default_factory=PortRange)
    dst_ports: PortRange = field(default_factory=PortRange)
    icmp_type: int = -1
    icmp_code: int = -1
