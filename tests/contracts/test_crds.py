"""The hand-written CRDs in crds/ are structural, documented, and agree with their samples and copies.

crds/*.yaml is the single source of the Kubernetes API (STYLE §7). The real API server judges the
schemas in tests/k8s/test_chart_install.py (it rejects non-structural schemas and CEL rules it cannot
compile or cost); these checks run without it and point at the exact node that is wrong: every
schema node typed, no `$ref`/`anyOf`/`oneOf`/`allOf`/`not`, list-map keys that can never be absent,
CEL rules with messages, printer columns that resolve, every field described here and in
docs/resources.md; each sample validates against its schema (jsonschema); the chart ships
byte-identical copies.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
SAMPLES_DIR = CRD_DIR / "samples"
CHART_CRD_DIR = ROOT / "charts" / "kubevpc" / "crds"
RESOURCES_DOC = ROOT / "docs" / "resources.md"

GROUP = "kubevpc.dev"
VERSION = "v1alpha1"
KINDS = {
    "VPC": "vpcs",
    "NetworkInterface": "networkinterfaces",
    "LoadBalancer": "loadbalancers",
    "NATGateway": "natgateways",
}
CONDITION_TYPES = ("Ready", "Progressing", "Degraded")
# Keywords a structural schema may not use at all here (apiextensions "structural schema" rules;
# pydantic-style exports use them, which is why the YAML is hand-written, STYLE §7).
FORBIDDEN_KEYWORDS = {"$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not"}
# Keywords whose value is a schema or a map of schemas (what the walk descends into).
TYPELESS_ALLOWED = {"x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}
# Short names of built-in resources (kubectl api-resources) ours must not shadow.
BUILTIN_SHORT_NAMES = frozenset(
    {
        "po",
        "svc",
        "no",
        "ns",
        "deploy",
        "ds",
        "sts",
        "rs",
        "rc",
        "cm",
        "ep",
        "ing",
        "netpol",
        "pv",
        "pvc",
        "sa",
        "crd",
        "hpa",
        "pdb",
        "pc",
        "sc",
        "ev",
        "limits",
        "quota",
        "cs",
        "csr",
    }
)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# --- loading ------------------------------------------------------------------------------------


def load_crd(kind: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((CRD_DIR / f"{GROUP}_{KINDS[kind]}.yaml").read_text())
    return crd


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its field path (`.spec.ips[]`), depth first."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def sample_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(SAMPLES_DIR.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                docs.append((f"{path.name}#{index}", doc))
    return docs


SAMPLES = sample_documents()


def format_checker() -> jsonschema.FormatChecker:
    """jsonschema's checker plus Kubernetes' `cidr` format (any parsable CIDR, as the API server)."""
    checker = jsonschema.FormatChecker()

    @checker.checks("cidr", raises=ValueError)
    def is_cidr(value: object) -> bool:
        if not isinstance(value, str) or "/" not in value:
            return False
        ipaddress.ip_network(value, strict=False)
        return True

    return checker


def validator_for(kind: str) -> jsonschema.protocols.Validator:
    schema = root_schema(load_crd(kind))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, format_checker=format_checker())  # type: ignore[no-any-return]


# --- the CRD files --------------------------------------------------------------------------------


def test_crd_dir_holds_the_four_kinds_and_the_kopf_peering_crd() -> None:
    names = sorted(path.name for path in CRD_DIR.glob("*.yaml"))
    expected = sorted([f"{GROUP}_{plural}.yaml" for plural in KINDS.values()])
    assert names == sorted([*expected, "kopf.dev_clusterkopfpeerings.yaml"])


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_version(kind: str) -> None:
    crd = load_crd(kind)
    plural = KINDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    spec = crd["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == kind
    assert names["plural"] == plural
    assert names["singular"] == kind.lower()
    assert names["listKind"] == f"{kind}List"
    assert names["shortNames"], "every kind has a short name"
    assert names["categories"] == ["kubevpc"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
    assert version["subresources"] == {"status": {}}


def test_short_names_are_unique_and_do_not_shadow_core_resources() -> None:
    short = [name for kind in KINDS for name in load_crd(kind)["spec"]["names"]["shortNames"]]
    assert len(short) == len(set(short))
    assert not set(short) & BUILTIN_SHORT_NAMES


# --- structural schema --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    schema = root_schema(load_crd(kind))
    assert schema["type"] == "object"
    assert schema["properties"]["metadata"] == {"type": "object"}
    problems = []
    for path, node in walk(schema):
        where = path or "<root>"
        if "type" not in node and not TYPELESS_ALLOWED & node.keys():
            problems.append(f"{where}: no type")
        if FORBIDDEN_KEYWORDS & node.keys():
            problems.append(f"{where}: uses {sorted(FORBIDDEN_KEYWORDS & node.keys())}")
        if node.get("type") == "object" and "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: both properties and additionalProperties")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        if (
            node.get("type") == "object"
            and path not in ("", ".metadata")
            and not (
                {"properties", "additionalProperties", "x-kubernetes-preserve-unknown-fields"} & node.keys()
            )
        ):
            problems.append(f"{where}: object without properties (would prune everything)")
    assert problems == []


@pytest.mark.parametrize("kind", KINDS)
def test_list_map_keys_are_required_or_defaulted_scalars(kind: str) -> None:
    for path, node in walk(root_schema(load_crd(kind))):
        if node.get("x-kubernetes-list-type") != "map":
            continue
        items = node["items"]
        for key in node["x-kubernetes-list-map-keys"]:
            field = items["properties"][key]
            assert field["type"] in ("string", "integer"), (path, key)
            assert key in items.get("required", []) or "default" in field, (path, key)


@pytest.mark.parametrize("kind", KINDS)
def test_every_cel_rule_has_a_readable_message(kind: str) -> None:
    rules = [
        (path, rule)
        for path, node in walk(root_schema(load_crd(kind)))
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert rules, "each kind has cross-field or transition rules"
    for path, rule in rules:
        assert rule["rule"].strip(), path
        message = rule.get("message", "")
        assert len(message) >= 10 and not message.endswith("."), (path, message)


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_is_described(kind: str) -> None:
    schema = root_schema(load_crd(kind))
    assert schema.get("description")
    missing = [
        path
        for path, node in walk(schema)
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not path.startswith(".status.conditions[].status")
        and not node.get("description")
    ]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_status_has_conditions_map_and_observed_generation(kind: str) -> None:
    status = root_schema(load_crd(kind))["properties"]["status"]["properties"]
    assert status["observedGeneration"]["type"] == "integer"
    assert status["observedGeneration"]["format"] == "int64"
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert set(item["properties"]) == {
        "type",
        "status",
        "observedGeneration",
        "lastTransitionTime",
        "reason",
        "message",
    }
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any] | None:
    """The schema node a printer-column JSONPath points at (filters like [?(...)] step into items)."""
    steps = re.sub(r"\[[^\]]*\]", "[]", json_path).lstrip(".").replace("[]", ".[]").split(".")
    node: dict[str, Any] | None = schema
    for step in steps:
        if node is None:
            return None
        if step == "[]":
            node = node.get("items")
        elif step == "creationTimestamp" and node.get("type") == "object" and "properties" not in node:
            node = {"type": "string", "format": "date-time"}  # metadata is typed by the API server
        else:
            node = node.get("properties", {}).get(step)
    return node


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_resolve_and_show_ready_and_age(kind: str) -> None:
    (version,) = load_crd(kind)["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    schema = root_schema(load_crd(kind))
    for column in columns:
        node = resolve(schema, column["jsonPath"])
        assert node is not None, column
        assert column["type"] in ("string", "integer", "date", "number", "boolean"), column
        if column["type"] == "integer":
            assert node["type"] == "integer", column
    by_name = {column["name"]: column for column in columns}
    assert by_name["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert by_name["Age"] == {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    assert list(by_name)[-1] == "Age"


EXPECTED_COLUMNS = {
    "VPC": {"VNI"},
    "NetworkInterface": {"VPC", "Node", "IPs", "Underlay", "State", "VNI"},
    "LoadBalancer": {"VPC", "Type", "IP", "Targets"},
    "NATGateway": {"VPC", "IPs", "Ports/NIC", "Used", "Free"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_include_the_useful_ones(kind: str) -> None:
    (version,) = load_crd(kind)["spec"]["versions"]
    assert EXPECTED_COLUMNS[kind] <= {column["name"] for column in version["additionalPrinterColumns"]}


def immutable_paths(kind: str) -> set[str]:
    """Field paths guarded by a `self == oldSelf` rule on the field, or a rule naming the field."""
    paths = set()
    for path, node in walk(root_schema(load_crd(kind))):
        for rule in node.get("x-kubernetes-validations", []):
            if "oldSelf" not in rule["rule"]:
                continue
            paths.add(path + rule.get("fieldPath", ""))
    return paths


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("VPC", {".spec.vni"}),
        (
            "NetworkInterface",
            {".spec.vpcRef", ".spec.nodeName", ".spec.device", ".spec.ips", ".spec.hostname", ".spec.pxe"},
        ),
        ("LoadBalancer", {".spec.vpcRef", ".spec.type", ".spec.ip"}),
        ("NATGateway", {".spec.vpcRef"}),
    ],
)
def test_immutable_fields_have_transition_rules(kind: str, fields: set[str]) -> None:
    assert immutable_paths(kind) == fields


def test_every_field_is_in_docs_resources_md() -> None:
    """Every spec/status property name appears in its kind's section of docs/resources.md."""
    doc = RESOURCES_DOC.read_text()
    sections = re.split(r"\n## ", doc)
    shared = sections[0] + "".join(s for s in sections if s.startswith("Conventions"))
    field_list = next(s for s in sections if s.startswith("Field list"))
    for kind in KINDS:
        section = next(s for s in sections if s.startswith(f"{kind}\n"))
        text = shared + section + field_list
        undocumented = sorted(
            {
                path
                for path, _ in walk(root_schema(load_crd(kind)))
                if path.startswith((".spec.", ".status."))
                and not path.endswith(("[]", "{}"))
                and not re.search(rf"\b{re.escape(path.rsplit('.', 1)[-1].rstrip('[]'))}\b", text)
            }
        )
        assert undocumented == [], kind


