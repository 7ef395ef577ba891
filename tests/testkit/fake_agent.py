"""An in-memory ``AgentClient`` with dpservice's semantics, for operator tests without gRPC.

It keeps the agent's tables, generates underlay addresses, returns dpservice's status codes
(201/202/205/206/301/341/343/...), lists IPv4 routes only (as dpservice does), frees a VNI with its
last user, and can be restarted (new UUID, empty tables, "not initialized") or made unreachable.
Every call is logged in ``calls`` so tests can assert what the operator sent.
"""

from __future__ import annotations

import ipaddress
import itertools
import uuid as uuidlib
from dataclasses import dataclass, field

from kubevpc_operator.agents.client import ListedInterface, ListedLoadBalancer
from kubevpc_operator.agents.errors import AgentNotInitializedError, AgentRejectedError, AgentUnavailableError
from kubevpc_operator.planning import ops
from kubevpc_operator.planning.codes import Code
from kubevpc_operator.planning.state import FirewallRuleState, Nat, NeighborNatState, Pxe, RouteState

_NODE_NUMBERS = itertools.count(1)


@dataclass
class _Interface:
    id: str
    vni: int
    device: str
    ipv4: str
    ipv6: str
    hostname: str
    pxe: Pxe | None
    underlay: str
    vip: tuple[str, str] | None = None
    nat: tuple[Nat, str] | None = None
    prefixes: dict[str, str] = field(default_factory=dict)
    lb_prefixes: dict[str, str] = field(default_factory=dict)
    rules: list[FirewallRuleState] = field(default_factory=list)


@dataclass
class _LoadBalancer:
    id: str
    vni: int
    ip: str
    ports: tuple[tuple[int, int], ...]
    underlay: str
    targets: set[str] = field(default_factory=set)


