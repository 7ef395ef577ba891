"""The DPDKironcore RPCs: validate, build a command, apply it, answer (thin; helpers elsewhere).

Every RPC here takes the request message and returns the response message. Three outcomes, as
in dpservice (DPSERVICE.md §1.2):

* :class:`RpcAbortError` (raised) -> a gRPC error status: ABORTED "not initialized" before Initialize,
  INVALID_ARGUMENT with dpservice's text for a malformed request (``validate.py``);
* :class:`DpError` (raised by validation or the tables) -> gRPC OK with the in-band
  ``Status{code, NAME}`` and every other field left default (mapped once, in :meth:`Servicer.call`);
* success -> ``Status{0, "Success"}`` and the data.

A mutating RPC applies its command to the authoritative :class:`AgentState`; only if that
succeeded is the same command sent to the dataplane (``replication.DataplaneLink``).
"""

from __future__ import annotations

import functools
import logging
import re
import uuid
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.api import convert as cv
from kubevpc_agent.api import validate as va
from kubevpc_agent.replication import DataplaneLink
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.errors import DpError, ErrorCode
from kubevpc_agent.tables.limits import MAX_LB_TARGETS
from kubevpc_agent.tables.maglev import build_maglev, sort_targets
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.underlay import UnderlayAllocator
from kubevpc_agent.version import SERVICE_VERSION

log = logging.getLogger(__name__)

Message = Any  # a generated protobuf message (the stubs are untyped for mypy)


