"""Status fields of each kind, built from the topology and the nodes' sync reports (pure).

This module owns the shape of ``status`` (besides conditions): it writes the fields and reads the
underlay addresses back (``recorded_exports``) when a restarted operator has not observed a node
yet. Per-node programming state (``status.nodes``) lists every node where the object has state:
its own node and every node that routes to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kubevpc_operator.conditions import Outcome, blocked, failed, impaired, pending, programmed, state_of
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.models.network_interface import NetworkInterface
from kubevpc_operator.models.vpc import VPC, Peering
from kubevpc_operator.planning.desired import Exports
from kubevpc_operator.planning.nat import NatAllocation
from kubevpc_operator.planning.state import Export, ExportKind
from kubevpc_operator.planning.topology import Problem, Topology

Fields = dict[str, Any]


class NodeReport(Protocol):
    """What status needs from one node's last sync (``agents.syncer.SyncReport`` is one)."""

    @property
    def node(self) -> str: ...

    @property
    def owners(self) -> frozenset[str]: ...

    @property
    def exports(self) -> Mapping[Export, str]: ...

    def state_of(self, uid: str) -> tuple[str, str]: ...


def node_states(uid: str, reports: Mapping[str, NodeReport], home: str | None = None) -> list[dict[str, str]]:
    """``[{name, state, message?}]`` for every node where ``uid`` has (or should have) state."""
    states = []
    for node in sorted(reports):
        report = reports[node]
        if uid not in report.owners and node != home:
            continue
        state, message = report.state_of(uid)
        entry = {"name": node, "state": state}
        if message:
            entry["message"] = message
        states.append(entry)
    return states


def outcome_of(nodes: list[dict[str, str]], problem: Problem | None, idle: str) -> Outcome:
    """The conditions' outcome: a problem first, then the worst node state."""
    if problem is not None:
        if problem.is_waiting:
            return pending(problem.reason, problem.message)
        return blocked(problem.reason, problem.message)
    for state, reason in (("Failed", "ProgrammingFailed"), ("Unavailable", "AgentUnavailable")):
        bad = [n for n in nodes if n["state"] == state]
        if bad:
            return failed(reason, "; ".join(f"{n['name']}: {n.get('message', state)}" for n in bad))
    waiting = [n for n in nodes if n["state"] == "Pending"]
    if waiting:
        return pending("Programming", "; ".join(f"{n['name']}: {n.get('message', '')}" for n in waiting))
    if not nodes:
        return programmed(idle)
    return programmed(f"Programmed on {len(nodes)} node{'s' if len(nodes) != 1 else ''}")


def interface_status(
    nic: NetworkInterface,
    topology: Topology,
    reports: Mapping[str, NodeReport],
    nat: tuple[str, NatSlot] | None = None,
    nat_exhausted: str | None = None,
) -> tuple[Fields, Outcome]:
    """``nat`` is (gateway name, slot); ``nat_exhausted`` names a gateway that had no slot left."""
    uid = nic.uid
    resolved = topology.interfaces.get(uid)
    home = reports.get(nic.node_name)
    exports = home.exports if home is not None else {}

    def underlay(kind: ExportKind, detail: str = "") -> str | None:
        return exports.get(Export(kind, uid, detail))

    nodes = node_states(uid, reports, home=nic.node_name if resolved is not None else None)
    outcome = outcome_of(nodes, topology.problems.get(uid), "Programmed")
    if nat_exhausted is not None and outcome.ready:
        outcome = failed(
            "NATPortsExhausted",
            f"NATGateway {nat_exhausted} has no free port slice for this interface",
            ready=True,
        )
    fields: Fields = {
        "vni": resolved.vni if resolved is not None else None,
        "underlayRoute": underlay(ExportKind.INTERFACE),
        "virtualIP": _with_underlay({"ip": str(nic.virtual_ip)}, underlay(ExportKind.VIP))
        if nic.virtual_ip is not None
        else None,
        "nat": _with_underlay(
            {
                "natGateway": nat[0],
                "ip": str(nat[1].ip),
                "minPort": nat[1].min_port,
                "maxPort": nat[1].max_port,
            },
            underlay(ExportKind.NAT),
        )
        if nat is not None
        else None,
        "prefixes": [
            _with_underlay({"prefix": str(p)}, underlay(ExportKind.PREFIX, str(p))) for p in nic.prefixes
        ]
        or None,
        "loadBalancerPrefixes": [
            _with_underlay({"prefix": detail}, address)
            for export, address in sorted(exports.items(), key=lambda item: item[0].detail)
            for detail in [export.detail]
            if export.kind is ExportKind.LB_PREFIX and export.uid == uid
        ]
        or None,
        "nodes": nodes or None,
        "state": state_of(outcome),
    }
    return fields, outcome


