"""Proto <-> domain conversion at the gRPC edge.

dpservice carries every IP address as its ASCII text in a ``bytes`` field, parsed with
``inet_pton`` and printed with ``inet_ntop`` (DPSERVICE.md §1.1). We call the same libc functions
(``socket.inet_pton``/``inet_ntop``), so what parses and how it prints (``::ffff:1.2.3.4``,
``fc00:1::d000:2a:0:5``) match dpservice byte for byte. IDs are plain ASCII in ``bytes``.

Requests are turned into domain values by ``validate.py`` (which owns dpservice's
INVALID_ARGUMENT texts); this module holds the primitives and the response builders.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.tables.errors import DpError, ErrorCode
from kubevpc_agent.tables.model import (
    Action,
    Direction,
    FirewallRule,
    Interface,
    IPAddress,
    LbPort,
    LoadBalancer,
    NatRange,
    NeighborNat,
    Protocol,
    RouteEntry,
)

IPV4 = pb.IPV4
IPV6 = pb.IPV6

OK = pb.Status(code=0, message=ErrorCode.OK.status_message)  # shared; never mutated


def status_of(error: DpError) -> pb.Status:
    """The in-band status for a service error: the code and its bare name (e.g. 205 "NO_VM")."""
    return pb.Status(code=int(error.code), message=error.code.status_message)


# --- addresses and ids ------------------------------------------------------------------------


def c_text(raw: bytes) -> str:
    """A ``bytes`` field as dpservice's C code sees it: up to the first NUL, byte for byte."""
    return raw.split(b"\0", 1)[0].decode("latin-1")


def parse_ipv4(text: str) -> IPv4Address | None:
    """``inet_pton(AF_INET)``; None if it does not parse."""
    try:
        return IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError, UnicodeError):
        return None


def parse_ipv6(text: str) -> IPv6Address | None:
    """``inet_pton(AF_INET6)``; None if it does not parse."""
    try:
        return IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError, UnicodeError):
        return None


def parse_ip(text: str, ipver: int) -> IPAddress | None:
    """An address of the family ``ipver`` selects (IPV4/IPV6); None if it does not parse."""
    if ipver == IPV4:
        return parse_ipv4(text)
    if ipver == IPV6:
        return parse_ipv6(text)
    return None


def address_text(addr: IPAddress) -> str:
    """``inet_ntop`` of an address (``::ffff:1.2.3.4`` keeps its dotted tail, as in glibc)."""
    if addr.version == 4:
        return str(addr)
    return socket.inet_ntop(socket.AF_INET6, addr.packed)


def address_bytes(addr: IPAddress) -> bytes:
    return address_text(addr).encode()


def ip_address_msg(addr: IPAddress) -> pb.IpAddress:
    return pb.IpAddress(ipver=IPV4 if addr.version == 4 else IPV6, address=address_bytes(addr))


# --- enums ------------------------------------------------------------------------------------

DIRECTION_TO_WIRE = {Direction.INGRESS: pb.INGRESS, Direction.EGRESS: pb.EGRESS}
DIRECTION_FROM_WIRE = {v: k for k, v in DIRECTION_TO_WIRE.items()}
ACTION_TO_WIRE = {Action.ACCEPT: pb.ACCEPT, Action.DROP: pb.DROP}  # wire: DROP = 0, ACCEPT = 1
ACTION_FROM_WIRE = {v: k for k, v in ACTION_TO_WIRE.items()}
LB_PROTOCOL_FROM_WIRE = {pb.TCP: Protocol.TCP, pb.UDP: Protocol.UDP}


# --- responses --------------------------------------------------------------------------------


def interface_msg(iface: Interface) -> pb.Interface:
    """GetInterface/ListInterfaces entry; a disabled family reads 0.0.0.0 / ::, metering 0."""
    return pb.Interface(
        id=iface.id.encode("latin-1"),
        vni=iface.vni,
        primary_ipv4=address_bytes(iface.ipv4 or IPv4Address(0)),
        primary_ipv6=address_bytes(iface.ipv6 or IPv6Address(0)),
        underlay_route=address_bytes(iface.underlay),
        pci_name=iface.device,
        meteringParams=pb.MeteringParams(total_rate=0, public_rate=0),
        hostname=iface.hostname,
    )