# --- samples ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "doc"), SAMPLES, ids=[where for where, _ in SAMPLES])
def test_sample_validates_against_its_schema(where: str, doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == f"{GROUP}/{VERSION}"
    assert doc["kind"] in KINDS
    assert "namespace" not in doc["metadata"], "samples apply to whichever namespace the user picks"
    assert DNS_SUBDOMAIN.match(doc["metadata"]["name"])
    assert "status" not in doc
    errors = sorted(validator_for(doc["kind"]).iter_errors(doc), key=lambda e: list(e.path))
    assert [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors] == []


@pytest.mark.parametrize(
    ("kind", "mutate", "field"),
    [
        ("VPC", lambda s: s.update(vni=0), "vni"),
        ("VPC", lambda s: s.update(vni=1 << 24), "vni"),
        ("NetworkInterface", lambda s: s.update(ips=[]), "ips"),
        ("NetworkInterface", lambda s: s.update(virtualIP="fd00::1"), "virtualIP"),
        ("NetworkInterface", lambda s: s["device"]["tap"].update(name="a-very-long-tap-name"), "name"),
        ("NetworkInterface", lambda s: s.pop("nodeName"), "nodeName"),
        ("LoadBalancer", lambda s: s.update(type="External"), "type"),
        ("LoadBalancer", lambda s: s.update(ports=[{"port": p} for p in range(1, 17)]), "ports"),
        ("NATGateway", lambda s: s.update(ips=["203.0.113.300"]), "0"),
        ("NATGateway", lambda s: s.update(portsPerNetworkInterface=65536), "portsPerNetworkInterface"),
    ],
)
def test_schema_rejects_a_broken_sample(kind: str, mutate: Any, field: str) -> None:
    """The sample check is not vacuous: a sample broken in one field fails at that field."""
    doc = copy.deepcopy(next(doc for _, doc in SAMPLES if doc["kind"] == kind))
    mutate(doc["spec"])
    errors = list(validator_for(kind).iter_errors(doc))
    assert errors
    assert any(str(e.path[-1]) == field or field in str(e.message) for e in errors if e.path), errors


def test_samples_form_the_documented_topology() -> None:
    """Two peered VPCs, NICs on three nodes, a public LB with targets, a NAT gateway with clients."""
    docs = [doc for _, doc in SAMPLES]
    by_kind: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    for doc in docs:
        name = doc["metadata"]["name"]
        assert name not in by_kind[doc["kind"]], f"duplicate {doc['kind']} {name}"
        by_kind[doc["kind"]][name] = doc
    vpcs, nics = by_kind["VPC"], by_kind["NetworkInterface"]
    assert len(vpcs) == 2
    for kind in ("NetworkInterface", "LoadBalancer", "NATGateway"):
        for doc in by_kind[kind].values():
            assert doc["spec"]["vpcRef"]["name"] in vpcs, doc["metadata"]["name"]

    # The peering is reciprocal, so it is active.
    for name, vpc in vpcs.items():
        peers = {p["vpcRef"]["name"] for p in vpc["spec"].get("peerings", [])}
        assert peers == set(vpcs) - {name}

    # NICs on node-a, node-b, node-c; both VPCs have NICs on two nodes at least; addresses unique.
    assert {nic["spec"]["nodeName"] for nic in nics.values()} == {"node-a", "node-b", "node-c"}
    for vpc in vpcs:
        nodes = {n["spec"]["nodeName"] for n in nics.values() if n["spec"]["vpcRef"]["name"] == vpc}
        assert len(nodes) >= 2, vpc
    addresses = [(n["spec"]["vpcRef"]["name"], ip) for n in nics.values() for ip in n["spec"]["ips"]]
    assert len(addresses) == len(set(addresses))

    def selected(selector: dict[str, Any], vpc: str) -> set[str]:
        found = set()
        for name, nic in nics.items():
            labels = nic["metadata"].get("labels", {})
            if nic["spec"]["vpcRef"]["name"] != vpc:
                continue
            if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
                continue
            expressions = selector.get("matchExpressions", [])
            if all(e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in expressions):
                found.add(name)
        return found

    (lb,) = by_kind["LoadBalancer"].values()
    assert lb["spec"]["type"] == "Public"
    targets = selected(lb["spec"]["targetSelector"], lb["spec"]["vpcRef"]["name"])
    assert len({nics[t]["spec"]["nodeName"] for t in targets}) >= 2, "LB targets on two nodes"

    (nat,) = by_kind["NATGateway"].values()
    served = {
        name
        for name in selected(nat["spec"].get("interfaceSelector", {}), nat["spec"]["vpcRef"]["name"])
        if "virtualIP" not in nics[name]["spec"]
    }
    assert len(served) >= 2
    assert any("virtualIP" in nic["spec"] for nic in nics.values())


def doc_examples() -> list[dict[str, Any]]:
    """The YAML examples in docs/resources.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", RESOURCES_DOC.read_text(), re.S)
    return [yaml.safe_load(block) for block in blocks]


def test_doc_examples_validate_against_their_schema() -> None:
    examples = doc_examples()
    assert examples
    for doc in examples:
        errors = [e.message for e in validator_for(doc["kind"]).iter_errors(doc)]
        assert errors == [], doc["metadata"]["name"]


# --- chart copies -------------------------------------------------------------------------------------


def test_chart_crds_are_byte_identical_copies() -> None:
    source = {path.name: path.read_bytes() for path in sorted(CRD_DIR.glob("*.yaml"))}
    copies = {path.name: path.read_bytes() for path in sorted(CHART_CRD_DIR.glob("*"))}
    hint = "run `cp crds/*.yaml charts/kubevpc/crds/` and commit"
    assert sorted(copies) == sorted(source), hint
    assert [name for name in source if copies[name] != source[name]] == [], hint
