"""Request validation: dpservice's INVALID_ARGUMENT checks, in its order, with its texts.

Each function checks one request the way ``src/grpc/dp_async_grpc.cpp`` (``FillRequest``) does and
returns the domain values (a command, or the parsed arguments of a read); the first failing check
raises :class:`InvalidArgumentError` with dpservice's message, which the server sends as gRPC status
INVALID_ARGUMENT. Checks that depend on the agent's state are not here: those are service errors
raised by the tables.

dpservice's C strings: ``SNPRINTF_FAILED`` rejects an empty value and one that does not fit the
64-byte buffer (63 characters at most); PXE file names fit 32 bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.api import convert as cv
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables import limits
from kubevpc_agent.tables.errors import DpError, ErrorCode
from kubevpc_agent.tables.model import (
    FirewallRule,
    IPAddress,
    LbPort,
    PortRange,
    Protocol,
    Pxe,
)
from kubevpc_agent.tables.state import make_network
from kubevpc_agent.tables.underlay import is_valid_preferred

UnderlayResolver = Callable[[IPv6Address | None], IPv6Address]  # None: generate one

_ID_BUFFER = 64  # dpservice's id/name buffers (63 characters + NUL)
_PXE_BUFFER = limits.MAX_PXE_FILENAME_LEN + 1
_U16 = 0xFFFF
_U8 = 0xFF
_ANY = 0xFFFFFFFF  # dpservice's "match any" for firewall ports and ICMP type/code (-1 as uint32)
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class InvalidArgumentError(Exception):
    """A malformed request; the message is dpservice's text for it."""


def _fail(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message)


def _c_string(value: bytes | str, buffer: int = _ID_BUFFER) -> str | None:
    """The value if dpservice's ``snprintf`` into a ``buffer``-byte array accepts it, else None."""
    raw = value.encode() if isinstance(value, str) else value
    raw = raw.split(b"\0", 1)[0]
    if not raw or len(raw) >= buffer:
        return None
    return raw.decode("latin-1")


def _id(value: bytes, message: str) -> str:
    text = _c_string(value)
    if text is None:
        raise _fail(message)
    return text


def _interface_id(value: bytes) -> str:
    return _id(value, "Invalid interface_id")


def _address(msg: pb.IpAddress, message: str) -> IPAddress:
    addr = cv.parse_ip(cv.c_text(msg.address), msg.ipver)
    if addr is None:
        raise _fail(message)
    return addr


def _preferred(raw: bytes, host: IPv6Address) -> IPv6Address | None:
    """``preferred_underlay_route``: None (generate) for empty or ``::``; else checked against ours."""
    text = cv.c_text(raw) or "::"
    addr = cv.parse_ipv6(text)
    if addr is None or not is_valid_preferred(addr, host):
        raise _fail("Invalid preferred_underlay_route")
    return None if addr == IPv6Address(0) else addr


def _port_range(min_port: int, max_port: int) -> None:
    if min_port > _U16:
        raise _fail("Invalid min_port")
    if max_port > _U16:
        raise _fail("Invalid max_port")
    if min_port >= max_port:
        raise _fail("Invalid port range")


def _prefix(msg: pb.Prefix, field: str = "prefix") -> tuple[IPAddress, int]:
    ip = _address(msg.ip, f"Invalid {field}.ip")
    if msg.length > _U8:
        raise _fail(f"Invalid {field}.length")
    return ip, msg.length


def _ipv4_only(addr: IPAddress) -> IPv4Address:
    """Service-level check: an IPv6 address where only IPv4 is supported is BAD_IPVER (204)."""
    if not isinstance(addr, IPv4Address):
        raise DpError(ErrorCode.BAD_IPVER, f"{addr} is not IPv4")
    return addr


def _ipv6_only(addr: IPAddress) -> IPv6Address:
    if not isinstance(addr, IPv6Address):
        raise DpError(ErrorCode.BAD_IPVER, f"{addr} is not IPv6")
    return addr


