"""The chart installs into a real kube-apiserver, and its CRDs and RBAC behave there as promised.

`helm install` the chart (no kubelet: no pod ever runs, but the API server validates and stores
every object, including the pod templates), then check what users and the operator will meet:
the CRDs are established with their short names; the samples are accepted and defaulted; invalid
objects are rejected with readable messages from the schema and from the CEL rules, including the
immutability transition rules; `kubectl get` prints the useful columns; status is a subresource;
and the operator's ServiceAccount can do exactly what rbac.yaml says, checked with
`kubectl auth can-i` and with a real token of that ServiceAccount. `helm uninstall` at the end.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit.e2e import ChartRelease
from testkit.k8s_env import KubeControlPlane, ToolsMissingError, find_tool

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevpc"
SAMPLES = ROOT / "crds" / "samples"
GROUP = "kubevpc.dev"
PLURALS = ("vpcs", "networkinterfaces", "loadbalancers", "natgateways")
CRD_NAMES = [f"{plural}.{GROUP}" for plural in PLURALS] + ["clusterkopfpeerings.kopf.dev"]


@pytest.fixture(scope="module")
def release(kube: KubeControlPlane) -> Iterator[ChartRelease]:
    """The chart installed with ci/default-values.yaml under a unique release name (cluster-scoped
    objects such as the ClusterRole and the ClusterKopfPeering are named after the release)."""
    try:
        find_tool("helm")
    except ToolsMissingError as error:
        if os.environ.get("CI") or os.environ.get("KUBEVPC_REQUIRE_ALL_TIERS") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))
    values = yaml.safe_load((CHART / "ci" / "default-values.yaml").read_text()) or {}
    installed = ChartRelease.install(kube, values)
    yield installed
    installed.uninstall()


@pytest.fixture(scope="module")
def tenant(kube: KubeControlPlane, release: ChartRelease) -> str:
    """A namespace holding the samples (applied once the CRDs are established)."""
    for name in CRD_NAMES:
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    namespace = kube.create_namespace("tenant")
    kube.kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    return namespace


def get_json(kube: KubeControlPlane, *args: str) -> Any:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


# --- install ----------------------------------------------------------------------------------------


def test_release_is_deployed(release: ChartRelease) -> None:
    status = json.loads(release.helm("status", release.name, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    assert "kubevpc.dev/dataplane=true" in status["info"]["notes"]


def test_crds_are_established_with_their_names(kube: KubeControlPlane, release: ChartRelease) -> None:
    for name in CRD_NAMES:
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
        crd = get_json(kube, "crd", name)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["NamesAccepted"] == "True", name
    resources = kube.kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").stdout
    for line in ("vpcs", "networkinterfaces", "loadbalancers", "natgateways"):
        assert line in resources
    for short in ("kvpc", "nic", "vlb", "natgw"):
        assert short in resources
    assert resources.count("kubevpc") >= 4  # the category


def test_workloads_rbac_and_service_accounts_exist(kube: KubeControlPlane, release: ChartRelease) -> None:
    ns, full = release.namespace, release.fullname
    deployment = get_json(kube, "deployment", f"{full}-operator", "-n", ns)
    daemonset = get_json(kube, "daemonset", f"{full}-agent", "-n", ns)
    for kind, name in (
        ("serviceaccount", f"{full}-operator"),
        ("serviceaccount", f"{full}-agent"),
        ("role", f"{full}-operator"),
        ("rolebinding", f"{full}-operator"),
        ("service", f"{full}-agent-metrics"),
    ):
        assert get_json(kube, kind, name, "-n", ns)["metadata"]["name"] == name
    for kind in ("clusterrole", "clusterrolebinding"):
        assert get_json(kube, kind, f"{full}-operator")["metadata"]["name"] == f"{full}-operator"
    assert get_json(kube, "clusterkopfpeering", full)["metadata"]["name"] == full

    # What the API server stored (after its own validation and defaulting of the pod templates).
    agent_pod = daemonset["spec"]["template"]["spec"]
    assert agent_pod["hostNetwork"] is True
    (agent,) = agent_pod["containers"]
    assert set(agent["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    assert "--grpc-listen=127.0.0.1:1337" in agent["args"]
    operator_pod = deployment["spec"]["template"]["spec"]
    assert operator_pod["serviceAccountName"] == f"{full}-operator"
    assert operator_pod["securityContext"]["runAsNonRoot"] is True


# --- the samples and kubectl get ---------------------------------------------------------------------


def test_samples_are_accepted_and_defaulted(kube: KubeControlPlane, tenant: str) -> None:
    expected = {
        "vpc": {"blue", "green"},
        "nic": {"blue-web-1", "blue-web-2", "blue-bastion", "green-app-1", "green-app-2"},
        "vlb": {"blue-web"},
        "natgw": {"blue-egress"},
    }
    for short, names in expected.items():
        items = get_json(kube, short, "-n", tenant)["items"]
        assert {item["metadata"]["name"] for item in items} == names, short

    web = get_json(kube, "nic", "blue-web-1", "-n", tenant)
    rules = {rule["name"]: rule for rule in web["spec"]["firewallRules"]}
    assert rules["http-in"]["action"] == "Accept"
    assert rules["http-in"]["priority"] == 1000
    assert rules["http-in"]["ipFamily"] == "IPv4"
    assert rules["blue-v6-in"]["protocol"] == "Any"
    assert get_json(kube, "vlb", "blue-web", "-n", tenant)["spec"]["ports"] == [
        {"port": 80, "protocol": "TCP"}
    ]


def test_doc_examples_are_accepted(kube: KubeControlPlane, tenant: str) -> None:
    """The YAML examples in docs/resources.md pass the API server's schema and CEL rules."""
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "resources.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        result = kube.kubectl("apply", "--dry-run=server", "-n", tenant, "-f", "-", input=block, check=False)
        assert result.returncode == 0, result.stderr


