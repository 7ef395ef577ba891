"""Operations: one frozen dataclass per agent RPC that changes state.

Planning returns them in an order that is safe to run one by one. ``phase`` groups them so the
applier may run independent operations of one phase concurrently: fan-out entries that point at
things going away are removed first, then interface children, then interfaces and load balancers;
creation runs the other way round. Operations with the same ``chain`` keep their order inside a
phase (firewall rules of one interface are evaluated in insertion order).

``done_codes`` are the agent status codes that mean "the state is already as wanted" (metalnet's
rule: ALREADY_EXISTS on create and NOT_FOUND on delete count as done).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from kubevpc_operator.planning.codes import Code
from kubevpc_operator.planning.state import Export, ExportKind, FirewallRuleState, Owner, Pxe


class Phase(IntEnum):
    UNLINK = 0  # routes, neighbor NATs and LB targets that go away
    DETACH = 1  # interface children that go away: LB prefixes, prefixes, NAT, VIP, firewall rules
    REMOVE = 2  # interfaces and load balancers that go away
    ADD = 3  # interfaces and load balancers
    ATTACH = 4  # interface children
    LINK = 5  # routes, neighbor NATs, LB targets


@dataclass(frozen=True)
class Op:
    phase: ClassVar[Phase]
    done_codes: ClassVar[frozenset[int]] = frozenset()
    is_delete: ClassVar[bool] = False
    owner: Owner | None = field(default=None, compare=False, kw_only=True)

    @property
    def chain(self) -> str:
        """Operations with the same chain run in plan order; others of a phase may overlap."""
        return repr(self)

    @property
    def export(self) -> Export | None:
        """The exported object this operation creates or deletes (it has an underlay address)."""
        return None

    def subject(self) -> str:
        """What the operation acts on, e.g. "route 10.0.0.2/32 via fc00::1 in VNI 7"."""
        raise NotImplementedError

    def describe(self) -> str:
        """The applied change, for logs and events: "Created route ..." / "Deleted route ..."."""
        return f"{'Deleted' if self.is_delete else 'Created'} {self.subject()}"

    def describe_failure(self) -> str:
        """The same change as a failure: "Could not create route ..."."""
        return f"Could not {'delete' if self.is_delete else 'create'} {self.subject()}"


# ---- interfaces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InterfaceOp(Op):
    """An operation on one interface or one of its children: they all form the interface's chain.

    ``export_kind`` names the underlay address the operation creates or deletes (None: it has none).
    """

    export_kind: ClassVar[ExportKind | None] = None
    interface_id: str

    @property
    def chain(self) -> str:
        return self.interface_id

    @property
    def export(self) -> Export | None:
        return None if self.export_kind is None else Export(self.export_kind, self.interface_id)


@dataclass(frozen=True)
class InterfacePrefixOp(InterfaceOp):
    """An alias prefix or load balancer prefix: each one has its own underlay address."""

    prefix: str

    @property
    def export(self) -> Export | None:
        return None if self.export_kind is None else Export(self.export_kind, self.interface_id, self.prefix)


@dataclass(frozen=True)
class CreateInterface(InterfaceOp):
    phase = Phase.ADD
    done_codes = frozenset({Code.VM_HANDLE})  # the id is ours (ids are object uids)
    export_kind = ExportKind.INTERFACE
    vni: int
    device: str
    ipv4: str
    ipv6: str
    hostname: str = ""
    pxe: Pxe | None = None

    def subject(self) -> str:
        ips = ", ".join(ip for ip in (self.ipv4, self.ipv6) if ip)
        return f"interface {self.interface_id} on device {self.device} (VNI {self.vni}, {ips})"


@dataclass(frozen=True)
class DeleteInterface(InterfaceOp):
    phase = Phase.REMOVE
    is_delete = True
    done_codes = frozenset({Code.NOT_FOUND})
    export_kind = ExportKind.INTERFACE

    def subject(self) -> str:
        return f"interface {self.interface_id}"


@dataclass(frozen=True)
class CreatePrefix(InterfacePrefixOp):
    phase = Phase.ATTACH
    done_codes = frozenset({Code.ROUTE_EXISTS})
    export_kind = ExportKind.PREFIX

    def subject(self) -> str:
        return f"prefix {self.prefix} on interface {self.interface_id}"


@dataclass(frozen=True)
class DeletePrefix(InterfacePrefixOp):
    phase = Phase.DETACH
    is_delete = True
    done_codes = frozenset({Code.NO_VM, Code.ROUTE_NOT_FOUND, Code.NOT_FOUND})
    export_kind = ExportKind.PREFIX

    def subject(self) -> str:
        return f"prefix {self.prefix} from interface {self.interface_id}"


@dataclass(frozen=True)
class CreateLoadBalancerPrefix(InterfacePrefixOp):
    phase = Phase.ATTACH
    done_codes = frozenset({Code.ALREADY_EXISTS})
    export_kind = ExportKind.LB_PREFIX

    def subject(self) -> str:
        return f"load balancer prefix {self.prefix} on interface {self.interface_id}"


@dataclass(frozen=True)
class DeleteLoadBalancerPrefix(InterfacePrefixOp):
    phase = Phase.DETACH
    is_delete = True
    done_codes = frozenset({Code.NO_VM, Code.NOT_FOUND})
    export_kind = ExportKind.LB_PREFIX

    def subject(self) -> str:
        return f"load balancer prefix {self.prefix} from interface {self.interface_id}"


@dataclass(frozen=True)
class CreateVip(InterfaceOp):
    phase = Phase.ATTACH
    done_codes = frozenset({Code.SNAT_EXISTS})
    export_kind = ExportKind.VIP
    ip: str

    def subject(self) -> str:
        return f"virtual IP {self.ip} on interface {self.interface_id}"


@dataclass(frozen=True)
class DeleteVip(InterfaceOp):
    phase = Phase.DETACH
    is_delete = True
    done_codes = frozenset({Code.NO_VM, Code.SNAT_NO_DATA})
    export_kind = ExportKind.VIP

    def subject(self) -> str:
        return f"virtual IP from interface {self.interface_id}"


@dataclass(frozen=True)
class CreateNat(InterfaceOp):
    phase = Phase.ATTACH
    done_codes = frozenset({Code.SNAT_EXISTS})
    export_kind = ExportKind.NAT
    ip: str
    min_port: int
    max_port: int

    def subject(self) -> str:
        return f"NAT {self.ip}:{self.min_port}-{self.max_port - 1} on interface {self.interface_id}"


@dataclass(frozen=True)
class DeleteNat(InterfaceOp):
    phase = Phase.DETACH
    is_delete = True
    done_codes = frozenset({Code.NO_VM, Code.SNAT_NO_DATA})
    export_kind = ExportKind.NAT

    def subject(self) -> str:
        return f"NAT from interface {self.interface_id}"


@dataclass(frozen=True)
class CreateFirewallRule(InterfaceOp):
    phase = Phase.ATTACH
    done_codes = frozenset({Code.ALREADY_EXISTS})
    rule: FirewallRuleState

    def subject(self) -> str:
        return f"firewall rule {self.rule.id} on interface {self.interface_id}"


@dataclass(frozen=True)
class DeleteFirewallRule(InterfaceOp):
    phase = Phase.DETACH
    is_delete = True
    done_codes = frozenset({Code.NO_VM, Code.NOT_FOUND})
    rule_id: str

    def subject(self) -> str:
        return f"firewall rule {self.rule_id} from interface {self.interface_id}"


# ---- load balancers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadBalancerOp(Op):
    """Creates or deletes a load balancer instance: one chain per instance, its underlay exported.

    Its targets are separate operations on other chains (independent targets may overlap).
    """

    lb_id: str

    @property
    def chain(self) -> str:
        return self.lb_id

    @property
    def export(self) -> Export:
        return Export(ExportKind.LOAD_BALANCER, self.lb_id)


@dataclass(frozen=True)
class CreateLoadBalancer(LoadBalancerOp):
    phase = Phase.ADD
    done_codes = frozenset({Code.ALREADY_EXISTS})
    vni: int
    ip: str
    ports: tuple[tuple[int, int], ...]  # (protocol number, port)

    def subject(self) -> str:
        ports = ",".join(f"{'tcp' if proto == 6 else 'udp'}/{port}" for proto, port in self.ports)
        return f"load balancer {self.lb_id} for {self.ip} {ports} (VNI {self.vni})"


@dataclass(frozen=True)
class DeleteLoadBalancer(LoadBalancerOp):
    phase = Phase.REMOVE
    is_delete = True
    done_codes = frozenset({Code.NOT_FOUND})

    def subject(self) -> str:
        return f"load balancer {self.lb_id}"


@dataclass(frozen=True)
class CreateLoadBalancerTarget(Op):
    phase = Phase.LINK
    done_codes = frozenset({Code.ALREADY_EXISTS})
    lb_id: str
    target: str

    def subject(self) -> str:
        return f"target {self.target} of load balancer {self.lb_id}"


@dataclass(frozen=True)
class DeleteLoadBalancerTarget(Op):
    phase = Phase.UNLINK
    is_delete = True
    done_codes = frozenset({Code.NOT_FOUND, Code.NO_LB})
    lb_id: str
    target: str

    def subject(self) -> str:
        return f"target {self.target} of load balancer {self.lb_id}"


# ---- routes and neighbor NAT ------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRoute(Op):
    phase = Phase.LINK
    done_codes = frozenset({Code.ROUTE_EXISTS})
    vni: int
    prefix: str
    nexthop_vni: int
    nexthop: str

    def subject(self) -> str:
        via = f" (VNI {self.nexthop_vni})" if self.nexthop_vni != self.vni else ""
        return f"route {self.prefix} via {self.nexthop}{via} in VNI {self.vni}"


@dataclass(frozen=True)
class DeleteRoute(Op):
    phase = Phase.UNLINK
    is_delete = True
    done_codes = frozenset({Code.ROUTE_NOT_FOUND, Code.NO_VNI})
    vni: int
    prefix: str

    def subject(self) -> str:
        return f"route {self.prefix} in VNI {self.vni}"


@dataclass(frozen=True)
class CreateNeighborNat(Op):
    phase = Phase.LINK
    done_codes = frozenset({Code.ALREADY_EXISTS})
    ip: str
    vni: int
    min_port: int
    max_port: int
    underlay: str

    def subject(self) -> str:
        return (
            f"neighbor NAT {self.ip}:{self.min_port}-{self.max_port - 1} via {self.underlay}"
            f" in VNI {self.vni}"
        )


@dataclass(frozen=True)
class DeleteNeighborNat(Op):
    phase = Phase.UNLINK
    is_delete = True
    done_codes = frozenset({Code.NOT_FOUND})
    ip: str
    vni: int
    min_port: int
    max_port: int

    def subject(self) -> str:
        return f"neighbor NAT {self.ip}:{self.min_port}-{self.max_port - 1} in VNI {self.vni}"


def ordered(ops: list[Op]) -> list[Op]:
    """``ops`` stably sorted by phase: the order the applier runs them in."""
    return sorted(ops, key=lambda op: op.phase)
