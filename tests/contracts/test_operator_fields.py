"""The operator reads and writes only fields the CRD schemas define.

The CRDs (crds/*.yaml) are the source of truth. Three checks per kind:
- every path a model reads (recorded by its BodyReader on the samples and on a body that sets
  every field) is declared in the model's ``FIELDS``;
- every declared path exists in the CRD schema;
- every status path the operator writes (from a fully populated report) exists in the schema, so
  the API server never prunes it (a pruned field would be re-written on every reconcile).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevpc_operator import conditions
from kubevpc_operator.models import VPC, LoadBalancer, NATGateway, NetworkInterface
from kubevpc_operator.models import load_balancer as lb_module
from kubevpc_operator.models import nat_gateway as natgw_module
from kubevpc_operator.models import network_interface as nic_module
from kubevpc_operator.models import vpc as vpc_module
from kubevpc_operator.models.cluster import ClusterView, Node
from kubevpc_operator.models.common import BodyReader
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.planning.nat import NatAllocation
from kubevpc_operator.planning.report import (
    interface_status,
    load_balancer_status,
    nat_gateway_status,
    vpc_status,
)
from kubevpc_operator.planning.state import Export, ExportKind
from kubevpc_operator.planning.topology import resolve_topology
from testkit import operator_objects as objects

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"

KINDS = {
    "VPC": ("kubevpc.dev_vpcs.yaml", VPC, vpc_module.FIELDS),
    "NetworkInterface": ("kubevpc.dev_networkinterfaces.yaml", NetworkInterface, nic_module.FIELDS),
    "LoadBalancer": ("kubevpc.dev_loadbalancers.yaml", LoadBalancer, lb_module.FIELDS),
    "NATGateway": ("kubevpc.dev_natgateways.yaml", NATGateway, natgw_module.FIELDS),
}


def schema_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    if prefix:
        yield prefix
    for name, child in (node.get("properties") or {}).items():
        yield from schema_paths(child, f"{prefix}.{name}" if prefix else name)
    if "items" in node:
        yield from schema_paths(node["items"], f"{prefix}[]")


def crd_paths(kind: str) -> set[str]:
    crd = yaml.safe_load((CRDS / KINDS[kind][0]).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return set(schema_paths(schema))


def samples(kind: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((CRDS / "samples").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == kind:
                document.setdefault("metadata", {}).setdefault("uid", f"uid-{document['metadata']['name']}")
                found.append(document)
    return found


def full_bodies(kind: str) -> list[dict[str, Any]]:
    """Bodies that set every field the model knows, so the reader visits every path."""
    selector = {
        "matchLabels": {"a": "b"},
        "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}],
    }
    if kind == "VPC":
        body = objects.vpc(
            "a", vni=7, peerings=[{"vpcRef": {"name": "b", "namespace": "other"}, "prefixes": ["10.0.0.0/8"]}]
        )
        body["status"] = {"vni": 7}
        return [body]
    if kind == "NetworkInterface":
        rules = [
            {
                "name": "t",
                "direction": "Ingress",
                "action": "Accept",
                "priority": 5,
                "ipFamily": "IPv4",
                "sourcePrefix": "10.0.0.0/8",
                "destinationPrefix": "10.0.0.0/8",
                "protocol": "TCP",
                "sourcePorts": {"from": 1, "to": 2},
                "destinationPorts": {"from": 3, "to": 4},
            },
            {"name": "i", "direction": "Egress", "protocol": "ICMP", "icmp": {"type": 8, "code": 0}},
        ]
        tap = objects.nic(
            "n",
            ips=["10.0.0.1", "fd00::1"],
            virtualIP="203.0.113.1",
            prefixes=["10.9.0.0/24"],
            hostname="h",
            pxe={"server": "fd00::2", "bootFilename": "b"},
            firewallRules=rules,
        )
        vf = objects.nic("v", vf="vf0")
        vf["spec"]["device"] = {"vf": {"pciAddress": "0000:3b:00.2"}}
        return [tap, vf]
    if kind == "LoadBalancer":
        return [objects.load_balancer("l", targets={"a": "b"}, type="Internal", nodeSelector=selector)]
    body = objects.nat_gateway("g", ports=1024, interfaceSelector=selector)
    body["status"] = {
        "allocations": [{"networkInterface": "n", "ip": "203.0.113.1", "minPort": 1024, "maxPort": 2048}]
    }
    return [body]


def normalise(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


@pytest.mark.parametrize("kind", KINDS)
def test_model_reads_only_declared_fields(kind: str) -> None:
    _, model, declared = KINDS[kind]
    bodies = samples(kind) + full_bodies(kind)
    assert bodies
    read: set[str] = set()
    for body in bodies:
        reader = BodyReader(body)
        model.read(reader)
        read |= reader.paths

    # A container read on the way to a declared field (spec.ips for spec.ips[]) counts as declared.
    def is_declared(path: str) -> bool:
        return any(d == path or d.startswith((path + ".", path + "[]")) for d in declared)

    undeclared = {p for p in read if not p.startswith("metadata.") and not is_declared(p)}
    assert not undeclared, f"{kind}: read but not in FIELDS: {sorted(undeclared)}"


@pytest.mark.parametrize("kind", KINDS)
def test_declared_fields_exist_in_the_crd(kind: str) -> None:
    missing = set(KINDS[kind][2]) - crd_paths(kind)
    assert not missing, f"{kind}: not in crds/{KINDS[kind][0]}: {sorted(missing)}"


def written_paths(value: Any, prefix: str) -> Iterator[str]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from written_paths(child, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from written_paths(item, f"{prefix}[]")


@dataclasses.dataclass(frozen=True)
class Report:
    node: str
    owners: frozenset[str]
    exports: dict[Export, str]

    def state_of(self, uid: str) -> tuple[str, str]:
        return "Failed", "because"


def populated_statuses() -> dict[str, dict[str, Any]]:
    """A status of each kind with every optional field present."""
    vpc_a = VPC.from_body(objects.vpc("a", vni=1, peerings=[{"vpcRef": {"name": "b"}}]))
    vpc_b = VPC.from_body(objects.vpc("b", vni=2, peerings=[{"vpcRef": {"name": "a"}}]))
    nic = NetworkInterface.from_body(
        objects.nic(
            "n",
            vpc="a",
            node="node-a",
            ips=["10.0.0.1"],
            virtualIP="203.0.113.1",
            prefixes=["10.9.0.0/24"],
            labels={"app": "web"},
        )
    )
    plain = NetworkInterface.from_body(objects.nic("m", vpc="a", node="node-b", ips=["10.0.0.2"], tap="t2"))
    lb = LoadBalancer.from_body(objects.load_balancer("l", vpc="a", targets={"app": "web"}))
    gw = NATGateway.from_body(objects.nat_gateway("g", vpc="a", ips=["203.0.113.9"]))
    view = ClusterView(
        vpcs=(vpc_a, vpc_b),
        interfaces=(nic, plain),
        load_balancers=(lb,),
        nat_gateways=(gw,),
        nodes=(Node("node-a"), Node("node-b")),
    )
    topology = resolve_topology(view)
    exports = {
        Export(ExportKind.INTERFACE, nic.uid): "fc00::1",
        Export(ExportKind.VIP, nic.uid): "fc00::2",
        Export(ExportKind.NAT, nic.uid): "fc00::3",
        Export(ExportKind.PREFIX, nic.uid, "10.9.0.0/24"): "fc00::4",
        Export(ExportKind.LB_PREFIX, nic.uid, "10.0.100.1/32"): "fc00::5",
        Export(ExportKind.LOAD_BALANCER, lb.uid): "fc00::6",
        Export(ExportKind.NAT, plain.uid): "fc00::7",
    }
    owners = frozenset({nic.uid, plain.uid, lb.uid})
    reports = {"node-a": Report("node-a", owners, exports), "node-b": Report("node-b", owners, exports)}
    slot = NatSlot(ipaddress.IPv4Address("203.0.113.9"), 1024, 3072)
    allocation = NatAllocation({"m": slot}, ("x",), capacity=31)
    outcome = conditions.programmed()
    statuses = {}
    fields, _ = interface_status(nic, topology, reports, nat=("g", slot), device_name="tap0")
    statuses["NetworkInterface"] = conditions.build_status({}, 1, outcome, fields, now="2026-01-01T00:00:00Z")
    fields, _ = load_balancer_status(lb.uid, topology, reports)
    statuses["LoadBalancer"] = conditions.build_status({}, 1, outcome, fields, now="2026-01-01T00:00:00Z")
    fields, _ = nat_gateway_status(gw.uid, topology, allocation, reports)
    statuses["NATGateway"] = conditions.build_status({}, 1, outcome, fields, now="2026-01-01T00:00:00Z")
    fields, _ = vpc_status(vpc_a, topology, 1)
    statuses["VPC"] = conditions.build_status({}, 1, outcome, fields, now="2026-01-01T00:00:00Z")
    return statuses


@pytest.mark.parametrize("kind", KINDS)
def test_written_status_fields_exist_in_the_crd(kind: str) -> None:
    status = populated_statuses()[kind]
    written = {
        normalise(p) for p in written_paths({k: v for k, v in status.items() if v is not None}, "status")
    }
    # Every optional part is exercised, so a missing path is a real drift.
    expected_leaves = {
        "VPC": "status.peerings[].vni",
        "NetworkInterface": "status.loadBalancerTargets[].underlayRoute",
        "LoadBalancer": "status.targets[].underlayRoute",
        "NATGateway": "status.allocations[].underlayRoute",
    }
    assert expected_leaves[kind] in written
    missing = written - crd_paths(kind)
    assert not missing, (
        f"{kind}: status fields not in the CRD (the API server would prune them): {sorted(missing)}"
    )
