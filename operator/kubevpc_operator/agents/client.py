"""The operator's view of one node's agent: ``AgentClient``, and its gRPC implementation.

``AgentClient`` speaks in planning's vocabulary (``Op`` in, ``InterfaceState``/``RouteState``/...
out), so the syncer and the tests never see protobuf. ``GrpcAgentClient`` maps that onto the
dpservice wire contract (``dpdkironcore.v1``): addresses are ASCII text in ``bytes`` fields, every
reply carries an in-band ``status``, and "not initialized" is gRPC ABORTED. It never retries;
the syncer decides what to do with each error class (``agents/errors.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pb_grpc
from kubevpc_operator.agents.errors import (
    AgentInvalidArgumentError,
    AgentNotInitializedError,
    AgentRejectedError,
    AgentUnavailableError,
)
from kubevpc_operator.planning import ops
from kubevpc_operator.planning.state import FirewallRuleState, Nat, NeighborNatState, RouteState

CLIENT_NAME = "kubevpc-operator"


@dataclass(frozen=True)
class ListedInterface:
    """One entry of ListInterfaces: what the agent reports about an interface itself."""

    id: str
    vni: int
    device: str
    ipv4: str  # "" for none
    ipv6: str
    hostname: str
    underlay: str


@dataclass(frozen=True)
class ListedLoadBalancer:
    id: str
    vni: int
    ip: str
    ports: tuple[tuple[int, int], ...]
    underlay: str


class AgentClient(Protocol):
    """Everything the operator asks one agent; implementations raise ``agents.errors`` classes."""

    node: str

    async def check_initialized(self) -> str:
        """The agent's instance UUID; raises AgentNotInitializedError before Initialize."""
        ...

    async def initialize(self) -> str: ...

    async def list_interfaces(self) -> list[ListedInterface]: ...

    async def list_prefixes(self, interface_id: str) -> dict[str, str]:
        """Alias prefixes of an interface: prefix -> underlay."""
        ...

    async def list_lb_prefixes(self, interface_id: str) -> dict[str, str]: ...

    async def get_vip(self, interface_id: str) -> tuple[str, str] | None:
        """(vip, underlay), None when the interface has no VIP."""
        ...

    async def get_nat(self, interface_id: str) -> tuple[Nat, str] | None:
        """(NAT, underlay), None when the interface has no NAT."""
        ...

    async def list_firewall_rules(self, interface_id: str) -> list[FirewallRuleState]: ...

    async def list_load_balancers(self) -> list[ListedLoadBalancer]: ...

    async def list_lb_targets(self, lb_id: str) -> list[str]: ...

    async def list_routes(self, vni: int) -> list[RouteState]:
        """The routes CreateRoute added in ``vni`` ([] for a VNI not in use); IPv4 only on dpservice."""
        ...

    async def list_neighbor_nats(self) -> list[NeighborNatState]: ...

    async def execute(self, op: ops.Op) -> str:
        """Run one operation; returns the underlay address it created, or ""."""
        ...

    async def close(self) -> None: ...


# ---- wire conversions -------------------------------------------------------------------------


def ip_to_proto(text: str) -> pb.IpAddress:
    version = ipaddress.ip_address(text).version
    return pb.IpAddress(ipver=pb.IPV6 if version == 6 else pb.IPV4, address=text.encode())


def prefix_to_proto(text: str) -> pb.Prefix:
    network = ipaddress.ip_network(text)
    return pb.Prefix(ip=ip_to_proto(str(network.network_address)), length=network.prefixlen)


def text_of(raw: bytes) -> str:
    """Canonical text of an address the agent sent; "" for none ("0.0.0.0", "::", empty)."""
    text = raw.decode(errors="replace").strip("\x00")
    if not text:
        return ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    return "" if address.is_unspecified else str(address)


def prefix_of(prefix: pb.Prefix) -> str:
    address = text_of(prefix.ip.address) or ("::" if prefix.ip.ipver == pb.IPV6 else "0.0.0.0")
    return str(ipaddress.ip_network(f"{address}/{prefix.length}", strict=False))


