"""Status fields of each kind, built from the topology and the nodes' sync reports (pure).

This module owns the shape of ``status`` besides conditions (docs/resources.md): it writes the
fields and reads the underlay addresses back (``recorded_exports``) for a restarted operator that
has not observed a node yet. ``status.nodes`` lists every node where the object has state: for an
interface its own node and every node that routes to it.

Fields set to None are removed from the status (``conditions.status_patch``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Protocol

from kubevpc_operator.conditions import Outcome, blocked, failed, impaired, pending, programmed, state_of
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.models.network_interface import NetworkInterface
from kubevpc_operator.models.vpc import VPC
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
    """``[{name, state, message?}]`` for every node where ``uid`` has (or should have) state.

    States are Programmed, Pending or Failed; an unreachable agent is Failed with its reason.
    """
    states = []
    for node in sorted(reports):
        report = reports[node]
        if uid not in report.owners and node != home:
            continue
        state, message = report.state_of(uid)
        entry = {"name": node, "state": "Failed" if state == "Unavailable" else state}
        if state == "Unavailable":
            message = f"agent unavailable: {message}"
        if message:
            entry["message"] = message
        states.append(entry)
    return states


def outcome_of(nodes: list[dict[str, str]], problem: Problem | None, idle: str) -> Outcome:
    """The conditions' outcome: a problem first, then the worst node state."""
    if problem is not None:
        if problem.waiting and problem.degraded:
            return failed(problem.reason, problem.message)
        if problem.waiting:
            return pending(problem.reason, problem.message)
        return blocked(problem.reason, problem.message)
    failing = [n for n in nodes if n["state"] == "Failed"]
    if failing:
        unavailable = all(n.get("message", "").startswith("agent unavailable") for n in failing)
        reason = "AgentUnavailable" if unavailable else "AgentRejected"
        return failed(reason, "; ".join(f"{n['name']}: {n.get('message', 'failed')}" for n in failing))
    waiting = [n for n in nodes if n["state"] == "Pending"]
    if waiting:
        return pending("Pending", "; ".join(f"{n['name']}: {n.get('message', 'pending')}" for n in waiting))
    if not nodes:
        return programmed(idle)
    return programmed(f"Programmed on {_count(len(nodes), 'node')}")