def nat_of_interface(
    topology: Topology, allocations: Mapping[str, NatAllocation], name: str, namespace: str
) -> tuple[tuple[str, NatSlot] | None, str | None]:
    """(gateway name, slot) of an interface, or the name of its gateway when that one is exhausted."""
    for uid, membership in topology.nat_gateways.items():
        gateway = membership.gateway
        if gateway.meta.namespace != namespace or name not in membership.members:
            continue
        allocation = allocations.get(uid)
        slot = allocation.assigned.get(name) if allocation is not None else None
        if slot is not None:
            return (gateway.meta.name, slot), None
        return None, gateway.meta.name
    return None, None


def load_balancer_status(
    uid: str, topology: Topology, reports: Mapping[str, NodeReport]
) -> tuple[Fields, Outcome]:
    resolved = topology.load_balancers.get(uid)
    nodes = node_states(uid, reports)
    problem = topology.problems.get(uid)
    if resolved is not None and not resolved.nodes and problem is None:
        outcome = pending("NoTargets", "No NetworkInterface matches the target selector, so no instance runs")
    else:
        outcome = outcome_of(nodes, problem, "Programmed")
    instances = []
    if resolved is not None:
        for node in resolved.nodes:
            report = reports.get(node)
            address = report.exports.get(Export(ExportKind.LOAD_BALANCER, uid)) if report else None
            instances.append(_with_underlay({"node": node}, address))
    fields: Fields = {
        "vni": resolved.vni if resolved is not None else None,
        "instances": instances or None,
        "targets": len(resolved.targets) if resolved is not None else 0,
        "nodes": nodes or None,
        "state": state_of(outcome),
    }
    return fields, outcome


def nat_gateway_status(
    uid: str, topology: Topology, allocation: NatAllocation | None
) -> tuple[Fields, Outcome]:
    """Allocations and free slices; each interface reports its own NAT programming."""
    membership = topology.nat_gateways.get(uid)
    problem = topology.problems.get(uid)
    entries = []
    if membership is not None and allocation is not None:
        namespace = membership.gateway.meta.namespace
        node_of = {
            r.nic.meta.name: r.node for r in topology.interfaces.values() if r.nic.meta.namespace == namespace
        }
        for name, slot in sorted(
            allocation.assigned.items(), key=lambda item: (item[1].ip, item[1].min_port)
        ):
            entry: dict[str, Any] = {
                "networkInterface": name,
                "ip": str(slot.ip),
                "minPort": slot.min_port,
                "maxPort": slot.max_port,
            }
            if name in node_of:
                entry["node"] = node_of[name]
            entries.append(entry)
    if problem is None and allocation is not None and allocation.unassigned:
        names = ", ".join(allocation.unassigned[:5]) + (" ..." if len(allocation.unassigned) > 5 else "")
        outcome = impaired(
            "PortsExhausted",
            f"{len(allocation.unassigned)} NetworkInterfaces have no port slice (all {allocation.capacity} "
            f"slices are in use): {names}",
        )
    elif problem is not None:
        outcome = outcome_of([], problem, "")
    elif allocation is not None and allocation.assigned:
        count = len(allocation.assigned)
        outcome = programmed(f"{count} NetworkInterface{'s hold' if count != 1 else ' holds'} a port slice")
    else:
        outcome = programmed("No NetworkInterface uses this gateway yet")
    fields: Fields = {
        "allocations": entries or None,
        "freeSlots": allocation.free if allocation is not None else None,
        "state": state_of(outcome),
    }
    return fields, outcome