_PROTOCOLS = {"tcp": pb.TCP, "udp": pb.UDP, "icmp": pb.ICMP}


def rule_to_proto(rule: FirewallRuleState) -> pb.FirewallRule:
    message = pb.FirewallRule(
        id=rule.id.encode(),
        direction=pb.INGRESS if rule.direction == "ingress" else pb.EGRESS,
        action=pb.DROP if rule.action == "drop" else pb.ACCEPT,
        priority=rule.priority,
        source_prefix=prefix_to_proto(rule.source),
        destination_prefix=prefix_to_proto(rule.destination),
    )
    if rule.protocol in ("tcp", "udp"):
        ports = {
            "src_port_lower": rule.source_ports[0],
            "src_port_upper": rule.source_ports[1],
            "dst_port_lower": rule.destination_ports[0],
            "dst_port_upper": rule.destination_ports[1],
        }
        if rule.protocol == "tcp":
            message.protocol_filter.tcp.CopyFrom(pb.TcpFilter(**ports))
        else:
            message.protocol_filter.udp.CopyFrom(pb.UdpFilter(**ports))
    elif rule.protocol == "icmp":
        message.protocol_filter.icmp.CopyFrom(pb.IcmpFilter(icmp_type=rule.icmp[0], icmp_code=rule.icmp[1]))
    return message


def rule_from_proto(rule: pb.FirewallRule) -> FirewallRuleState:
    which = rule.protocol_filter.WhichOneof("filter")
    protocol, src, dst, icmp = "any", (-1, -1), (-1, -1), (-1, -1)
    if which in ("tcp", "udp"):
        ports = getattr(rule.protocol_filter, which)
        protocol = which
        src = (ports.src_port_lower, ports.src_port_upper)
        dst = (ports.dst_port_lower, ports.dst_port_upper)
    elif which == "icmp":
        protocol = "icmp"
        icmp = (rule.protocol_filter.icmp.icmp_type, rule.protocol_filter.icmp.icmp_code)
    return FirewallRuleState(
        id=rule.id.decode(),
        direction="ingress" if rule.direction == pb.INGRESS else "egress",
        priority=rule.priority,
        source=prefix_of(rule.source_prefix),
        destination=prefix_of(rule.destination_prefix),
        protocol=protocol,
        source_ports=src,
        destination_ports=dst,
        icmp=icmp,
        action="drop" if rule.action == pb.DROP else "accept",
    )


def request_for(op: ops.Op) -> tuple[str, Any]:
    """(RPC method name, request message) for one operation."""
    entry = _REQUESTS.get(type(op))
    if entry is None:
        raise TypeError(f"no RPC for {type(op).__name__}")
    method, fields = entry
    return method, getattr(pb, f"{method}Request")(**fields(op))


Fields = dict[str, Any]


def _interface(op: Any) -> Fields:
    return {"interface_id": op.interface_id.encode()}


def _interface_prefix(op: Any) -> Fields:
    return {**_interface(op), "prefix": prefix_to_proto(op.prefix)}


def _create_interface(op: Any) -> Fields:
    fields = {
        **_interface(op),
        "vni": op.vni,
        "device_name": op.device,
        "ipv4_config": pb.IpConfig(primary_address=(op.ipv4 or "0.0.0.0").encode()),
        "ipv6_config": pb.IpConfig(primary_address=(op.ipv6 or "::").encode()),
        "hostname": op.hostname,
    }
    if op.pxe is not None:
        fields["pxe_config"] = pb.PxeConfig(next_server=op.pxe.server, boot_filename=op.pxe.boot_file)
    return fields


def _load_balancer(op: Any) -> Fields:
    return {"loadbalancer_id": op.lb_id.encode()}


def _lb_target(op: Any) -> Fields:
    return {**_load_balancer(op), "target_ip": ip_to_proto(op.target)}


def _route(op: Any) -> Fields:
    route = pb.Route(
        prefix=prefix_to_proto(op.prefix),
        nexthop_vni=getattr(op, "nexthop_vni", 0),
        nexthop_address=ip_to_proto(op.nexthop) if hasattr(op, "nexthop") else None,
    )
    return {"vni": op.vni, "route": route}