def interface_status(
    nic: NetworkInterface,
    topology: Topology,
    reports: Mapping[str, NodeReport],
    *,
    nat: tuple[str, NatSlot] | None = None,
    nat_exhausted: str | None = None,
    device_name: str | None = None,
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
        outcome = impaired(
            "NoFreePortSlice", f"NATGateway {nat_exhausted} has no free port slice for this interface"
        )
    lb_targets = []
    for lb in sorted(topology.load_balancers.values(), key=lambda r: r.lb.meta.name):
        if uid in lb.targets:
            entry = {"loadBalancer": lb.lb.meta.name, "prefix": lb.prefix}
            lb_targets.append(_with_underlay(entry, underlay(ExportKind.LB_PREFIX, lb.prefix)))
    fields: Fields = {
        "nodeName": nic.node_name,
        "vni": resolved.vni if resolved is not None else None,
        "underlayRoute": underlay(ExportKind.INTERFACE),
        "deviceName": device_name,
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
        "loadBalancerTargets": lb_targets or None,
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
    problem = topology.problems.get(uid)
    everywhere = node_states(uid, reports)
    instances: list[dict[str, str]] = []
    targets: list[dict[str, str]] = []
    if resolved is not None:
        by_node = {n["name"]: n for n in everywhere}
        for node in resolved.nodes:
            report = reports.get(node)
            entry = dict(by_node.get(node, {"name": node, "state": "Pending"}))
            address = report.exports.get(Export(ExportKind.LOAD_BALANCER, uid)) if report else None
            instances.append(_with_underlay(entry, address))
        for target_uid in resolved.targets:
            target = topology.interfaces[target_uid]
            report = reports.get(target.node)
            address = (
                report.exports.get(Export(ExportKind.LB_PREFIX, target_uid, resolved.prefix))
                if report
                else None
            )
            entry = {"networkInterface": target.nic.meta.name, "nodeName": target.node}
            targets.append(_with_underlay(entry, address))
    if resolved is not None and not resolved.nodes and problem is None:
        outcome = pending("NoTargets", "No NetworkInterface matches the target selector, so no instance runs")
    else:
        outcome = outcome_of(everywhere, problem, "Programmed")
    fields: Fields = {
        "vni": resolved.vni if resolved is not None else None,
        "nodes": instances or None,
        "targets": sorted(targets, key=lambda t: t["networkInterface"]) or None,
        "targetCount": len(targets),
    }
    return fields, outcome


def nat_gateway_status(
    uid: str,
    topology: Topology,
    allocation: NatAllocation | None,
    reports: Mapping[str, NodeReport] | None = None,
) -> tuple[Fields, Outcome]:
    """Allocations, used and free slices; where each slice is programmed, from the reports."""
    reports = reports or {}
    membership = topology.nat_gateways.get(uid)
    problem = topology.problems.get(uid)
    entries = []
    member_uids: list[str] = []
    if membership is not None and allocation is not None:
        namespace = membership.gateway.meta.namespace
        by_name = {
            r.nic.meta.name: r for r in topology.interfaces.values() if r.nic.meta.namespace == namespace
        }
        for name, slot in sorted(
            allocation.assigned.items(), key=lambda item: (item[1].ip, item[1].min_port)
        ):
            entry: dict[str, Any] = {"networkInterface": name, "ip": str(slot.ip), "minPort": slot.min_port}
            entry["maxPort"] = slot.max_port
            resolved = by_name.get(name)
            if resolved is not None:
                member_uids.append(resolved.nic.uid)
                entry["nodeName"] = resolved.node
                report = reports.get(resolved.node)
                address = report.exports.get(Export(ExportKind.NAT, resolved.nic.uid)) if report else None
                _with_underlay(entry, address)
            entries.append(entry)
    nodes = _merged_node_states(member_uids, reports)
    if problem is not None:
        outcome = outcome_of([], problem, "")
    elif allocation is not None and allocation.unassigned:
        names = ", ".join(allocation.unassigned[:5]) + (" ..." if len(allocation.unassigned) > 5 else "")
        outcome = impaired(
            "NoFreePortSlice",
            f"{_count(len(allocation.unassigned), 'NetworkInterface')} have no port slice "
            f"(all {allocation.capacity} slices are in use): {names}",
        )
    elif membership is not None and membership.contested:
        served = "; ".join(
            f"{nic} is served by the older NATGateway {other}" for nic, other in membership.contested
        )
        outcome = impaired("ServedByOlderGateway", served)
    else:
        outcome = outcome_of(nodes, None, "No NetworkInterface uses this gateway yet")
    fields: Fields = {
        "vni": membership.vni if membership is not None else None,
        "allocations": entries or None,
        "usedSlots": len(allocation.assigned) if allocation is not None else 0,
        "freeSlots": allocation.free if allocation is not None else 0,
        "nodes": nodes or None,
    }
    return fields, outcome


def _merged_node_states(uids: list[str], reports: Mapping[str, NodeReport]) -> list[dict[str, str]]:
    """The worst state per node over several objects (a gateway's interfaces)."""
    rank = {"Programmed": 0, "Pending": 1, "Failed": 2}
    merged: dict[str, dict[str, str]] = {}
    for uid in uids:
        for entry in node_states(uid, reports):
            before = merged.get(entry["name"])
            if before is None or rank[entry["state"]] > rank[before["state"]]:
                merged[entry["name"]] = entry
    return [merged[name] for name in sorted(merged)]


def vpc_status(vpc: VPC, topology: Topology, vni: int | None) -> tuple[Fields, Outcome]:
    problem = topology.problems.get(vpc.meta.uid)
    active = {peer for peer, _ in topology.peers.get(vni, ())} if vni is not None else set()
    peerings = []
    for peering in vpc.peerings:
        peer_vni = topology.vnis.get(peering.vpc)
        if peering.vpc not in topology.vpcs:
            state = "PeerNotFound"
        elif peer_vni is None:
            state = "WaitingForPeer"
        elif peer_vni in active:
            state = "Active"
        else:
            state = "WaitingForPeer"
        entry: dict[str, Any] = {"name": peering.vpc.name, "namespace": peering.vpc.namespace, "state": state}
        if peer_vni is not None:
            entry["vni"] = peer_vni
        peerings.append(entry)
    nodes = sorted(topology.nodes_serving([vni])) if vni is not None else []
    if problem is not None:
        outcome = outcome_of([], problem, "")
    elif vni is None:
        outcome = pending("WaitingForVNI", "No VNI allocated yet")
    else:
        message = f"VNI {vni}, in use on {_count(len(nodes), 'node')}"
        waiting = [f"{p['name']} ({p['state']})" for p in peerings if p["state"] != "Active"]
        if waiting:
            message += "; peerings not active: " + ", ".join(waiting)
        outcome = programmed(message)
    fields: Fields = {"vni": vni, "peerings": peerings or None, "nodes": nodes or None}
    return fields, outcome


def recorded_exports(kind: str, body: Mapping[str, Any]) -> dict[tuple[str, Export], str]:
    """Underlay addresses a previous run recorded in ``status`` (read leniently)."""
    uid = str(body.get("metadata", {}).get("uid", ""))
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    result: dict[tuple[str, Export], str] = {}

    def put(node: object, export: Export, address: object) -> None:
        if isinstance(node, str) and node and isinstance(address, str) and address:
            result[(node, export)] = address

    if kind == "NetworkInterface":
        node = spec.get("nodeName")
        put(node, Export(ExportKind.INTERFACE, uid), status.get("underlayRoute"))
        put(node, Export(ExportKind.VIP, uid), (status.get("virtualIP") or {}).get("underlayRoute"))
        put(node, Export(ExportKind.NAT, uid), (status.get("nat") or {}).get("underlayRoute"))
        for entry in status.get("prefixes") or ():
            put(node, Export(ExportKind.PREFIX, uid, str(entry.get("prefix"))), entry.get("underlayRoute"))
        for entry in status.get("loadBalancerTargets") or ():
            put(node, Export(ExportKind.LB_PREFIX, uid, str(entry.get("prefix"))), entry.get("underlayRoute"))
    elif kind == "LoadBalancer":
        for entry in status.get("nodes") or ():
            put(entry.get("name"), Export(ExportKind.LOAD_BALANCER, uid), entry.get("underlayRoute"))
    return result


def merge_exports(
    recorded: Mapping[tuple[str, Export], str], observed: Mapping[str, Mapping[Export, str]]
) -> Exports:
    """Observed addresses for nodes that have been observed; recorded ones for the others.

    Recorded addresses are canonicalised: the agents list canonical text, and planning compares
    addresses as text.
    """
    merged = {key: _canonical(address) for key, address in recorded.items() if key[0] not in observed}
    for node, exports in observed.items():
        for export, address in exports.items():
            merged[(node, export)] = address
    return merged


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def _with_underlay(entry: dict[str, Any], underlay: str | None) -> dict[str, Any]:
    if underlay:
        entry["underlayRoute"] = underlay
    return entry


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