def columns(kube: KubeControlPlane, *args: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Header and rows (by NAME) of a `kubectl get` table, split on its column boundaries."""
    lines = kube.kubectl("get", *args).stdout.rstrip("\n").splitlines()
    header = lines[0]
    names: list[str] = []
    starts: list[int] = []
    index = 0
    for word in header.split("  "):
        if word.strip():
            start = header.index(word.strip(), index)
            names.append(word.strip())
            starts.append(start)
            index = start + len(word.strip())
    rows = {}
    for line in lines[1:]:
        cells = [
            line[s : (starts[i + 1] if i + 1 < len(starts) else None)].strip() for i, s in enumerate(starts)
        ]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return names, rows


def patch_status(
    kube: KubeControlPlane, kind: str, name: str, namespace: str, status: dict[str, Any]
) -> None:
    kube.kubectl(
        "patch", kind, name, "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )


def ready(generation: int, status: str = "True", reason: str = "Programmed") -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "reason": reason,
        "message": "programmed on every node",
    }


def test_kubectl_get_shows_useful_columns(kube: KubeControlPlane, tenant: str) -> None:
    patch_status(
        kube,
        "nic",
        "blue-web-1",
        tenant,
        {
            "status": {
                "observedGeneration": 1,
                "state": "Programmed",
                "vni": 100,
                "underlayRoute": "fc00:1::8000:0:1",
                "conditions": [ready(1)],
            }
        },
    )
    patch_status(kube, "vpc", "blue", tenant, {"status": {"vni": 100, "conditions": [ready(1)]}})
    patch_status(kube, "vlb", "blue-web", tenant, {"status": {"targetCount": 2, "conditions": [ready(1)]}})
    patch_status(kube, "natgw", "blue-egress", tenant, {"status": {"usedSlots": 2, "freeSlots": 60}})

    names, rows = columns(kube, "nic", "-n", tenant)
    assert names == ["NAME", "VPC", "NODE", "IPS", "UNDERLAY", "STATE", "READY", "AGE"]
    web = rows["blue-web-1"]
    assert (web["VPC"], web["NODE"], web["STATE"], web["READY"]) == ("blue", "node-a", "Programmed", "True")
    assert "10.1.0.11" in web["IPS"] and "fd00:1::11" in web["IPS"]
    assert web["UNDERLAY"] == "fc00:1::8000:0:1"
    assert rows["blue-web-2"]["STATE"] == ""  # not programmed yet

    names, rows = columns(kube, "nic", "-n", tenant, "-o", "wide")
    assert {"VNI", "VIRTUAL IP"} <= set(names)
    assert rows["blue-bastion"]["VIRTUAL IP"] == "203.0.113.10"
    assert rows["blue-web-1"]["VNI"] == "100"

    names, rows = columns(kube, "vpc", "-n", tenant)
    assert names == ["NAME", "VNI", "READY", "AGE"]
    assert (rows["blue"]["VNI"], rows["blue"]["READY"]) == ("100", "True")

    names, rows = columns(kube, "vlb", "-n", tenant)
    assert names == ["NAME", "VPC", "TYPE", "IP", "TARGETS", "READY", "AGE"]
    assert (rows["blue-web"]["TYPE"], rows["blue-web"]["IP"], rows["blue-web"]["TARGETS"]) == (
        "Public",
        "203.0.113.20",
        "2",
    )

    names, rows = columns(kube, "natgw", "-n", tenant)
    assert names == ["NAME", "VPC", "IPS", "PORTS/NIC", "USED", "FREE", "READY", "AGE"]
    egress = rows["blue-egress"]
    assert (egress["PORTS/NIC"], egress["USED"], egress["FREE"]) == ("1024", "2", "60")

    listing = kube.kubectl("get", "kubevpc", "-n", tenant).stdout
    for name in (
        "vpc.kubevpc.dev/blue",
        "networkinterface.kubevpc.dev/green-app-2",
        "natgateway.kubevpc.dev/blue-egress",
    ):
        assert name in listing


def test_status_is_a_subresource(kube: KubeControlPlane, tenant: str) -> None:
    before = get_json(kube, "nic", "green-app-1", "-n", tenant)
    generation = before["metadata"]["generation"]

    # Status written through the main resource is ignored.
    spec_patch = {"metadata": {"labels": {"tier": "app"}}, "status": {"state": "Failed"}}
    kube.kubectl("patch", "nic", "green-app-1", "-n", tenant, "--type=merge", "-p", json.dumps(spec_patch))
    after = get_json(kube, "nic", "green-app-1", "-n", tenant)
    assert "status" not in after or "state" not in after["status"]

    # Status written through /status does not bump the generation; a spec change does.
    patch_status(
        kube,
        "nic",
        "green-app-1",
        tenant,
        {"status": {"state": "Pending", "conditions": [ready(1, "False", "Pending")]}},
    )
    after = get_json(kube, "nic", "green-app-1", "-n", tenant)
    assert after["status"]["state"] == "Pending"
    assert after["metadata"]["generation"] == generation
    kube.kubectl(
        "patch",
        "nic",
        "green-app-1",
        "-n",
        tenant,
        "--type=merge",
        "-p",
        '{"spec":{"prefixes":["10.2.200.0/24"]}}',
    )
    assert get_json(kube, "nic", "green-app-1", "-n", tenant)["metadata"]["generation"] == generation + 1

    # A condition without its required fields is refused by the status schema.
    bad = {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}
    result = kube.kubectl(
        "patch",
        "nic",
        "green-app-1",
        "-n",
        tenant,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(bad),
        check=False,
    )
    assert result.returncode != 0
    assert "status.conditions[0].status" in result.stderr


# --- invalid objects --------------------------------------------------------------------------------


def nic(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vpcRef": {"name": "blue"},
        "nodeName": "node-a",
        "device": {"tap": {"name": "tap-x"}},
        "ips": ["10.1.0.99"],
    }
    base.update(spec)
    return obj("NetworkInterface", "bad", {key: value for key, value in base.items() if value is not None})


def obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def lb(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "vpcRef": {"name": "blue"},
        "ip": "203.0.113.99",
        "ports": [{"port": 80}],
        "targetSelector": {},
    }
    base.update(spec)
    return obj("LoadBalancer", "bad", base)


def natgw(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"vpcRef": {"name": "blue"}, "ips": ["203.0.113.99"]}
    base.update(spec)
    return obj("NATGateway", "bad", base)


INVALID = [
    # Schema (structural validation: types, ranges, enums, formats, required, maxItems).
    ("vpc-vni-zero", obj("VPC", "bad", {"vni": 0}), ["spec.vni", "greater than or equal to 1"]),
    ("vpc-vni-25-bits", obj("VPC", "bad", {"vni": 1 << 24}), ["spec.vni", "less than or equal to 16777215"]),
    ("nic-no-node", nic(nodeName=None), ["spec.nodeName", "Required value"]),
    ("nic-no-ips", nic(ips=[]), ["spec.ips", "at least 1 items"]),
    (
        "nic-long-tap-name",
        nic(device={"tap": {"name": "a-very-long-tap-name"}}),
        ["spec.device.tap.name", "may not be more than 15 bytes"],
    ),
    (
        "nic-firewall-direction",
        nic(firewallRules=[{"name": "r", "direction": "Inbound"}]),
        ['Unsupported value: "Inbound"'],
    ),
    ("nic-vip-v6", nic(virtualIP="fd00::1"), ["spec.virtualIP", "must be of type ipv4"]),
    ("lb-16-ports", lb(ports=[{"port": p} for p in range(1, 17)]), ["spec.ports", "at most 15 items"]),
    ("lb-type", lb(type="External"), ['Unsupported value: "External"']),
    ("natgw-v6-ip", natgw(ips=["fd00::1"]), ["spec.ips[0]", "must be of type ipv4"]),
    ("natgw-too-big-slice", natgw(portsPerNetworkInterface=65536), ["less than or equal to 64512"]),
    # CEL (x-kubernetes-validations), which only run on an otherwise valid object.
    (
        "vpc-self-peering",
        obj("VPC", "bad", {"peerings": [{"vpcRef": {"name": "bad"}}]}),
        ["a VPC cannot peer with itself"],
    ),
    (
        "vpc-duplicate-peer",
        obj("VPC", "bad", {"peerings": [{"vpcRef": {"name": "blue"}}, {"vpcRef": {"name": "blue"}}]}),
        ["each peer VPC may be listed only once"],
    ),
    (
        "vpc-peer-prefix-host-bits",
        obj("VPC", "bad", {"peerings": [{"vpcRef": {"name": "blue"}, "prefixes": ["10.1.0.1/24"]}]}),
        ["canonical network address"],
    ),
    ("nic-no-device", nic(device={}), ["device needs exactly one of vf and tap"]),
    (
        "nic-two-devices",
        nic(device={"tap": {"name": "t"}, "vf": {"name": "v"}}),
        ["device needs exactly one of vf and tap"],
    ),
    (
        "nic-vf-both",
        nic(device={"vf": {"name": "v", "pciAddress": "0000:3b:00.2"}}),
        ["vf needs exactly one of name and pciAddress"],
    ),
    (
        "nic-two-ipv4",
        nic(ips=["10.1.0.98", "10.1.0.99"]),
        ["ips holds at most one IPv4 and one IPv6 address"],
    ),
    ("nic-noncanonical-ip", nic(ips=["fd00:0::1"]), ["spec.ips[0]", "canonical form"]),
    ("nic-unspecified-ip", nic(ips=["0.0.0.0"]), ["spec.ips[0]", "canonical form"]),
    (
        "nic-vip-needs-ipv4",
        nic(ips=["fd00:1::99"], virtualIP="203.0.113.99"),
        ["virtualIP needs an IPv4 address in ips"],
    ),
    (
        "nic-prefix-host-bits",
        nic(prefixes=["10.1.5.1/24"]),
        ["spec.prefixes[0]", "canonical network address"],
    ),
    (
        "nic-pxe-family",
        nic(ips=["10.1.0.99", "fd00:1::99"], pxe={"server": "10.1.0.1", "bootFilename": "boot.ipxe"}),
        ["pxe.server must be IPv6 when ips has an IPv6 address"],
    ),
    (
        "nic-ports-without-tcp",
        nic(
            firewallRules=[
                {"name": "r", "direction": "Ingress", "protocol": "ICMP", "destinationPorts": {"from": 80}}
            ]
        ),
        ["sourcePorts and destinationPorts need protocol TCP or UDP"],
    ),
    (
        "nic-icmp-without-icmp",
        nic(firewallRules=[{"name": "r", "direction": "Ingress", "protocol": "TCP", "icmp": {"type": 8}}]),
        ["icmp needs protocol ICMP"],
    ),
    (
        "nic-port-range-reversed",
        nic(
            firewallRules=[
                {
                    "name": "r",
                    "direction": "Ingress",
                    "protocol": "TCP",
                    "destinationPorts": {"from": 90, "to": 80},
                }
            ]
        ),
        ["to must be greater than or equal to from"],
    ),
    (
        "nic-prefix-family",
        nic(
            firewallRules=[
                {"name": "r", "direction": "Egress", "ipFamily": "IPv6", "destinationPrefix": "10.0.0.0/8"}
            ]
        ),
        ["destinationPrefix must belong to ipFamily"],
    ),
    (
        "nic-duplicate-rule-name",
        nic(firewallRules=[{"name": "r", "direction": "Egress"}, {"name": "r", "direction": "Ingress"}]),
        ["Duplicate value"],
    ),
    (
        "lb-duplicate-port",
        lb(ports=[{"port": 80}, {"protocol": "TCP", "port": 80}]),
        ["each (protocol, port) pair may be listed only once"],
    ),
    ("lb-noncanonical-ip", lb(ip="fd00:0::99"), ["spec.ip", "canonical form"]),
    (
        "natgw-not-power-of-two",
        natgw(portsPerNetworkInterface=3000),
        ["must be a power of two between 1 and 32768"],
    ),
]


@pytest.mark.parametrize(("case", "manifest", "messages"), INVALID, ids=[case for case, _, _ in INVALID])
def test_invalid_object_is_rejected_with_a_readable_message(
    kube: KubeControlPlane, tenant: str, case: str, manifest: dict[str, Any], messages: list[str]
) -> None:
    result = kube.kubectl("apply", "-n", tenant, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"{case} was accepted"
    for message in messages:
        assert message in result.stderr, result.stderr
    assert kube.kubectl("get", manifest["kind"].lower(), "bad", "-n", tenant, check=False).returncode != 0


UPDATES = [
    # (kind, name, merge patch, error message or None when the update is allowed)
    ("nic", "blue-web-2", {"spec": {"nodeName": "node-c"}}, "nodeName is immutable"),
    ("nic", "blue-web-2", {"spec": {"vpcRef": {"name": "green"}}}, "vpcRef is immutable"),
    ("nic", "blue-web-2", {"spec": {"ips": ["10.1.0.13", "fd00:1::13"]}}, "ips is immutable"),
    ("nic", "blue-web-2", {"spec": {"device": {"tap": {"name": "other"}}}}, "device is immutable"),
    ("nic", "blue-web-2", {"spec": {"hostname": "renamed"}}, "hostname is immutable"),
    ("nic", "blue-web-2", {"spec": {"hostname": None}}, "hostname is immutable"),
    ("nic", "blue-web-2", {"spec": {"virtualIP": "203.0.113.12", "prefixes": ["10.1.20.0/24"]}}, None),
    ("vpc", "blue", {"spec": {"vni": 101}}, "spec.vni is immutable once set"),
    ("vpc", "blue", {"spec": {"vni": None}}, "spec.vni is immutable once set"),
    ("vlb", "blue-web", {"spec": {"ip": "203.0.113.21"}}, "ip is immutable"),
    ("vlb", "blue-web", {"spec": {"type": "Internal"}}, "type is immutable"),
    ("vlb", "blue-web", {"spec": {"ports": [{"port": 80}, {"port": 443}]}}, None),
    ("natgw", "blue-egress", {"spec": {"vpcRef": {"name": "green"}}}, "vpcRef is immutable"),
    ("natgw", "blue-egress", {"spec": {"portsPerNetworkInterface": 2048}}, None),
]


@pytest.mark.parametrize(
    ("kind", "name", "patch", "message"), UPDATES, ids=[f"{k}-{json.dumps(p)}" for k, _, p, _ in UPDATES]
)
def test_update_rules(
    kube: KubeControlPlane, tenant: str, kind: str, name: str, patch: dict[str, Any], message: str | None
) -> None:
    before = get_json(kube, kind, name, "-n", tenant)
    result = kube.kubectl(
        "patch", kind, name, "-n", tenant, "--type=merge", "-p", json.dumps(patch), check=False
    )
    if message is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert get_json(kube, kind, name, "-n", tenant)["spec"] == before["spec"]


def test_vpc_vni_may_be_set_once(kube: KubeControlPlane, tenant: str) -> None:
    """Unset -> set adopts a VNI (allowed); changing it afterwards is refused."""
    kube.kubectl("apply", "-n", tenant, "-f", "-", input=json.dumps(obj("VPC", "adopter", {})))
    kube.kubectl("patch", "vpc", "adopter", "-n", tenant, "--type=merge", "-p", '{"spec":{"vni":4242}}')
    result = kube.kubectl(
        "patch", "vpc", "adopter", "-n", tenant, "--type=merge", "-p", '{"spec":{"vni":4243}}', check=False
    )
    assert result.returncode != 0 and "spec.vni is immutable once set" in result.stderr
    assert get_json(kube, "vpc", "adopter", "-n", tenant)["spec"]["vni"] == 4242


# --- RBAC ------------------------------------------------------------------------------------------------


def can_i(kube: KubeControlPlane, who: str, *args: str) -> bool:
    result = kube.kubectl("auth", "can-i", *args, f"--as={who}", check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def test_operator_service_account_may_do_its_job(
    kube: KubeControlPlane, release: ChartRelease, tenant: str
) -> None:
    sa = release.operator_user
    for plural in PLURALS:
        resource = f"{plural}.{GROUP}"
        for verb in ("get", "list", "watch", "patch"):
            assert can_i(kube, sa, verb, resource, "--all-namespaces"), (verb, resource)
        assert can_i(kube, sa, "patch", resource, "--subresource=status", "-n", tenant)
        assert can_i(kube, sa, "update", resource, "--subresource=finalizers", "-n", tenant)
    assert can_i(kube, sa, "create", "events", "-n", tenant)
    assert can_i(kube, sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
    assert can_i(kube, sa, "watch", "nodes")
    assert can_i(kube, sa, "list", "pods", "-n", release.namespace)
    assert can_i(kube, sa, "patch", f"clusterkopfpeerings.kopf.dev/{release.fullname}")


def test_operator_service_account_may_do_nothing_else(
    kube: KubeControlPlane, release: ChartRelease, tenant: str
) -> None:
    sa = release.operator_user
    forbidden = [
        ("get", "secrets", "-n", release.namespace),
        ("list", "secrets", "--all-namespaces"),
        ("delete", "nodes"),
        ("patch", "nodes"),
        ("list", "pods", "-n", tenant),
        ("create", "pods", "-n", release.namespace),
        ("create", f"networkinterfaces.{GROUP}", "-n", tenant),
        ("delete", f"vpcs.{GROUP}", "-n", tenant),
        ("update", f"loadbalancers.{GROUP}", "-n", tenant),
        ("patch", "clusterkopfpeerings.kopf.dev/someone-else"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("*", "*"),
    ]
    for args in forbidden:
        assert not can_i(kube, sa, *args), args


def test_agent_service_account_has_no_api_access(kube: KubeControlPlane, release: ChartRelease) -> None:
    sa = f"system:serviceaccount:{release.namespace}:{release.fullname}-agent"
    for args in (
        ("list", "pods", "-n", release.namespace),
        ("get", f"vpcs.{GROUP}", "--all-namespaces"),
        ("list", "nodes"),
    ):
        assert not can_i(kube, sa, *args), args


def test_operator_token_works_within_its_rbac(
    kube: KubeControlPlane, release: ChartRelease, tenant: str
) -> None:
    """With a real token of the chart's ServiceAccount, as the operator will run in the e2e tests."""
    config = kube.service_account_kubeconfig(release.namespace, release.operator_service_account)
    listed = json.loads(kube.kubectl("get", "nic", "-A", "-o", "json", kubeconfig=config).stdout)
    assert len([i for i in listed["items"] if i["metadata"]["namespace"] == tenant]) == 5
    status = {"status": {"state": "Programmed", "nodeName": "node-c", "conditions": [ready(1)]}}
    kube.kubectl(
        "patch",
        "nic",
        "green-app-2",
        "-n",
        tenant,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
        kubeconfig=config,
    )
    finalizer = {"metadata": {"finalizers": ["kubevpc.dev/finalizer"]}}
    kube.kubectl(
        "patch",
        "nic",
        "green-app-2",
        "-n",
        tenant,
        "--type=merge",
        "-p",
        json.dumps(finalizer),
        kubeconfig=config,
    )
    got = get_json(kube, "nic", "green-app-2", "-n", tenant)
    assert got["status"]["state"] == "Programmed"
    assert got["metadata"]["finalizers"] == ["kubevpc.dev/finalizer"]
    kube.kubectl(
        "patch", "nic", "green-app-2", "-n", tenant, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )

    denied = kube.kubectl("get", "secrets", "-n", release.namespace, kubeconfig=config, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    denied = kube.kubectl("delete", "nic", "green-app-2", "-n", tenant, kubeconfig=config, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


# --- uninstall ------------------------------------------------------------------------------------------


def test_uninstall_removes_the_release_and_keeps_crds_and_objects(
    kube: KubeControlPlane, release: ChartRelease, tenant: str
) -> None:
    release.helm("uninstall", release.name, "--wait")
    full = release.fullname
    for args in (
        ("deployment", f"{full}-operator", "-n", release.namespace),
        ("daemonset", f"{full}-agent", "-n", release.namespace),
        ("clusterrole", f"{full}-operator"),
        ("clusterkopfpeering", full),
    ):
        result = kube.kubectl("get", *args, check=False)
        assert result.returncode != 0 and "NotFound" in result.stderr, args
    # Helm never deletes CRDs from crds/, so users' objects survive an uninstall.
    for name in CRD_NAMES:
        kube.kubectl("get", "crd", name)
    assert len(get_json(kube, "nic", "-n", tenant)["items"]) == 5
    assert yaml.safe_load(release.helm("list", "-o", "yaml").stdout) == []