def vpc_status(vpc: VPC, topology: Topology, vni: int | None) -> tuple[Fields, Outcome]:
    problem = topology.problems.get(vpc.meta.uid)
    peerings = []
    active = {peer for peer, _ in _links(topology, vni)}
    vnis = topology.vnis
    for peering in vpc.peerings:
        peer_vni = vnis.get(peering.vpc)
        state = "Active" if peer_vni is not None and peer_vni in active else "Pending"
        peerings.append({"vpc": peering.vpc.name, "state": state})
    nodes = sorted(topology.nodes_serving([vni])) if vni is not None else []
    if problem is not None:
        outcome = outcome_of([], problem, "")
    elif vni is None:
        outcome = pending("AllocatingVNI", "No VNI allocated yet")
    else:
        pending_peers = [p["vpc"] for p in peerings if p["state"] == "Pending"]
        if pending_peers:
            message = f"VNI {vni}; waiting for {', '.join(pending_peers)} to list this VPC in its peerings"
            outcome = programmed(message)
        else:
            outcome = programmed(f"VNI {vni}, in use on {len(nodes)} node{'s' if len(nodes) != 1 else ''}")
    fields: Fields = {
        "vni": vni,
        "peerings": peerings or None,
        "nodes": nodes or None,
        "state": state_of(outcome),
    }
    return fields, outcome


def recorded_exports(kind: str, body: Mapping[str, Any]) -> dict[tuple[str, Export], str]:
    """Underlay addresses a previous run recorded in ``status`` (read leniently)."""
    uid = str(body.get("metadata", {}).get("uid", ""))
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    result: dict[tuple[str, Export], str] = {}
    if kind == "NetworkInterface":
        node = str(spec.get("nodeName", ""))

        def put(export: Export, address: object) -> None:
            if isinstance(address, str) and address:
                result[(node, export)] = address

        put(Export(ExportKind.INTERFACE, uid), status.get("underlayRoute"))
        put(Export(ExportKind.VIP, uid), (status.get("virtualIP") or {}).get("underlayRoute"))
        put(Export(ExportKind.NAT, uid), (status.get("nat") or {}).get("underlayRoute"))
        for entry in status.get("prefixes") or ():
            put(Export(ExportKind.PREFIX, uid, str(entry.get("prefix"))), entry.get("underlayRoute"))
        for entry in status.get("loadBalancerPrefixes") or ():
            put(Export(ExportKind.LB_PREFIX, uid, str(entry.get("prefix"))), entry.get("underlayRoute"))
    elif kind == "LoadBalancer":
        for entry in status.get("instances") or ():
            node, address = entry.get("node"), entry.get("underlayRoute")
            if isinstance(node, str) and isinstance(address, str) and address:
                result[(node, Export(ExportKind.LOAD_BALANCER, uid))] = address
    return result


def merge_exports(
    recorded: Mapping[tuple[str, Export], str], observed: Mapping[str, Mapping[Export, str]]
) -> Exports:
    """Observed addresses for nodes that have been observed; recorded ones for the others."""
    merged = {key: address for key, address in recorded.items() if key[0] not in observed}
    for node, exports in observed.items():
        for export, address in exports.items():
            merged[(node, export)] = address
    return merged


def _with_underlay(entry: dict[str, Any], underlay: str | None) -> dict[str, Any]:
    if underlay:
        entry["underlayRoute"] = underlay
    return entry


def _links(topology: Topology, vni: int | None) -> tuple[tuple[int, Peering], ...]:
    if vni is None:
        return ()
    return topology.peers.get(vni, ())