def prefix_msg(ip: IPAddress, length: int, underlay: IPv6Address | None = None) -> pb.Prefix:
    msg = pb.Prefix(ip=ip_address_msg(ip), length=length)
    if underlay is not None:
        msg.underlay_route = address_bytes(underlay)
    return msg


def route_msg(route: RouteEntry) -> pb.Route:
    """ListRoutes entry: prefix, next-hop VNI and address (no weight, no underlay)."""
    msg = pb.Route(
        prefix=prefix_msg(route.prefix.network_address, route.prefix.prefixlen),
        nexthop_vni=route.nexthop_vni,
    )
    if route.nexthop is not None:
        msg.nexthop_address.CopyFrom(ip_address_msg(route.nexthop))
    return msg


def lb_ports_msgs(ports: Iterable[LbPort]) -> list[pb.LbPort]:
    return [pb.LbPort(port=p.port, protocol=p.protocol.name) for p in ports]


def loadbalancer_msg(lb: LoadBalancer) -> pb.Loadbalancer:
    return pb.Loadbalancer(
        id=lb.id.encode("latin-1"),
        vni=lb.vni,
        ip=ip_address_msg(lb.ip),
        ports=lb_ports_msgs(lb.ports),
        underlay_route=address_bytes(lb.underlay),
    )


def local_nat_msg(vm_ip: IPv4Address, vni: int, nat: NatRange) -> pb.NatEntry:
    """ListLocalNats entry: ``nat_ip`` is the VM's own ("natted") address, as in dpservice."""
    return pb.NatEntry(
        nat_ip=ip_address_msg(vm_ip),
        min_port=nat.min_port,
        max_port=nat.max_port,
        vni=vni,
        actual_nat_ip=ip_address_msg(nat.nat_ip),
    )


def neighbor_nat_msg(n: NeighborNat) -> pb.NatEntry:
    """ListNeighborNats entry (no ``nat_ip``, as in dpservice)."""
    return pb.NatEntry(
        min_port=n.min_port,
        max_port=n.max_port,
        vni=n.vni,
        underlay_route=address_bytes(n.underlay),
        actual_nat_ip=ip_address_msg(n.nat_ip),
    )


def firewall_rule_msg(rule: FirewallRule, source_ip: IPAddress, destination_ip: IPAddress) -> pb.FirewallRule:
    """Get/ListFirewallRules entry: prefixes echo the addresses as given, with their real length.

    (dpservice reports at most /32 for IPv6 prefixes, counting only the first 32 mask bits.)
    """
    msg = pb.FirewallRule(
        id=rule.id.encode("latin-1"),
        direction=DIRECTION_TO_WIRE[rule.direction],
        action=ACTION_TO_WIRE[rule.action],
        priority=rule.priority,
        source_prefix=prefix_msg(source_ip, rule.source.prefixlen),
        destination_prefix=prefix_msg(destination_ip, rule.destination.prefixlen),
    )
    pf = msg.protocol_filter
    if rule.protocol is Protocol.TCP:
        pf.tcp.SetInParent()
        ports: pb.TcpFilter | pb.UdpFilter = pf.tcp
    elif rule.protocol is Protocol.UDP:
        pf.udp.SetInParent()
        ports = pf.udp
    elif rule.protocol is Protocol.ICMP:
        pf.icmp.icmp_type = rule.icmp_type
        pf.icmp.icmp_code = rule.icmp_code
        pf.icmp.SetInParent()
        return msg
    else:
        pf.SetInParent()  # any protocol: an empty ProtocolFilter
        return msg
    ports.src_port_lower = rule.src_ports.lower
    ports.src_port_upper = rule.src_ports.upper
    ports.dst_port_lower = rule.dst_ports.lower
    ports.dst_port_upper = rule.dst_ports.upper
    return msg