# --- initialization ---------------------------------------------------------------------------


def get_version(req: pb.GetVersionRequest) -> tuple[str, str, str]:
    """The client's protocol, name and version (each non-empty, under 64 bytes)."""
    proto = _c_string(req.client_protocol)
    if proto is None:
        raise _fail("Invalid client_protocol")
    name = _c_string(req.client_name)
    if name is None:
        raise _fail("Invalid client_name")
    version = _c_string(req.client_version)
    if version is None:
        raise _fail("Invalid client_version")
    return proto, name, version


# --- interfaces -------------------------------------------------------------------------------


def create_interface(
    req: pb.CreateInterfaceRequest, host: IPv6Address, underlay: UnderlayResolver
) -> cmd.CreateInterface:
    if not set(req.interface_id.decode("latin-1")) <= _ID_CHARS:
        raise _fail("Invalid interface_id")
    ipv4 = cv.parse_ipv4(cv.c_text(req.ipv4_config.primary_address))
    if ipv4 is None:
        raise _fail("Invalid ipv4_config.primary_address")
    ipv6 = cv.parse_ipv6(cv.c_text(req.ipv6_config.primary_address))
    if ipv6 is None:
        raise _fail("Invalid ipv6_config.primary_address")
    ipv4_disabled, ipv6_disabled = ipv4 == IPv4Address(0), ipv6 == IPv6Address(0)
    if ipv4_disabled and ipv6_disabled:
        raise _fail("Invalid ipv4_config.primary_address and ipv6_config.primary_address combination")
    pxe = None
    if req.pxe_config.next_server:
        server_text = req.pxe_config.next_server.split("\0", 1)[0]
        server = cv.parse_ipv4(server_text) if ipv6_disabled else cv.parse_ipv6(server_text)
        if server is None:
            raise _fail("Invalid pxe_config.next_server")
        filename = _c_string(req.pxe_config.boot_filename, _PXE_BUFFER)
        if filename is None:
            raise _fail("Invalid pxe_config.boot_filename")
        pxe = Pxe(server, filename)
    device = _c_string(req.device_name)
    if device is None:
        raise _fail("Invalid device_name")
    interface_id = _interface_id(req.interface_id)
    hostname = ""
    if req.hostname:
        hostname_or_none = _c_string(req.hostname)
        if hostname_or_none is None:
            raise _fail("Invalid hostname")
        hostname = hostname_or_none
    preferred = _preferred(req.preferred_underlay_route, host)
    return cmd.CreateInterface(
        interface_id=interface_id,
        device=device,
        vni=req.vni,
        ipv4=None if ipv4_disabled else ipv4,
        ipv6=None if ipv6_disabled else ipv6,
        underlay=underlay(preferred),
        hostname=hostname,
        pxe=pxe,
    )


def interface_id_of(req: pb.GetInterfaceRequest | pb.DeleteInterfaceRequest | pb.GetVipRequest) -> str:
    """Requests that only name an interface (Get/Delete interface, VIP, NAT; List prefixes, rules)."""
    return _interface_id(req.interface_id)


# --- prefixes ---------------------------------------------------------------------------------


def create_prefix(
    req: pb.CreatePrefixRequest, host: IPv6Address, underlay: UnderlayResolver
) -> cmd.CreatePrefix:
    interface_id = _interface_id(req.interface_id)
    ip, length = _prefix(req.prefix)
    preferred = _preferred(req.preferred_underlay_route, host)
    return cmd.CreatePrefix(interface_id, ip, length, underlay(preferred))


def delete_prefix(req: pb.DeletePrefixRequest) -> cmd.DeletePrefix:
    interface_id = _interface_id(req.interface_id)
    ip, length = _prefix(req.prefix)
    return cmd.DeletePrefix(interface_id, ip, length)