@functools.cache
def handler_name(rpc: str) -> str:
    """The Servicer method implementing an RPC: "CreateLoadBalancer" -> "create_load_balancer"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower()


class RpcAbortError(Exception):
    """End the call with a gRPC error status (not the in-band one)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Servicer:
    """Implementation of every DPDKironcore RPC over one :class:`AgentState`."""

    def __init__(
        self, state: AgentState, link: DataplaneLink, allocator: UnderlayAllocator | None = None
    ) -> None:
        self.state = state
        self.link = link
        self.host = state.config.underlay_ipv6
        self.allocator = allocator or UnderlayAllocator(self.host)
        self.uuid = str(uuid.uuid4()).upper()  # per process; a change tells clients "replay everything"

    # --- plumbing -------------------------------------------------------------------------------

    def call(self, method: str, request: Message, response_type: Callable[..., Message]) -> Message:
        """Run RPC ``method`` (e.g. "CreateRoute"): init gate, then its handler method (``create_route``).

        A DpError becomes the in-band status of an otherwise empty ``response_type``.
        """
        if method != "Initialize" and not self.state.initialized:
            raise RpcAbortError(grpc.StatusCode.ABORTED, "not initialized")
        handler: Callable[[Message], Message] = getattr(self, handler_name(method))
        try:
            return handler(request)
        except va.InvalidArgumentError as exc:
            raise RpcAbortError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        except DpError as exc:
            log.info("%s failed: %s", method, exc)
            return response_type(status=cv.status_of(exc))

    def _underlay(self, preferred: IPv6Address | None) -> IPv6Address:
        return preferred if preferred is not None else self.allocator.peek()

    def _apply(self, command: cmd.Command) -> None:
        """Apply to the authoritative state (may raise DpError), then replicate."""
        self.state.apply(command)
        underlay = getattr(command, "underlay", None)
        if underlay is not None and underlay == self.allocator.peek():
            self.allocator.commit()
        try:
            self.link.send(command)
        except Exception:
            # the dataplane is gone: the agent stops (agent.serve watches it) and restarts with
            # a new UUID, so clients replay everything; this call must not report success
            log.exception("cannot forward %s to the dataplane", type(command).__name__)
            raise RpcAbortError(grpc.StatusCode.UNAVAILABLE, "dataplane unavailable") from None

    # --- initialization ---------------------------------------------------------------------------

    def initialize(self, request: Message) -> Message:
        self._apply(cmd.Initialize())
        return pb.InitializeResponse(status=cv.OK, uuid=self.uuid)

    def check_initialized(self, request: Message) -> Message:
        return pb.CheckInitializedResponse(status=cv.OK, uuid=self.uuid)

    def get_version(self, request: Message) -> Message:
        proto, name, version = va.get_version(request)
        log.info("client %s %s (protocol %s)", name, version, proto)
        return pb.GetVersionResponse(
            status=cv.OK, service_protocol=SERVICE_VERSION, service_version=SERVICE_VERSION
        )

    # --- interfaces -----------------------------------------------------------------------------

    def create_interface(self, request: Message) -> Message:
        command = va.create_interface(request, self.host, self._underlay)
        self._apply(command)
        ifname = self.state.ports[self.state.interfaces[command.interface_id].port_id].ifname
        return pb.CreateInterfaceResponse(
            status=cv.OK,
            underlay_route=cv.address_bytes(command.underlay),
            vf=pb.VirtualFunction(name=ifname),
        )

    def delete_interface(self, request: Message) -> Message:
        self._apply(cmd.DeleteInterface(va.interface_id_of(request)))
        return pb.DeleteInterfaceResponse(status=cv.OK)

    def get_interface(self, request: Message) -> Message:
        iface = self.state.interface(va.interface_id_of(request), missing=ErrorCode.NOT_FOUND)
        return pb.GetInterfaceResponse(status=cv.OK, interface=cv.interface_msg(iface))

    def list_interfaces(self, request: Message) -> Message:
        items = [cv.interface_msg(i) for i in self.state.interfaces_in_port_order()]
        return pb.ListInterfacesResponse(status=cv.OK, interfaces=items)

    # --- prefixes -------------------------------------------------------------------------------

    def create_prefix(self, request: Message) -> Message:
        command = va.create_prefix(request, self.host, self._underlay)
        self._apply(command)
        return pb.CreatePrefixResponse(status=cv.OK, underlay_route=cv.address_bytes(command.underlay))

    def delete_prefix(self, request: Message) -> Message:
        self._apply(va.delete_prefix(request))
        return pb.DeletePrefixResponse(status=cv.OK)

    def list_prefixes(self, request: Message) -> Message:
        found = self.state.prefixes_of(va.interface_id_of(request), VnfType.ALIAS_PFX)
        return pb.ListPrefixesResponse(status=cv.OK, prefixes=[cv.prefix_msg(*p) for p in found])

    def create_load_balancer_prefix(self, request: Message) -> Message:
        command = va.create_lb_prefix(request, self.host, self._underlay)
        self._apply(command)
        return pb.CreateLoadBalancerPrefixResponse(
            status=cv.OK, underlay_route=cv.address_bytes(command.underlay)
        )

    def delete_load_balancer_prefix(self, request: Message) -> Message:
        self._apply(va.delete_lb_prefix(request))
        return pb.DeleteLoadBalancerPrefixResponse(status=cv.OK)

    def list_load_balancer_prefixes(self, request: Message) -> Message:
        found = self.state.prefixes_of(va.interface_id_of(request), VnfType.LB_ALIAS_PFX)
        return pb.ListLoadBalancerPrefixesResponse(status=cv.OK, prefixes=[cv.prefix_msg(*p) for p in found])

    # --- routes ---------------------------------------------------------------------------------

    def create_route(self, request: Message) -> Message:
        self._apply(va.create_route(request))
        return pb.CreateRouteResponse(status=cv.OK)

    def delete_route(self, request: Message) -> Message:
        self._apply(va.delete_route(request))
        return pb.DeleteRouteResponse(status=cv.OK)

    def list_routes(self, request: Message) -> Message:
        routes = [cv.route_msg(r) for _, r in self.state.external_routes(request.vni)]
        return pb.ListRoutesResponse(status=cv.OK, routes=routes)

    # --- VIP ------------------------------------------------------------------------------------

    def create_vip(self, request: Message) -> Message:
        command = va.create_vip(request, self.host, self._underlay)
        self._apply(command)
        return pb.CreateVipResponse(status=cv.OK, underlay_route=cv.address_bytes(command.underlay))

    def get_vip(self, request: Message) -> Message:
        iface = self.state.interface(va.interface_id_of(request))
        snat = self.state.snat_of(iface)
        if snat is None or snat.vip is None or snat.vip_underlay is None:
            raise DpError(ErrorCode.SNAT_NO_DATA, iface.id)
        return pb.GetVipResponse(
            status=cv.OK,
            vip_ip=cv.ip_address_msg(snat.vip),
            underlay_route=cv.address_bytes(snat.vip_underlay),
        )

    def delete_vip(self, request: Message) -> Message:
        self._apply(cmd.DeleteVip(va.interface_id_of(request)))
        return pb.DeleteVipResponse(status=cv.OK)

    # --- NAT ------------------------------------------------------------------------------------

    def create_nat(self, request: Message) -> Message:
        command = va.create_nat(request, self.host, self._underlay)
        self._apply(command)
        return pb.CreateNatResponse(status=cv.OK, underlay_route=cv.address_bytes(command.underlay))

    def get_nat(self, request: Message) -> Message:
        iface = self.state.interface(va.interface_id_of(request))
        snat = self.state.snat_of(iface)
        if snat is None or snat.nat is None or snat.nat_underlay is None:
            raise DpError(ErrorCode.SNAT_NO_DATA, iface.id)
        nat = snat.nat
        return pb.GetNatResponse(
            status=cv.OK,
            nat_ip=cv.ip_address_msg(nat.nat_ip),
            min_port=nat.min_port,
            max_port=nat.max_port,
            underlay_route=cv.address_bytes(snat.nat_underlay),
        )

    def delete_nat(self, request: Message) -> Message:
        self._apply(cmd.DeleteNat(va.interface_id_of(request)))
        return pb.DeleteNatResponse(status=cv.OK)

    def list_local_nats(self, request: Message) -> Message:
        entries = [cv.local_nat_msg(*e) for e in self.state.local_nats(va.list_nats(request))]
        return pb.ListLocalNatsResponse(status=cv.OK, nat_entries=entries)

    def create_neighbor_nat(self, request: Message) -> Message:
        self._apply(va.create_neighbor_nat(request))
        return pb.CreateNeighborNatResponse(status=cv.OK)

    def delete_neighbor_nat(self, request: Message) -> Message:
        self._apply(va.delete_neighbor_nat(request))
        return pb.DeleteNeighborNatResponse(status=cv.OK)

    def list_neighbor_nats(self, request: Message) -> Message:
        nat_ip = va.list_nats(request)
        entries = [
            cv.neighbor_nat_msg(n)
            for n in self.state.neighbor_nats
            if nat_ip == IPv4Address(0) or n.nat_ip == nat_ip
        ]
        return pb.ListNeighborNatsResponse(status=cv.OK, nat_entries=entries)

    # --- load balancers -------------------------------------------------------------------------

    def create_load_balancer(self, request: Message) -> Message:
        command = va.create_load_balancer(request, self.host, self._underlay)
        self._apply(command)
        return pb.CreateLoadBalancerResponse(status=cv.OK, underlay_route=cv.address_bytes(command.underlay))

    def get_load_balancer(self, request: Message) -> Message:
        lb = self.state.load_balancer(va.loadbalancer_id(request.loadbalancer_id))
        return pb.GetLoadBalancerResponse(
            status=cv.OK,
            loadbalanced_ip=cv.ip_address_msg(lb.ip),
            vni=lb.vni,
            loadbalanced_ports=cv.lb_ports_msgs(lb.ports),
            underlay_route=cv.address_bytes(lb.underlay),
        )

    def delete_load_balancer(self, request: Message) -> Message:
        self._apply(cmd.DeleteLoadBalancer(va.loadbalancer_id(request.loadbalancer_id)))
        return pb.DeleteLoadBalancerResponse(status=cv.OK)

    def list_load_balancers(self, request: Message) -> Message:
        lbs = [cv.loadbalancer_msg(lb) for lb in self.state.load_balancers.values()]
        return pb.ListLoadBalancersResponse(status=cv.OK, loadbalancers=lbs)

    def create_load_balancer_target(self, request: Message) -> Message:
        lb_id, target = va.lb_target(request)
        # Maglev is built here, once, and travels in the command; a request the tables will refuse
        # (unknown LB, duplicate, full) does not need a table
        lb = self.state.load_balancers.get(lb_id)
        targets: tuple[IPv6Address, ...] = ()
        if lb is not None and target not in lb.targets and len(lb.targets) < MAX_LB_TARGETS:
            targets = sort_targets((*lb.targets, target))
        self._apply(cmd.CreateLbTarget(lb_id, target, build_maglev(targets)))
        return pb.CreateLoadBalancerTargetResponse(status=cv.OK)

    def delete_load_balancer_target(self, request: Message) -> Message:
        lb_id, target = va.lb_target(request)
        lb = self.state.load_balancers.get(lb_id)
        targets = () if lb is None else tuple(t for t in lb.targets if t != target)
        self._apply(cmd.DeleteLbTarget(lb_id, target, build_maglev(targets)))
        return pb.DeleteLoadBalancerTargetResponse(status=cv.OK)

    def list_load_balancer_targets(self, request: Message) -> Message:
        lb_id = va.list_lb_targets(request)
        if lb_id:
            lbs = [self.state.load_balancer(lb_id, missing=ErrorCode.NO_LB)]
        else:
            lbs = list(self.state.load_balancers.values())
        targets = [cv.ip_address_msg(t) for lb in lbs for t in lb.targets]
        return pb.ListLoadBalancerTargetsResponse(status=cv.OK, target_ips=targets)

    # --- VNI ------------------------------------------------------------------------------------

    def check_vni_in_use(self, request: Message) -> Message:
        if va.vni_type(request.type) == pb.VNI_BOTH:
            raise DpError(ErrorCode.WRONG_TYPE, "VNI_BOTH")
        return pb.CheckVniInUseResponse(status=cv.OK, in_use=self.state.is_vni_in_use(request.vni))

    def reset_vni(self, request: Message) -> Message:
        if va.vni_type(request.type) != pb.VNI_BOTH:
            raise DpError(ErrorCode.WRONG_TYPE, "only VNI_BOTH")
        self._apply(cmd.ResetVni(request.vni))
        return pb.ResetVniResponse(status=cv.OK)

    # --- firewall -------------------------------------------------------------------------------

    def create_firewall_rule(self, request: Message) -> Message:
        command = va.create_firewall_rule(request)
        self._apply(command)
        return pb.CreateFirewallRuleResponse(status=cv.OK, rule_id=command.rule.id.encode("latin-1"))

    def get_firewall_rule(self, request: Message) -> Message:
        interface_id, rule_id = va.firewall_rule_id(request)
        rule = self.state.firewall_rule(interface_id, rule_id)
        msg = cv.firewall_rule_msg(rule, *self.state.firewall_rule_ips(interface_id, rule))
        return pb.GetFirewallRuleResponse(status=cv.OK, rule=msg)

    def delete_firewall_rule(self, request: Message) -> Message:
        self._apply(cmd.DeleteFirewallRule(*va.firewall_rule_id(request)))
        return pb.DeleteFirewallRuleResponse(status=cv.OK)

    def list_firewall_rules(self, request: Message) -> Message:
        interface_id = va.interface_id_of(request)
        self.state.interface(interface_id)
        rules = [
            cv.firewall_rule_msg(r, *self.state.firewall_rule_ips(interface_id, r))
            for r in self.state.firewall.get(interface_id, ())
        ]
        return pb.ListFirewallRulesResponse(status=cv.OK, rules=rules)

    # --- packet capture (hardware offload only: answered as dpservice with --no-offload) ---------

    def capture_start(self, request: Message) -> Message:
        va.capture_start(request)
        raise DpError(ErrorCode.NOT_ACTIVE, "capture needs hardware offload")

    def capture_stop(self, request: Message) -> Message:
        raise DpError(ErrorCode.NOT_ACTIVE, "no capture running")

    def capture_status(self, request: Message) -> Message:
        return pb.CaptureStatusResponse(status=cv.OK, is_active=False)