def _neighbor_nat(op: Any) -> Fields:
    return {"nat_ip": ip_to_proto(op.ip), "vni": op.vni, "min_port": op.min_port, "max_port": op.max_port}


# Operation -> (RPC method, its request's fields); the request message is ``pb.<method>Request``.
_REQUESTS: dict[type[ops.Op], tuple[str, Callable[[Any], Fields]]] = {
    ops.CreateInterface: ("CreateInterface", _create_interface),
    ops.DeleteInterface: ("DeleteInterface", _interface),
    ops.CreatePrefix: ("CreatePrefix", _interface_prefix),
    ops.DeletePrefix: ("DeletePrefix", _interface_prefix),
    ops.CreateLoadBalancerPrefix: ("CreateLoadBalancerPrefix", _interface_prefix),
    ops.DeleteLoadBalancerPrefix: ("DeleteLoadBalancerPrefix", _interface_prefix),
    ops.CreateVip: ("CreateVip", lambda op: {**_interface(op), "vip_ip": ip_to_proto(op.ip)}),
    ops.DeleteVip: ("DeleteVip", _interface),
    ops.CreateNat: (
        "CreateNat",
        lambda op: {
            **_interface(op),
            "nat_ip": ip_to_proto(op.ip),
            "min_port": op.min_port,
            "max_port": op.max_port,
        },
    ),
    ops.DeleteNat: ("DeleteNat", _interface),
    ops.CreateFirewallRule: (
        "CreateFirewallRule",
        lambda op: {**_interface(op), "rule": rule_to_proto(op.rule)},
    ),
    ops.DeleteFirewallRule: (
        "DeleteFirewallRule",
        lambda op: {**_interface(op), "rule_id": op.rule_id.encode()},
    ),
    ops.CreateLoadBalancer: (
        "CreateLoadBalancer",
        lambda op: {
            **_load_balancer(op),
            "loadbalanced_ip": ip_to_proto(op.ip),
            "vni": op.vni,
            "loadbalanced_ports": [pb.LbPort(port=port, protocol=proto) for proto, port in op.ports],
        },
    ),
    ops.DeleteLoadBalancer: ("DeleteLoadBalancer", _load_balancer),
    ops.CreateLoadBalancerTarget: ("CreateLoadBalancerTarget", _lb_target),
    ops.DeleteLoadBalancerTarget: ("DeleteLoadBalancerTarget", _lb_target),
    ops.CreateRoute: ("CreateRoute", _route),
    ops.DeleteRoute: ("DeleteRoute", _route),
    ops.CreateNeighborNat: (
        "CreateNeighborNat",
        lambda op: {**_neighbor_nat(op), "underlay_route": op.underlay.encode()},
    ),
    ops.DeleteNeighborNat: ("DeleteNeighborNat", _neighbor_nat),
}