def create_lb_prefix(
    req: pb.CreateLoadBalancerPrefixRequest, host: IPv6Address, underlay: UnderlayResolver
) -> cmd.CreateLbPrefix:
    interface_id = _interface_id(req.interface_id)
    ip, length = _prefix(req.prefix)
    if make_network(ip, length) is None:  # ours: dpservice stores e.g. an IPv4 /40 as given
        raise _fail("Invalid prefix.length")
    preferred = _preferred(req.preferred_underlay_route, host)
    return cmd.CreateLbPrefix(interface_id, ip, length, underlay(preferred))


def delete_lb_prefix(req: pb.DeleteLoadBalancerPrefixRequest) -> cmd.DeleteLbPrefix:
    interface_id = _interface_id(req.interface_id)
    ip, length = _prefix(req.prefix)
    return cmd.DeleteLbPrefix(interface_id, ip, length)


# --- routes -----------------------------------------------------------------------------------


def create_route(req: pb.CreateRouteRequest) -> cmd.CreateRoute:
    route = req.route
    if route.prefix.length > _U8:
        raise _fail("Invalid route.prefix.length")
    ip = _address(route.prefix.ip, "Invalid route.prefix.ip")
    nexthop = _address(route.nexthop_address, "Invalid route.nexthop_address")
    return cmd.CreateRoute(req.vni, ip, route.prefix.length, _ipv6_only(nexthop), route.nexthop_vni)


def delete_route(req: pb.DeleteRouteRequest) -> cmd.DeleteRoute:
    if req.route.prefix.length > _U8:
        raise _fail("Invalid route.prefix.length")
    ip = _address(req.route.prefix.ip, "Invalid route.prefix.ip")
    return cmd.DeleteRoute(req.vni, ip, req.route.prefix.length)


# --- VIP and NAT ------------------------------------------------------------------------------


def create_vip(req: pb.CreateVipRequest, host: IPv6Address, underlay: UnderlayResolver) -> cmd.CreateVip:
    interface_id = _interface_id(req.interface_id)
    vip = _address(req.vip_ip, "Invalid vip_ip")
    preferred = _preferred(req.preferred_underlay_route, host)
    return cmd.CreateVip(interface_id, vip, underlay(preferred))


def create_nat(req: pb.CreateNatRequest, host: IPv6Address, underlay: UnderlayResolver) -> cmd.CreateNat:
    interface_id = _interface_id(req.interface_id)
    nat_ip = _address(req.nat_ip, "Invalid nat_ip")
    _port_range(req.min_port, req.max_port)
    preferred = _preferred(req.preferred_underlay_route, host)
    return cmd.CreateNat(interface_id, nat_ip, req.min_port, req.max_port, underlay(preferred))


def list_nats(req: pb.ListLocalNatsRequest | pb.ListNeighborNatsRequest) -> IPv4Address:
    """The NAT IP filter (0.0.0.0: all); an IPv6 one is BAD_IPVER (204)."""
    return _ipv4_only(_address(req.nat_ip, "Invalid nat_ip"))


def create_neighbor_nat(req: pb.CreateNeighborNatRequest) -> cmd.CreateNeighborNat:
    nat_ip = _address(req.nat_ip, "Invalid nat_ip")
    _port_range(req.min_port, req.max_port)
    remote = cv.parse_ipv6(cv.c_text(req.underlay_route))
    if remote is None:
        raise _fail("Invalid underlay_route")
    return cmd.CreateNeighborNat(_ipv4_only(nat_ip), req.vni, req.min_port, req.max_port, remote)


def delete_neighbor_nat(req: pb.DeleteNeighborNatRequest) -> cmd.DeleteNeighborNat:
    nat_ip = _address(req.nat_ip, "Invalid nat_ip")
    _port_range(req.min_port, req.max_port)
    return cmd.DeleteNeighborNat(_ipv4_only(nat_ip), req.vni, req.min_port, req.max_port)