class FakeAgent:
    """One node's agent. ``devices`` limits CreateInterface to known device names (None: any)."""

    def __init__(self, node: str, devices: set[str] | None = None, *, list_ipv6_routes: bool = False) -> None:
        self.node = node
        self.devices = devices
        self.list_ipv6_routes = list_ipv6_routes
        self.number = next(_NODE_NUMBERS)
        self.calls: list[tuple[str, object]] = []
        self.unavailable = False
        self.reject: dict[type[ops.Op], int] = {}  # force a status code for an op type
        self.epoch = 0  # goes up on every restart, so underlay addresses change as dpservice's do
        self.restart(initialized=False)

    # ---- test controls ----------------------------------------------------------------------

    def restart(self, *, initialized: bool = False) -> None:
        """A new process: new UUID, empty tables, not initialized (unless told otherwise)."""
        self.uuid = str(uuidlib.uuid4()).upper()
        self.epoch += 1
        self.initialized = initialized
        self.interfaces: dict[str, _Interface] = {}
        self.lbs: dict[str, _LoadBalancer] = {}
        self.routes: dict[int, dict[str, RouteState]] = {}
        self.neighbor_nats: list[NeighborNatState] = []
        self._counter = itertools.count(1)

    def mutations(self) -> list[tuple[str, object]]:
        return [(name, arg) for name, arg in self.calls if not name.startswith(("List", "Get", "Check"))]

    # ---- helpers ----------------------------------------------------------------------------

    def _log(self, name: str, arg: object = None) -> None:
        if self.unavailable:
            raise AgentUnavailableError(self.node, f"{name}: UNAVAILABLE")
        self.calls.append((name, arg))
        if not self.initialized and name != "Initialize":
            raise AgentNotInitializedError(self.node)

    def _underlay(self) -> str:
        return str(
            ipaddress.IPv6Address(f"fc00:{self.number:x}::d000:{self.epoch:x}:0:{next(self._counter):x}")
        )

    def _vnis_in_use(self) -> set[int]:
        return {i.vni for i in self.interfaces.values()} | {lb.vni for lb in self.lbs.values()}

    def _free_unused_vnis(self) -> None:
        used = self._vnis_in_use()
        self.routes = {vni: table for vni, table in self.routes.items() if vni in used}
        self.neighbor_nats = [n for n in self.neighbor_nats if n.vni in used]

    def _local_prefixes(self, vni: int) -> set[str]:
        result = set()
        for interface in self.interfaces.values():
            if interface.vni != vni:
                continue
            for ip in (interface.ipv4, interface.ipv6):
                if ip:
                    result.add(str(ipaddress.ip_network(ip)))
            result |= set(interface.prefixes)
        return result

    # ---- AgentClient ------------------------------------------------------------------------

    async def check_initialized(self) -> str:
        self._log("CheckInitialized")
        return self.uuid

    async def initialize(self) -> str:
        self._log("Initialize")
        self.initialized = True
        self.neighbor_nats.clear()
        self.routes = {vni: {} for vni in self.routes}
        return self.uuid

    async def list_interfaces(self) -> list[ListedInterface]:
        self._log("ListInterfaces")
        return [
            ListedInterface(i.id, i.vni, i.device, i.ipv4, i.ipv6, i.hostname, i.underlay)
            for i in self.interfaces.values()
        ]

    def _interface(self, interface_id: str) -> _Interface:
        interface = self.interfaces.get(interface_id)
        if interface is None:
            raise AgentRejectedError(self.node, Code.NO_VM, "NO_VM")
        return interface

    async def list_prefixes(self, interface_id: str) -> dict[str, str]:
        self._log("ListPrefixes", interface_id)
        return dict(self._interface(interface_id).prefixes)

    async def list_lb_prefixes(self, interface_id: str) -> dict[str, str]:
        self._log("ListLoadBalancerPrefixes", interface_id)
        return dict(self._interface(interface_id).lb_prefixes)

    async def get_vip(self, interface_id: str) -> tuple[str, str] | None:
        self._log("GetVip", interface_id)
        return self._interface(interface_id).vip

    async def get_nat(self, interface_id: str) -> tuple[Nat, str] | None:
        self._log("GetNat", interface_id)
        return self._interface(interface_id).nat

    async def list_firewall_rules(self, interface_id: str) -> list[FirewallRuleState]:
        self._log("ListFirewallRules", interface_id)
        return list(self._interface(interface_id).rules)

    async def list_load_balancers(self) -> list[ListedLoadBalancer]:
        self._log("ListLoadBalancers")
        return [ListedLoadBalancer(lb.id, lb.vni, lb.ip, lb.ports, lb.underlay) for lb in self.lbs.values()]

    async def list_lb_targets(self, lb_id: str) -> list[str]:
        self._log("ListLoadBalancerTargets", lb_id)
        lb = self.lbs.get(lb_id)
        if lb is None:
            raise AgentRejectedError(self.node, Code.NO_LB, "NO_LB")
        return sorted(lb.targets)

    async def list_routes(self, vni: int) -> list[RouteState]:
        self._log("ListRoutes", vni)
        return [r for r in self.routes.get(vni, {}).values() if self.list_ipv6_routes or ":" not in r.prefix]

    async def list_neighbor_nats(self) -> list[NeighborNatState]:
        self._log("ListNeighborNats")
        return list(self.neighbor_nats)

    async def close(self) -> None:
        return None

    async def execute(self, op: ops.Op) -> str:
        self._log(type(op).__name__, op)
        forced = self.reject.get(type(op))
        try:
            if forced is not None:
                raise AgentRejectedError(self.node, forced, "FORCED")
            return self._execute(op)
        except AgentRejectedError as rejected:
            if rejected.code in op.done_codes:
                return ""
            raise

    def _fail(self, code: Code) -> AgentRejectedError:
        return AgentRejectedError(self.node, code, code.name)

    def _execute(self, op: ops.Op) -> str:
        match op:
            case ops.CreateInterface():
                if self.devices is not None and op.device not in self.devices:
                    raise self._fail(Code.NOT_FOUND)
                if any(i.device == op.device for i in self.interfaces.values()):
                    raise self._fail(Code.ALREADY_EXISTS)
                if op.interface_id in self.interfaces:
                    raise self._fail(Code.VM_HANDLE)
                underlay = self._underlay()
                self.interfaces[op.interface_id] = _Interface(
                    op.interface_id, op.vni, op.device, op.ipv4, op.ipv6, op.hostname, op.pxe, underlay
                )
                self.routes.setdefault(op.vni, {})
                return underlay
            case ops.DeleteInterface():
                if self.interfaces.pop(op.interface_id, None) is None:
                    raise self._fail(Code.NOT_FOUND)
                self._free_unused_vnis()
                return ""
            case ops.CreatePrefix():
                interface = self._interface(op.interface_id)
                if op.prefix in self._local_prefixes(interface.vni) or op.prefix in self.routes.get(
                    interface.vni, {}
                ):
                    raise self._fail(Code.ROUTE_EXISTS)
                interface.prefixes[op.prefix] = self._underlay()
                return interface.prefixes[op.prefix]
            case ops.DeletePrefix():
                interface = self._interface(op.interface_id)
                if interface.prefixes.pop(op.prefix, None) is None:
                    raise self._fail(Code.ROUTE_NOT_FOUND)
                return ""
            case ops.CreateLoadBalancerPrefix():
                interface = self._interface(op.interface_id)
                if op.prefix in interface.lb_prefixes:
                    raise self._fail(Code.ALREADY_EXISTS)
                interface.lb_prefixes[op.prefix] = self._underlay()
                return interface.lb_prefixes[op.prefix]
            case ops.DeleteLoadBalancerPrefix():
                interface = self._interface(op.interface_id)
                if interface.lb_prefixes.pop(op.prefix, None) is None:
                    raise self._fail(Code.NOT_FOUND)
                return ""
            case ops.CreateVip():
                interface = self._interface(op.interface_id)
                if interface.vip is not None:
                    raise self._fail(Code.SNAT_EXISTS)
                interface.vip = (op.ip, self._underlay())
                return interface.vip[1]
            case ops.DeleteVip():
                interface = self._interface(op.interface_id)
                if interface.vip is None:
                    raise self._fail(Code.SNAT_NO_DATA)
                interface.vip = None
                return ""
            case ops.CreateNat():
                interface = self._interface(op.interface_id)
                if interface.nat is not None:
                    raise self._fail(Code.SNAT_EXISTS)
                interface.nat = (Nat(op.ip, op.min_port, op.max_port), self._underlay())
                return interface.nat[1]
            case ops.DeleteNat():
                interface = self._interface(op.interface_id)
                if interface.nat is None:
                    raise self._fail(Code.SNAT_NO_DATA)
                interface.nat = None
                return ""
            case ops.CreateFirewallRule():
                interface = self._interface(op.interface_id)
                if any(r.id == op.rule.id for r in interface.rules):
                    raise self._fail(Code.ALREADY_EXISTS)
                interface.rules.append(op.rule)
                return ""
            case ops.DeleteFirewallRule():
                interface = self._interface(op.interface_id)
                before = len(interface.rules)
                interface.rules = [r for r in interface.rules if r.id != op.rule_id]
                if len(interface.rules) == before:
                    raise self._fail(Code.NOT_FOUND)
                return ""
            case ops.CreateLoadBalancer():
                if (
                    any(lb.vni == op.vni and lb.ip == op.ip for lb in self.lbs.values())
                    or op.lb_id in self.lbs
                ):
                    raise self._fail(Code.ALREADY_EXISTS)
                lb = _LoadBalancer(op.lb_id, op.vni, op.ip, op.ports, self._underlay())
                self.lbs[op.lb_id] = lb
                self.routes.setdefault(op.vni, {})
                return lb.underlay
            case ops.DeleteLoadBalancer():
                if self.lbs.pop(op.lb_id, None) is None:
                    raise self._fail(Code.NOT_FOUND)
                self._free_unused_vnis()
                return ""
            case ops.CreateLoadBalancerTarget():
                lb = self.lbs.get(op.lb_id)
                if lb is None:
                    raise self._fail(Code.NO_LB)
                if op.target in lb.targets:
                    raise self._fail(Code.ALREADY_EXISTS)
                lb.targets.add(op.target)
                return ""
            case ops.DeleteLoadBalancerTarget():
                lb = self.lbs.get(op.lb_id)
                if lb is None:
                    raise self._fail(Code.NO_LB)
                if op.target not in lb.targets:
                    raise self._fail(Code.NOT_FOUND)
                lb.targets.discard(op.target)
                return ""
            case ops.CreateRoute():
                if op.vni not in self._vnis_in_use():
                    raise self._fail(Code.NO_VNI)
                table = self.routes.setdefault(op.vni, {})
                if op.prefix in table or op.prefix in self._local_prefixes(op.vni):
                    raise self._fail(Code.ROUTE_EXISTS)
                table[op.prefix] = RouteState(op.vni, op.prefix, op.nexthop_vni, op.nexthop)
                return ""
            case ops.DeleteRoute():
                if op.vni not in self._vnis_in_use():
                    raise self._fail(Code.NO_VNI)
                if self.routes.get(op.vni, {}).pop(op.prefix, None) is None:
                    raise self._fail(Code.ROUTE_NOT_FOUND)
                return ""
            case ops.CreateNeighborNat():
                for entry in self.neighbor_nats:
                    if entry.ip == op.ip and entry.min_port < op.max_port and op.min_port < entry.max_port:
                        raise self._fail(Code.ALREADY_EXISTS)
                self.neighbor_nats.append(
                    NeighborNatState(op.ip, op.vni, op.min_port, op.max_port, op.underlay)
                )
                return ""
            case ops.DeleteNeighborNat():
                key = (op.ip, op.vni, op.min_port, op.max_port)
                kept = [n for n in self.neighbor_nats if n.key != key]
                if len(kept) == len(self.neighbor_nats):
                    raise self._fail(Code.NOT_FOUND)
                self.neighbor_nats = kept
                return ""
        raise TypeError(f"unknown operation {op!r}")
