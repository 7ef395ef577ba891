"""The Helm chart is consistent with itself and renders what we promise, checked with a real helm.

values.yaml is the source of the chart's configuration (STYLE §7): every key is commented, the
comments generate the README values table, values.schema.json accepts exactly its keys (and every
ci/ scenario), and every `.Values.x.y` a template reads exists in it (cert-manager's
verify-helm-values idea). The rendered RBAC is least privilege; the rendered workloads keep their
security promises (host network and only the capabilities the agent needs, a non-root read-only
operator, gRPC on loopback unless mutual TLS is configured), and the agent's own command-line parser
accepts the rendered arguments. `helm lint` and `helm template` run with each ci/*-values.yaml
through the helm that hack/k8s-tools.sh builds.

Regenerate the README table after editing values.yaml comments:
    python tests/contracts/test_chart.py --write-readme
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevpc"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"
README = CHART / "README.md"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
TEMPLATES = sorted((CHART / "templates").glob("*"))
CRD_DIR = ROOT / "crds"
KUBE_VERSION = "1.36.0"  # what hack/k8s-tools.sh builds; the chart needs >= 1.31
NAMESPACE = "kubevpc-system"
RELEASE = "kubevpc"
TABLE_START, TABLE_END = "<!-- values-table:start -->", "<!-- values-table:end -->"
AGENT_CAPABILITIES = {"NET_ADMIN", "NET_RAW", "BPF", "IPC_LOCK", "SYS_ADMIN"}


# --- values.yaml, its comments and the schema -------------------------------------------------------


def load_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(VALUES.read_text())
    return values


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a -f file over values.yaml (maps merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def is_closed(schema: dict[str, Any]) -> bool:
    """A section of ours (fixed keys, each documented) rather than a Kubernetes-shaped free value."""
    return schema.get("type") == "object" and schema.get("additionalProperties") is False


def documented_keys(
    schema: dict[str, Any], values: dict[str, Any] | None = None, prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(dotted key, its schema, is it a table row) for every key of the closed sections.

    In values.yaml order (then any key only the schema has), so the README reads like the file.
    """
    values = load_values() if values is None else values
    properties = schema.get("properties", {})
    for name in [*values, *(name for name in properties if name not in values)]:
        child = properties.get(name, {})
        path = f"{prefix}{name}"
        yield path, child, not is_closed(child)
        if is_closed(child):
            yield from documented_keys(child, values.get(name) or {}, f"{path}.")