# --- load balancers ---------------------------------------------------------------------------


def loadbalancer_id(value: bytes) -> str:
    return _id(value, "Invalid loadbalancer_id")


def create_load_balancer(
    req: pb.CreateLoadBalancerRequest, host: IPv6Address, underlay: UnderlayResolver
) -> cmd.CreateLoadBalancer:
    lb_id = loadbalancer_id(req.loadbalancer_id)
    if req.vni > limits.MAX_VNI:
        raise _fail("VNI exceeds 24-bit range")
    ip = _address(req.loadbalanced_ip, "Invalid loadbalanced_ip")
    if len(req.loadbalanced_ports) > limits.MAX_LB_PORTS:
        raise _fail("Too many loadbalanced_ports")
    preferred = _preferred(req.preferred_underlay_route, host)
    ports: list[LbPort] = []
    for p in req.loadbalanced_ports:
        if p.port > _U16 or p.port == 0:  # ours: port 0 would end dpservice's port list
            raise _fail("Invalid loadbalanced_ports.port")
        proto = cv.LB_PROTOCOL_FROM_WIRE.get(p.protocol)
        if proto is None:
            raise _fail("Invalid loadbalanced_ports.protocol")
        entry = LbPort(proto, p.port)
        if entry in ports:
            raise _fail("Duplicate loadbalanced_ports entry")
        ports.append(entry)
    return cmd.CreateLoadBalancer(lb_id, req.vni, ip, tuple(ports), underlay(preferred))


def lb_target(
    req: pb.CreateLoadBalancerTargetRequest | pb.DeleteLoadBalancerTargetRequest,
) -> tuple[str, IPv6Address]:
    lb_id = loadbalancer_id(req.loadbalancer_id)
    target = _address(req.target_ip, "Invalid target_ip")
    return lb_id, _ipv6_only(target)


def list_lb_targets(req: pb.ListLoadBalancerTargetsRequest) -> str:
    """The LB id, or "" for the targets of every LB."""
    if not req.loadbalancer_id:
        return ""
    return loadbalancer_id(req.loadbalancer_id)


# --- VNI --------------------------------------------------------------------------------------


def vni_type(value: int) -> int:
    if value not in (pb.VNI_IPV4, pb.VNI_IPV6, pb.VNI_BOTH):
        raise _fail("Invalid type")
    return value


# --- firewall ---------------------------------------------------------------------------------


def _fw_prefix(msg: pb.Prefix, name: str) -> tuple[IPAddress, int]:
    if msg.ip.ipver not in (pb.IPV4, pb.IPV6):
        raise _fail(f"Invalid {name}.ip.ipver")
    ip = _address(msg.ip, f"Invalid {name}.ip")
    if ip.version == 4 and msg.length > 32:
        raise _fail(f"Invalid {name}.length")
    if ip.version == 6 and msg.length > 128:
        raise _fail(f"Invalid ip6 {name}.length")
    return ip, msg.length


def _fw_port(value: int, message: str) -> int:
    """A firewall port bound: -1 (any) or 0..65535 (dpservice compares it as uint32)."""
    if value & _ANY != _ANY and value & _ANY > _U16:
        raise _fail(message)
    return value


def _fw_ports(f: pb.TcpFilter | pb.UdpFilter, proto: str) -> tuple[PortRange, PortRange]:
    src_lower = _fw_port(f.src_port_lower, f"Invalid {proto}.src_port_lower")
    dst_lower = _fw_port(f.dst_port_lower, f"Invalid {proto}.dst_port_lower")
    src_upper = _fw_port(f.src_port_upper, f"Invalid {proto}.src_port_upper")
    dst_upper = _fw_port(f.dst_port_upper, f"Invalid {proto}.dst_port_upper")
    if src_lower != -1 and src_upper & _ANY < src_lower:
        raise _fail(f"Invalid {proto}.src_port range")
    if dst_lower != -1 and dst_upper & _ANY < dst_lower:
        raise _fail(f"Invalid {proto}.dst_port range")
    return PortRange(src_lower, src_upper), PortRange(dst_lower, dst_upper)