class GrpcAgentClient:
    """``AgentClient`` over a grpc.aio channel; one client (and channel) per node, reused."""

    def __init__(self, node: str, channel: grpc.aio.Channel, timeout: float = 10.0) -> None:
        self.node = node
        self._channel = channel
        self._stub = pb_grpc.DPDKironcoreStub(channel)
        self._timeout = timeout

    async def close(self) -> None:
        await self._channel.close(None)

    async def _call(
        self, method: str, request: Any, what: str = "", *, accept: frozenset[int] = frozenset()
    ) -> Any:
        try:
            response = await getattr(self._stub, method)(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.ABORTED and "not initialized" in details:
                raise AgentNotInitializedError(self.node) from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise AgentInvalidArgumentError(self.node, f"{method}: {details}") from None
            raise AgentUnavailableError(self.node, f"{method}: {code.name} {details}".strip()) from None
        status = response.status
        if status.code != 0 and status.code not in accept:
            raise AgentRejectedError(self.node, status.code, status.message, what or method)
        return response

    async def check_initialized(self) -> str:
        response = await self._call("CheckInitialized", pb.CheckInitializedRequest())
        return str(response.uuid)

    async def initialize(self) -> str:
        response = await self._call("Initialize", pb.InitializeRequest())
        return str(response.uuid)

    async def list_interfaces(self) -> list[ListedInterface]:
        response = await self._call("ListInterfaces", pb.ListInterfacesRequest())
        return [
            ListedInterface(
                id=item.id.decode(),
                vni=item.vni,
                device=item.pci_name,
                ipv4=text_of(item.primary_ipv4),
                ipv6=text_of(item.primary_ipv6),
                hostname=item.hostname,
                underlay=text_of(item.underlay_route),
            )
            for item in response.interfaces
        ]

    async def list_prefixes(self, interface_id: str) -> dict[str, str]:
        response = await self._call(
            "ListPrefixes", pb.ListPrefixesRequest(interface_id=interface_id.encode())
        )
        return {prefix_of(p): text_of(p.underlay_route) for p in response.prefixes}

    async def list_lb_prefixes(self, interface_id: str) -> dict[str, str]:
        request = pb.ListLoadBalancerPrefixesRequest(interface_id=interface_id.encode())
        response = await self._call("ListLoadBalancerPrefixes", request)
        return {prefix_of(p): text_of(p.underlay_route) for p in response.prefixes}

    async def get_vip(self, interface_id: str) -> tuple[str, str] | None:
        request = pb.GetVipRequest(interface_id=interface_id.encode())
        response = await self._call("GetVip", request, accept=frozenset({341}))
        if response.status.code:
            return None
        return text_of(response.vip_ip.address), text_of(response.underlay_route)

    async def get_nat(self, interface_id: str) -> tuple[Nat, str] | None:
        request = pb.GetNatRequest(interface_id=interface_id.encode())
        response = await self._call("GetNat", request, accept=frozenset({341}))
        if response.status.code:
            return None
        nat = Nat(text_of(response.nat_ip.address), response.min_port, response.max_port)
        return nat, text_of(response.underlay_route)

    async def list_firewall_rules(self, interface_id: str) -> list[FirewallRuleState]:
        request = pb.ListFirewallRulesRequest(interface_id=interface_id.encode())
        response = await self._call("ListFirewallRules", request)
        return [rule_from_proto(rule) for rule in response.rules]

    async def list_load_balancers(self) -> list[ListedLoadBalancer]:
        response = await self._call("ListLoadBalancers", pb.ListLoadBalancersRequest())
        return [
            ListedLoadBalancer(
                id=lb.id.decode(),
                vni=lb.vni,
                ip=text_of(lb.ip.address),
                ports=tuple(sorted((int(p.protocol), p.port) for p in lb.ports)),
                underlay=text_of(lb.underlay_route),
            )
            for lb in response.loadbalancers
        ]

    async def list_lb_targets(self, lb_id: str) -> list[str]:
        request = pb.ListLoadBalancerTargetsRequest(loadbalancer_id=lb_id.encode())
        response = await self._call("ListLoadBalancerTargets", request)
        return [text_of(target.address) for target in response.target_ips]

    async def list_routes(self, vni: int) -> list[RouteState]:
        # Per VNI: a route message does not say which VNI's table it is in.
        response = await self._call("ListRoutes", pb.ListRoutesRequest(vni=vni), accept=frozenset({206}))
        return [
            RouteState(
                vni=vni,
                prefix=prefix_of(route.prefix),
                nexthop_vni=route.nexthop_vni,
                nexthop=text_of(route.nexthop_address.address),
            )
            for route in response.routes
        ]

    async def list_neighbor_nats(self) -> list[NeighborNatState]:
        request = pb.ListNeighborNatsRequest(nat_ip=ip_to_proto("0.0.0.0"))
        response = await self._call("ListNeighborNats", request)
        return [
            NeighborNatState(
                ip=text_of(entry.actual_nat_ip.address),
                vni=entry.vni,
                min_port=entry.min_port,
                max_port=entry.max_port,
                underlay=text_of(entry.underlay_route),
            )
            for entry in response.nat_entries
        ]

    async def execute(self, op: ops.Op) -> str:
        method, request = request_for(op)
        response = await self._call(method, request, method, accept=op.done_codes)
        underlay = getattr(response, "underlay_route", b"")
        return text_of(underlay) if response.status.code == 0 else ""