def value_comments() -> dict[str, str]:
    """Dotted key -> the comment block directly above it in values.yaml."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    for line in VALUES.read_text().splitlines():
        stripped = line.strip()
        if not stripped:
            block = []
            continue
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if match is None:  # a list item or a continuation line
            block = []
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        comments[".".join(key for _, key in stack)] = " ".join(block)
        block = []
    return comments


def lookup(values: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def values_table() -> str:
    """The README's values table, generated from values.yaml (defaults, comments) and the schema."""
    values, comments = load_values(), value_comments()
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, schema, is_row in documented_keys(load_schema()):
        if not is_row:
            continue
        _, default = lookup(values, key)
        kind = schema.get("type", "")
        kind = "/".join(kind) if isinstance(kind, list) else kind
        shown = json.dumps(default, separators=(",", ":"))
        description = comments.get(key, "").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{key}` | {kind} | `{shown}` | {description} |")
    return "\n".join(rows)


def readme_table() -> str:
    text = README.read_text()
    return text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()


def schema_validator() -> jsonschema.protocols.Validator:
    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=jsonschema.FormatChecker())  # type: ignore[no-any-return]


def test_values_yaml_validates_against_the_schema() -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in schema_validator().iter_errors(load_values())]
    assert errors == []


@pytest.mark.parametrize("ci_file", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_ci_values_validate_against_the_schema(ci_file: Path) -> None:
    override = yaml.safe_load(ci_file.read_text()) or {}
    merged = deep_merge(load_values(), override)
    errors = [f"{list(e.path)}: {e.message}" for e in schema_validator().iter_errors(merged)]
    assert errors == []


def test_ci_scenarios_exist() -> None:
    names = {p.name for p in CI_VALUES}
    assert "default-values.yaml" in names
    assert len(names) >= 3


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"agent": {"grpc": {"port": 80}}}, "port"),
        ({"agent": {"dataplane": {"nicType": "virtio"}}}, "nicType"),
        ({"agent": {"dataplane": {"dhcpDns": ["fd00::53"]}}}, "dhcpDns"),
        ({"operator": {"logLevel": "verbose"}}, "logLevel"),
        ({"operator": {"replicas": 2}}, "operator"),  # a typo of replicaCount
        ({"image": {"digest": "latest"}}, "digest"),
    ],
)
def test_schema_rejects_wrong_values(override: dict[str, Any], where: str) -> None:
    errors = list(schema_validator().iter_errors(deep_merge(load_values(), override)))
    assert errors
    assert any(where in "/".join(map(str, e.path)) or where in e.message for e in errors), errors


def test_schema_and_values_have_the_same_keys() -> None:
    values = load_values()
    for key, _, _ in documented_keys(load_schema()):
        assert lookup(values, key)[0], f"{key} is in values.schema.json but not in values.yaml"


def test_every_values_key_is_commented() -> None:
    comments = value_comments()
    missing = [key for key, _, _ in documented_keys(load_schema()) if len(comments.get(key, "")) < 10]
    assert missing == []


def test_readme_values_table_is_generated_from_values_yaml() -> None:
    assert readme_table() == values_table(), "run `python tests/contracts/test_chart.py --write-readme`"


def referenced_values(template: str) -> set[str]:
    """Every .Values path a template reads, following `$x := .Values.a.b` aliases."""
    paths = set(re.findall(r"\.Values((?:\.[A-Za-z0-9_]+)+)", template))
    aliases = dict(re.findall(r"\$([A-Za-z0-9_]+)\s*:=\s*\.Values((?:\.[A-Za-z0-9_]+)+)", template))
    for name, rest in re.findall(r"\$([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+)+)", template):
        if name in aliases:
            paths.add(aliases[name] + rest)
    return {path.lstrip(".") for path in paths}


def test_every_value_a_template_reads_exists_in_values_yaml() -> None:
    values = load_values()
    seen: dict[str, list[str]] = {}
    for template in TEMPLATES:
        for path in referenced_values(template.read_text()):
            seen.setdefault(path, []).append(template.name)
    assert len(seen) > 30, "the regex found too few references to be trusted"
    missing = {path: files for path, files in seen.items() if not lookup(values, path)[0]}
    assert missing == {}


def test_every_documented_value_is_used_by_a_template() -> None:
    used = set().union(*(referenced_values(t.read_text()) for t in TEMPLATES))
    unused = [
        key
        for key, _, is_row in documented_keys(load_schema())
        if is_row and not any(u == key or u.startswith(key + ".") or key.startswith(u + ".") for u in used)
    ]
    assert unused == []


# --- helm -------------------------------------------------------------------------------------------------


class Helm:
    """The helm of hack/k8s-tools.sh with private config, cache and data dirs."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=120, check=False, env=self.env
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    from testkit.k8s_env import ToolsMissingError, find_tool

    try:
        binary = find_tool("helm")
    except ToolsMissingError as error:
        if os.environ.get("CI") or os.environ.get("KUBEVPC_REQUIRE_ALL_TIERS") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))
    return Helm(binary, tmp_path_factory.mktemp("helm-home"))


def render(helm: Helm, *values_args: str) -> list[dict[str, Any]]:
    out = helm.run(
        "template",
        RELEASE,
        str(CHART),
        f"--namespace={NAMESPACE}",
        f"--kube-version={KUBE_VERSION}",
        *values_args,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def objects_by_kind(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc)
    return found


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = objects_by_kind(docs)[kind]
    return obj


@pytest.mark.parametrize("ci_file", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_helm_lint_passes(helm: Helm, ci_file: Path) -> None:
    result = helm.run("lint", "--strict", str(CHART), "-f", str(ci_file), f"--kube-version={KUBE_VERSION}")
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("ci_file", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_helm_template_renders_every_scenario(helm: Helm, ci_file: Path) -> None:
    docs = render(helm, "-f", str(ci_file))
    kinds = objects_by_kind(docs)
    for kind in ("Deployment", "DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role"):
        assert kind in kinds, kind
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]
    values = deep_merge(load_values(), yaml.safe_load(ci_file.read_text()) or {})
    check_agent(one(docs, "DaemonSet"), values)
    check_operator(one(docs, "Deployment"), values)
    assert ("ServiceMonitor" in kinds) == values["metrics"]["serviceMonitor"]["enabled"]
    assert ("ClusterKopfPeering" in kinds) == values["operator"]["peering"]["enabled"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def check_agent(daemonset: dict[str, Any], values: dict[str, Any]) -> None:
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == values["agent"]["nodeSelector"]
    assert pod["nodeSelector"], "the agent runs on labelled dataplane nodes only"
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    added = set(security["capabilities"]["add"])
    assert {"NET_ADMIN", "NET_RAW"} <= added <= AGENT_CAPABILITIES
    assert ("BPF" in added) == values["agent"]["xdp"]["enabled"]
    assert ("SYS_ADMIN" in added) == (
        values["agent"]["xdp"]["enabled"] and values["agent"]["xdp"]["sysAdmin"]
    )
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["dev-net-tun"]["mountPath"] == "/dev/net/tun"
    assert volumes["dev-net-tun"]["hostPath"] == {"path": "/dev/net/tun", "type": "CharDevice"}
    assert mounts["host-config"]["readOnly"] is True
    hostpaths = {v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v}
    assert hostpaths == {"/dev/net/tun", values["agent"]["hostConfigDir"]}

    args = container["args"]
    port = values["agent"]["grpc"]["port"]
    tls = values["agent"]["grpc"]["tls"]
    if tls["enabled"]:
        assert f"--grpc-listen=[::]:{port}" in args
        for flag, file in (("cert", "tls.crt"), ("key", "tls.key"), ("ca", "ca.crt")):
            assert f"--tls-{flag}=/etc/kubevpc/agent-server/{file}" in args
        assert volumes["agent-server-tls"]["secret"]["secretName"] == tls["serverSecretName"]
    else:
        assert f"--grpc-listen=127.0.0.1:{port}" in args, "gRPC stays on loopback without mutual TLS"
        assert not any(a.startswith("--tls-") for a in args)
        assert "agent-server-tls" not in volumes
    assert args[0] == f"--config={values['agent']['hostConfigDir'].rstrip('/')}/agent.yaml", "node file first"
    for extra in values["agent"]["extraArgs"]:
        assert extra in args


def check_operator(deployment: dict[str, Any], values: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == values["operator"]["replicaCount"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod.get("hostNetwork") is not True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = env_of(container)
    assert env["KUBEVPC_AGENT_PORT"] == str(values["agent"]["grpc"]["port"])
    assert env["KUBEVPC_AGENT_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    selector = dict(pair.split("=") for pair in env["KUBEVPC_AGENT_SELECTOR"].split(","))
    assert selector["app.kubernetes.io/component"] == "agent"
    assert selector["app.kubernetes.io/instance"] == RELEASE
    tls = values["agent"]["grpc"]["tls"]
    assert ("KUBEVPC_TLS_CERT" in env) == tls["enabled"]
    assert bool(env["KUBEVPC_PEERING"]) == values["operator"]["peering"]["enabled"]
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert ("agent-client-tls" in mounts) == tls["enabled"]


@pytest.mark.parametrize("ci_file", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_operator_config_accepts_the_rendered_environment(helm: Helm, ci_file: Path) -> None:
    """The Deployment's env goes through the operator's own Settings and configures what values asked."""
    from kubevpc_operator.config import Settings

    values = deep_merge(load_values(), yaml.safe_load(ci_file.read_text()) or {})
    (container,) = one(render(helm, "-f", str(ci_file)), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {name: value for name, value in env_of(container).items() if isinstance(value, str)}
    settings = Settings.from_env(env)

    assert settings.discovery, "in-cluster: agents are found from their pods"
    assert settings.agent_port == values["agent"]["grpc"]["port"]
    assert settings.selector_labels()["app.kubernetes.io/instance"] == RELEASE
    tls = values["agent"]["grpc"]["tls"]
    assert (settings.tls is not None) == tls["enabled"]
    if settings.tls is not None:
        assert settings.tls.server_name == tls["serverName"]
    assert (settings.peering is not None) == values["operator"]["peering"]["enabled"]
    if settings.peering is not None:
        assert settings.priority is not None, "a random priority, so one replica leads"
    assert settings.peering_lifetime == values["operator"]["peering"]["lifetime"]
    assert settings.liveness == f"http://0.0.0.0:{values['operator']['healthPort']}/healthz"
    assert settings.resync_interval == values["operator"]["resyncInterval"]
    assert settings.namespaces == (), "the operator watches every namespace (the RBAC is cluster-wide)"


NODE_AGENT_YAML = """\
# What node provisioning writes to <agent.hostConfigDir>/agent.yaml on one node.
ports:
  - {ifname: uplink0, driver: netdev}
  - {ifname: vf0, driver: netdev}
pf0: uplink0
vf-pattern: vf
ipv6: "fd00:100::1"
"""


@pytest.mark.parametrize("ci_file", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_agent_cli_accepts_the_rendered_arguments(helm: Helm, ci_file: Path, tmp_path: Path) -> None:
    """The DaemonSet's args go through the agent's own parser and configure what values asked."""
    from kubevpc_agent.cmdline import parse_command_line

    values = deep_merge(load_values(), yaml.safe_load(ci_file.read_text()) or {})
    (container,) = one(render(helm, "-f", str(ci_file)), "DaemonSet")["spec"]["template"]["spec"][
        "containers"
    ]
    node_file = tmp_path / "agent.yaml"
    node_file.write_text(NODE_AGENT_YAML)
    args = [f"--config={node_file}" if a.startswith("--config=") else a for a in container["args"]]
    config = parse_command_line(args, environ={})

    agent = values["agent"]
    assert [port.ifname for port in config.ports] == ["uplink0", "vf0"]  # from the node's file
    assert str(config.underlay_ipv6) == "fd00:100::1"
    port, tls = agent["grpc"]["port"], agent["grpc"]["tls"]
    assert config.grpc_listen == (f"[::]:{port}" if tls["enabled"] else f"127.0.0.1:{port}")
    assert bool(config.grpc_tls_ca) == tls["enabled"]
    metrics = agent["metrics"]
    assert config.metrics_listen == (f"0.0.0.0:{metrics['port']}" if metrics["enabled"] else "")
    dataplane = agent["dataplane"]
    assert config.nic_type.value == dataplane["nicType"]
    assert config.offload == dataplane["offload"]
    assert config.dhcp_mtu == dataplane["dhcpMtu"]
    assert [str(ip) for ip in config.dhcp_dns] == dataplane["dhcpDns"]
    assert [str(ip) for ip in config.dhcpv6_dns] == dataplane["dhcpv6Dns"]
    assert config.enable_ipv6_overlay == dataplane["enableIpv6Overlay"]
    assert config.log_format == agent["logFormat"]


def test_agent_selector_matches_the_agent_pods(helm: Helm) -> None:
    docs = render(helm)
    env = env_of(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    selector = dict(pair.split("=") for pair in env["KUBEVPC_AGENT_SELECTOR"].split(","))
    pod_labels = one(docs, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    operator_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= operator_labels.items()


def test_default_image_is_the_chart_app_version(helm: Helm) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    docs = render(helm)
    for kind in ("Deployment", "DaemonSet"):
        (container,) = one(docs, kind)["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{load_values()['image']['repository']}:{chart['appVersion']}"


def test_peering_object_matches_the_operator_setting(helm: Helm) -> None:
    docs = render(helm)
    peering = one(docs, "ClusterKopfPeering")
    env = env_of(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    assert env["KUBEVPC_PEERING"] == peering["metadata"]["name"]
    rules = one(docs, "ClusterRole")["rules"]
    assert any(
        "clusterkopfpeerings" in r["resources"] and r.get("resourceNames") == [peering["metadata"]["name"]]
        for r in rules
    )
    standalone = render(helm, "--set", "operator.peering.enabled=false")
    assert "ClusterKopfPeering" not in objects_by_kind(standalone)
    assert not any("kopf.dev" in r["apiGroups"] for r in one(standalone, "ClusterRole")["rules"]), (
        "no peering permissions when standalone"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "operator.replicaCount=2", "--set", "operator.peering.enabled=false"], "peering"),
        (["--set", "agent.grpc.tls.enabled=true"], "serverSecretName"),
        (
            ["--set", "agent.grpc.tls.enabled=true", "--set", "agent.grpc.tls.serverSecretName=s"],
            "clientSecretName",
        ),
        (
            ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"],
            "Service",
        ),
        (["--set", "agent.bogus=1"], "bogus"),
        (["--set", "agent.dataplane.dhcpMtu=9000"], "dhcpMtu"),
    ],
)
def test_broken_values_fail_with_a_readable_message(helm: Helm, args: list[str], message: str) -> None:
    result = helm.run("template", RELEASE, str(CHART), f"--kube-version={KUBE_VERSION}", *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr


# --- RBAC ---------------------------------------------------------------------------------------


def crd_plurals() -> list[str]:
    plurals = []
    for path in sorted(CRD_DIR.glob("kubevpc.dev_*.yaml")):
        plurals.append(yaml.safe_load(path.read_text())["spec"]["names"]["plural"])
    return plurals


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(scope="module")
def rbac(helm: Helm) -> dict[str, set[tuple[str, str, str]]]:
    docs = render(helm, "-f", str(CHART / "ci" / "default-values.yaml"))
    kinds = objects_by_kind(docs)
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        (binding,) = kinds[binding_kind]
        assert binding["roleRef"]["kind"] == role_kind
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": NAMESPACE}
        ]
    return {
        "cluster": grants(one(docs, "ClusterRole")["rules"]),
        "namespace": grants(one(docs, "Role")["rules"]),
    }


def test_rbac_covers_each_kind_its_status_and_finalizers(rbac: dict[str, set[tuple[str, str, str]]]) -> None:
    cluster = rbac["cluster"]
    plurals = crd_plurals()
    assert len(plurals) == 4
    for plural in plurals:
        for verb in ("get", "list", "watch", "patch"):
            assert ("kubevpc.dev", plural, verb) in cluster, (plural, verb)
        assert ("kubevpc.dev", f"{plural}/status", "patch") in cluster
        assert ("kubevpc.dev", f"{plural}/finalizers", "update") in cluster
    assert ("", "events", "create") in cluster
    assert ("", "pods", "watch") in rbac["namespace"], "agent discovery in the release namespace"
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "watch") in cluster


def test_rbac_is_least_privilege(rbac: dict[str, set[tuple[str, str, str]]]) -> None:
    everything = rbac["cluster"] | rbac["namespace"]
    assert not any("*" in field for triple in everything for field in triple)
    resources = {resource for _, resource, _ in everything}
    assert not resources & {"secrets", "configmaps", "serviceaccounts", "roles", "clusterroles"}
    writes = {(g, r, v) for g, r, v in everything if v not in ("get", "list", "watch")}
    allowed_writes = (
        {("", "events", "create")}
        | {
            ("kubevpc.dev", resource, verb)
            for plural in crd_plurals()
            for resource, verb in (
                (plural, "patch"),
                (f"{plural}/status", "patch"),
                (f"{plural}/finalizers", "update"),
            )
        }
        | {("kopf.dev", "clusterkopfpeerings", "patch")}
    )
    assert writes <= allowed_writes, writes - allowed_writes
    assert ("", "pods", "list") not in rbac["cluster"], "pods are read in the release namespace only"


def test_rbac_rules_are_grouped_framework_then_application() -> None:
    text = (CHART / "templates" / "rbac.yaml").read_text()
    framework = [m.start() for m in re.finditer(r"# Framework:", text)]
    application = [m.start() for m in re.finditer(r"# Application:", text)]
    assert framework and application
    cluster_role = text.split("kind: ClusterRoleBinding")[0]
    assert max(m.start() for m in re.finditer("# Framework:", cluster_role)) < min(
        m.start() for m in re.finditer("# Application:", cluster_role)
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-readme"]:
        sys.exit(f"usage: python {sys.argv[0]} --write-readme")
    text = README.read_text()
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{values_table()}\n{TABLE_END}{tail}")
    print(f"wrote the values table into {README.relative_to(ROOT)}")