def create_firewall_rule(req: pb.CreateFirewallRuleRequest) -> cmd.CreateFirewallRule:
    interface_id = _interface_id(req.interface_id)
    rule = req.rule
    rule_id = _id(rule.id, "Invalid rule id")
    src_ip, src_len = _fw_prefix(rule.source_prefix, "source_prefix")
    dst_ip, dst_len = _fw_prefix(rule.destination_prefix, "destination_prefix")
    direction = cv.DIRECTION_FROM_WIRE.get(rule.direction)
    if direction is None:
        raise _fail("Invalid direction")
    action = cv.ACTION_FROM_WIRE.get(rule.action)
    if action is None:
        raise _fail("Invalid action")
    if rule.priority > _U16:
        raise _fail("Invalid priority")
    protocol: Protocol | None = None
    src_ports = dst_ports = PortRange()
    icmp_type = icmp_code = -1
    which = rule.protocol_filter.WhichOneof("filter")
    if which == "tcp":
        protocol = Protocol.TCP
        src_ports, dst_ports = _fw_ports(rule.protocol_filter.tcp, "tcp")
    elif which == "udp":
        protocol = Protocol.UDP
        src_ports, dst_ports = _fw_ports(rule.protocol_filter.udp, "udp")
    elif which == "icmp":
        protocol = Protocol.ICMP
        icmp_type, icmp_code = rule.protocol_filter.icmp.icmp_type, rule.protocol_filter.icmp.icmp_code
        if icmp_type & _ANY != _ANY and icmp_type & _ANY > _U8:
            raise _fail("Invalid icmp.icmp_type")
        if icmp_code & _ANY != _ANY and icmp_code & _ANY > _U8:
            raise _fail("Invalid icmp.icmp_code")
    source = make_network(src_ip, src_len)
    destination = make_network(dst_ip, dst_len)
    assert source is not None and destination is not None  # lengths checked above
    domain_rule = FirewallRule(
        id=rule_id,
        direction=direction,
        action=action,
        priority=rule.priority,
        source=source,
        destination=destination,
        protocol=protocol,
        src_ports=src_ports,
        dst_ports=dst_ports,
        icmp_type=icmp_type,
        icmp_code=icmp_code,
    )
    return cmd.CreateFirewallRule(interface_id, domain_rule, src_ip, dst_ip)


def firewall_rule_id(req: pb.GetFirewallRuleRequest | pb.DeleteFirewallRuleRequest) -> tuple[str, str]:
    interface_id = _interface_id(req.interface_id)
    return interface_id, _id(req.rule_id, "Invalid rule_id")


# --- packet capture ---------------------------------------------------------------------------


def capture_start(req: pb.CaptureStartRequest) -> None:
    """Checks only: capture needs hardware offload, which this agent does not have."""
    conf = req.capture_config
    if conf.udp_src_port > _U16:
        raise _fail("Invalid udp_src_port")
    if conf.udp_dst_port > _U16:
        raise _fail("Invalid udp_dst_port")
    if cv.parse_ipv6(cv.c_text(conf.sink_node_ip.address)) is None:
        raise _fail("Invalid sink_node_ip")
    if len(conf.interfaces) > limits.MAX_CAPTURE_INTERFACES:
        raise _fail("Too many interfaces to be captured")
    for iface in conf.interfaces:
        if iface.interface_type == pb.SINGLE_VF:
            if _c_string(iface.vf_name) is None:
                raise _fail("Invalid interface_id")
        elif iface.interface_type == pb.SINGLE_PF:
            if iface.pf_index > _U8:
                raise _fail("Invalid pf_index")
        else:
            raise _fail("Invalid interfaces.interface_type")
