"""crds/samples applied to a real API server give working traffic between real clients.

The chart is installed with helm, the operator runs as a local process with the chart's operator
ServiceAccount and configuration, three agents run as "nodes" in network namespaces, and every VM
of the samples is a namespace on a TAP device named as the sample names it (testkit.e2e). The
tests run in order on one environment:

1. the samples without the VPC peering: every object Ready for its generation, every agent holds
   exactly what the objects say (checked over gRPC), VMs get their IPs over DHCP, ping within a VPC
   across nodes, and nothing crosses between the VPCs;
2. the samples as they are (with the peering): what the peering allows flows, the rest does not;
3. public traffic through the border router: HTTP to the load balancer IP from the internet lands
   on both backends, egress through the NAT gateway leaves from the NAT IP and a port of the slice
   the status records, a virtual IP works both ways; `kubectl get` shows it all;
4. re-applying changes nothing; invalid specs (schema, operator) leave the dataplane as it was;
5. deletion removes the state on every node.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from kubevpc_agent.lab.topology import Vm
from testkit import e2e
from testkit.border_router import INTERNET_V4
from testkit.k8s_env import KubeControlPlane

pytestmark = [pytest.mark.k8s, pytest.mark.privileged]

VMS = [
    e2e.VmSpec("blue-web-1", "node-a", "blue-web-1"),
    e2e.VmSpec("green-app-1", "node-a", "green-app-1"),
    e2e.VmSpec("blue-web-2", "node-b", "blue-web-2"),
    e2e.VmSpec("blue-bastion", "node-c", "blue-bastion"),
    e2e.VmSpec("green-app-2", "node-c", "green-app-2"),
]
LB_IP, NAT_IP, VIP = "203.0.113.20", "203.0.113.30", "203.0.113.10"
ALIAS_IP = "10.2.100.5"  # inside green-app-2's alias prefix 10.2.100.0/24
SERVER_PORT = 8080
INTERNET_URL = f"http://{INTERNET_V4}:{SERVER_PORT}/"


@pytest.fixture(scope="module")
def env(kube: KubeControlPlane) -> Iterator[e2e.E2eEnv]:
    with e2e.e2e_environment(kube, VMS) as environment:
        yield environment


VPC_SAMPLE = e2e.SAMPLES / "kubevpc_v1alpha1_vpc.yaml"


def apply_samples_without_peering(env: e2e.E2eEnv) -> None:
    """The samples as they are, except the VPCs' peerings (the first stage of the module)."""
    vpcs = list(yaml.safe_load_all(VPC_SAMPLE.read_text()))
    for vpc in vpcs:
        vpc["spec"].pop("peerings", None)
    env.apply(yaml.safe_dump_all(vpcs))
    for path in sorted(e2e.SAMPLES.glob("*.yaml")):
        if path != VPC_SAMPLE:
            env.apply(path)


def vm(env: e2e.E2eEnv, name: str) -> Vm:
    return env.lab.vms[name]


# --- 1. the samples, no peering ------------------------------------------------------------------------


def test_samples_reach_ready_and_the_agents_hold_exactly_what_they_say(env: e2e.E2eEnv) -> None:
    apply_samples_without_peering(env)
    objects, observed = env.converged(timeout=60)

    assert {o["metadata"]["name"] for o in objects.all()} == {
        "blue", "green", "blue-web-1", "blue-web-2", "blue-bastion", "green-app-1", "green-app-2",
        "blue-web", "blue-egress",
    }  # fmt: skip
    for obj in objects.all():
        ready = e2e.condition(obj)
        assert (ready["reason"], ready["observedGeneration"]) == ("Programmed", 1), obj["metadata"]["name"]
        assert e2e.condition(obj, "Degraded")["status"] == "False"
    green = objects.named("vpc", "green")["status"]["vni"]
    assert green != 100 and objects.named("vpc", "blue")["status"]["vni"] == 100
    # Each interface on its node, with the underlay its status records (the agent's answer).
    for nic in objects.nics:
        node, uid = nic["spec"]["nodeName"], nic["metadata"]["uid"]
        (listed,) = [i for i in observed[node].interfaces if i[0] == uid]
        assert listed[4] == nic["status"]["underlayRoute"]
        assert listed[4].startswith(f"fc00:{e2e.NODES.index(node) + 1}::")
    # The NAT gateway: two slices of 1024 ports, disjoint, recorded on both sides.
    allocations = objects.named("natgw", "blue-egress")["status"]["allocations"]
    assert sorted(a["networkInterface"] for a in allocations) == ["blue-web-1", "blue-web-2"]
    for allocation in allocations:
        assert allocation["maxPort"] - allocation["minPort"] == 1024 and allocation["minPort"] >= 1024
        nat = objects.nic(allocation["networkInterface"])["status"]["nat"]
        assert (nat["minPort"], nat["maxPort"], nat["ip"]) == (
            allocation["minPort"],
            allocation["maxPort"],
            NAT_IP,
        )


def test_vms_get_the_spec_ips_over_dhcp(env: e2e.E2eEnv) -> None:
    objects = env.objects()
    for name, machine in env.lab.vms.items():
        spec = objects.nic(name)["spec"]
        lease = machine.dhcp4()
        assert lease["ip"] == next(ip for ip in spec["ips"] if ":" not in ip), name
        assert machine.addresses(4) == [lease["ip"]]
        if "hostname" in spec:
            assert lease.get("hostname") == spec["hostname"]
        ipv6 = [ip for ip in spec["ips"] if ":" in ip]
        if ipv6:
            assert machine.dhcp6()["new_ip6_address"] == ipv6[0]
    # green-app-2 answers for an address of its alias prefix (e.g. a container behind it)
    vm(env, "green-app-2").ns.ip("addr", "add", f"{ALIAS_IP}/32", "dev", "lo")


def test_ping_across_nodes_within_a_vpc(env: e2e.E2eEnv) -> None:
    web2, bastion, app1 = vm(env, "blue-web-2"), vm(env, "blue-bastion"), vm(env, "green-app-1")
    e2e.eventually(lambda: e2e.ping(web2.ns, "10.1.0.11"), what="web-2 -> web-1")
    assert e2e.ping(web2.ns, "fd00:1::11")  # IPv6 overlay, node-b -> node-a (blue-v6-in admits it)
    assert e2e.ping(web2.ns, "10.1.0.5")  # node-b -> node-c
    assert e2e.ping(bastion.ns, "10.1.0.11")  # node-c -> node-a: web-1's firewall admits echo requests
    assert e2e.ping(bastion.ns, "10.1.0.12")
    assert e2e.ping(app1.ns, "10.2.0.12")
    assert e2e.ping(app1.ns, ALIAS_IP)  # the alias prefix is routed to green-app-2


def test_a_vm_with_a_nat_slice_and_ingress_rules_gets_answers_from_its_vpc(env: e2e.E2eEnv) -> None:
    """web-1 has a NAT gateway slice and ingress rules that admit only HTTP, ping and SSH: the
    answers to its own pings (found broken by this test: conntrack keyed them as new flows, which
    the ingress rules dropped; docs/conntrack-nat.md)."""
    web1 = vm(env, "blue-web-1")
    e2e.eventually(lambda: e2e.ping(web1.ns, "10.1.0.12"), what="web-1 -> web-2")
    assert e2e.ping(web1.ns, "10.1.0.5")
    assert e2e.ping(web1.ns, "fd00:1::12")


def test_no_traffic_between_vpcs_without_a_peering(env: e2e.E2eEnv) -> None:
    app1, app2, web1 = vm(env, "green-app-1"), vm(env, "green-app-2"), vm(env, "blue-web-1")
    assert not e2e.ping(app1.ns, "10.1.0.11", count=2, deadline=3)  # same node, other VPC
    assert not e2e.ping(app2.ns, "10.1.0.5", count=2, deadline=3)
    assert not e2e.ping(web1.ns, "10.2.0.12", count=2, deadline=3)
    green = env.objects().named("vpc", "green")["status"]["vni"]
    for node, dataplane in env.snapshot().items():
        for vni, prefix, nexthop_vni, _ in dataplane.routes:
            assert nexthop_vni == vni, f"{node}: VNI {vni} routes {prefix} into VNI {nexthop_vni}"
        assert not any(vni == green and prefix.startswith("10.1.") for vni, prefix, _, _ in dataplane.routes)


# --- 2. the samples as they are: the peering ----------------------------------------------------------


def test_the_sample_peering_connects_what_it_allows(env: e2e.E2eEnv) -> None:
    env.apply(VPC_SAMPLE)
    objects, observed = env.converged()
    blue_vni, green_vni = (objects.named("vpc", n)["status"]["vni"] for n in ("blue", "green"))

    def peerings(name: str) -> list[tuple[str, str, int]]:
        vpc = e2e.get_json(env.kube, "vpc", name, "-n", env.namespace)
        assert vpc["metadata"]["generation"] == 2 and e2e.is_ready(vpc)
        return [(p["name"], p["state"], p["vni"]) for p in vpc["status"].get("peerings", [])]

    for name, peer, peer_vni in (("blue", "green", green_vni), ("green", "blue", blue_vni)):
        # both VPCs changed at once: the first one handled saw its peer waiting; status follows
        e2e.poll(
            lambda n=name, p=peer, v=peer_vni: peerings(n) == [(p, "Active", v)], what=f"{name}'s peering"
        )
    app1, web1 = vm(env, "green-app-1"), vm(env, "blue-web-1")
    e2e.eventually(lambda: e2e.ping(app1.ns, "10.1.0.11"), what="green -> blue over the peering")
    assert e2e.ping(web1.ns, "10.2.0.12")  # blue reaches all of green ...
    assert e2e.ping(web1.ns, ALIAS_IP)  # ... including its alias prefix
    assert e2e.ping(vm(env, "blue-web-2").ns, "10.2.0.11")
    assert e2e.ping(vm(env, "green-app-2").ns, "10.1.0.5")
    # green may reach blue's IPv4 subnet only: no IPv6 route of blue in green's VNI, anywhere.
    for node in ("node-a", "node-c"):  # the nodes serving green
        dataplane = observed[node]
        green_routes = {
            prefix for vni, prefix, nh, _ in dataplane.routes if vni == green_vni and nh == blue_vni
        }
        assert green_routes, node
        assert all(prefix.startswith("10.1.0.") for prefix in green_routes), (node, green_routes)


# --- 3. public traffic through the border router -----------------------------------------------------


@pytest.fixture(scope="module")
def public(env: e2e.E2eEnv) -> dict[str, str]:
    """Servers: the internet (45.86.6.6:8080), the web VMs behind the LB (port 80), the bastion."""
    routes = e2e.announce_public(env.lab, env.objects())
    assert set(routes) == {LB_IP, NAT_IP, VIP}
    e2e.serve_http(env.lab.inet, str(INTERNET_V4), SERVER_PORT, "internet")
    for name in ("blue-web-1", "blue-web-2"):
        machine = vm(env, name)
        machine.ns.ip("addr", "add", f"{LB_IP}/32", "dev", "lo")  # DSR: each target owns the LB IP
        e2e.serve_http(machine.ns, "0.0.0.0", 80, name)
    e2e.serve_http(vm(env, "blue-bastion").ns, "0.0.0.0", SERVER_PORT, "blue-bastion")
    return routes


def test_http_to_the_load_balancer_ip_lands_on_both_backends(env: e2e.E2eEnv, public: dict[str, str]) -> None:
    e2e.eventually(lambda: bool(e2e.fetch(env.lab.inet, f"http://{LB_IP}/")), what="the LB to answer")
    seen: dict[str, int] = {}
    for _ in range(16):  # a new connection (new source port) each time: Maglev spreads them
        name, client, _port = e2e.fetch(env.lab.inet, f"http://{LB_IP}/")
        assert client == str(INTERNET_V4)  # DSR: the backend sees the real client
        seen[name] = seen.get(name, 0) + 1
    assert set(seen) == {"blue-web-1", "blue-web-2"}, seen
    env.lab.border.check()


def test_egress_leaves_through_the_nat_gateway_from_the_recorded_slice(
    env: e2e.E2eEnv, public: dict[str, str]
) -> None:
    objects = env.objects()
    for name in ("blue-web-1", "blue-web-2"):  # web-2's replies are relayed from node-a (neighbour NAT)
        nat = objects.nic(name)["status"]["nat"]
        ports = set()
        for _ in range(3):
            server, address, port = e2e.fetch(vm(env, name).ns, INTERNET_URL)
            assert (server, address) == ("internet", NAT_IP)
            assert nat["minPort"] <= port < nat["maxPort"], (name, port, nat)
            ports.add(port)
        assert len(ports) == 3  # every connection its own NAT port


def test_virtual_ip_inbound_and_outbound(env: e2e.E2eEnv, public: dict[str, str]) -> None:
    bastion = vm(env, "blue-bastion")
    _, address, port = e2e.fetch(bastion.ns, INTERNET_URL)
    assert address == VIP and port >= 1024  # 1:1 NAT: the VM's own port
    name, client, _ = e2e.fetch(env.lab.inet, f"http://{VIP}:{SERVER_PORT}/")
    assert (name, client) == ("blue-bastion", str(INTERNET_V4))
    # the NAT gateway leaves the bastion alone (it has a virtual IP)
    assert "nat" not in env.objects().nic("blue-bastion")["status"]


def columns(kube: KubeControlPlane, *args: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Header and rows (by NAME) of a `kubectl get` table, cut at the header's column starts."""
    lines = kube.kubectl("get", *args).stdout.rstrip("\n").splitlines()
    header = lines[0]
    starts = [
        i
        for i, ch in enumerate(header)
        if ch != " " and (i == 0 or (header[i - 1] == " " and header[i - 2] == " "))
    ]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    rows = {}
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return names, rows


def test_kubectl_get_shows_what_is_programmed_where(env: e2e.E2eEnv, public: dict[str, str]) -> None:
    kube, ns = env.kube, env.namespace
    objects = env.objects()
    green_vni = str(objects.named("vpc", "green")["status"]["vni"])

    _, vpcs = columns(kube, "vpc", "-n", ns, "-o", "wide")
    assert (vpcs["blue"]["VNI"], vpcs["green"]["VNI"], vpcs["blue"]["READY"]) == ("100", green_vni, "True")

    names, nics = columns(kube, "nic", "-n", ns, "-o", "wide")
    assert {"VPC", "NODE", "IPS", "VNI", "VIRTUAL IP", "UNDERLAY", "STATE", "READY"} <= set(names)
    for nic in objects.nics:
        row = nics[nic["metadata"]["name"]]
        assert (row["NODE"], row["STATE"], row["READY"]) == (nic["spec"]["nodeName"], "Programmed", "True")
        assert row["UNDERLAY"] == nic["status"]["underlayRoute"]
    assert nics["blue-bastion"]["VIRTUAL IP"] == VIP
    assert nics["green-app-2"]["VNI"] == green_vni
    assert "fd00:1::11" in nics["blue-web-1"]["IPS"]

    _, lbs = columns(kube, "vlb", "-n", ns, "-o", "wide")
    assert (lbs["blue-web"]["IP"], lbs["blue-web"]["TARGETS"], lbs["blue-web"]["READY"]) == (
        LB_IP,
        "2",
        "True",
    )
    _, gateways = columns(kube, "natgw", "-n", ns, "-o", "wide")
    row = gateways["blue-egress"]
    assert (row["PORTS/NIC"], row["USED"], row["FREE"], row["READY"]) == ("1024", "2", "60", "True")

    combined = kube.kubectl("get", "vpc,nic,vlb,natgw", "-n", ns, "-o", "wide").stdout
    for line in (
        "vpc.kubevpc.dev/green",
        "networkinterface.kubevpc.dev/blue-bastion",
        "natgateway.kubevpc.dev/blue-egress",
    ):
        assert line in combined


# --- 4. GitOps: re-apply, invalid specs -----------------------------------------------------------


def observation_window(env: e2e.E2eEnv) -> None:
    """Long enough for every status timer to run twice and the agents to be polled several times."""
    interval = float(e2e.FAST_OPERATOR_ENV["KUBEVPC_STATUS_INTERVAL"])
    time.sleep(2 * interval + 1)


def test_reapplying_the_samples_changes_nothing(env: e2e.E2eEnv) -> None:
    before_objects, before = env.converged()
    versions = e2e.resource_versions(before_objects)
    result = env.apply(e2e.SAMPLES)
    # kubectl's client-side apply sends a patch for blue-web-1 ("configured"): its firewall rules
    # list lacks the schema's defaults, and a JSON merge patch replaces lists whole. The API server
    # sees the same object and stores nothing: the resourceVersions below prove it.
    assert "created" not in result.stdout and result.stdout.count("unchanged") >= 8, result.stdout
    observation_window(env)
    after_objects, after = env.converged()
    assert e2e.resource_versions(after_objects) == versions
    assert after == before


def rejected_by_schema(env: e2e.E2eEnv, manifest: dict[str, Any]) -> str:
    result = env.kube.kubectl(
        "apply", "-n", env.namespace, "-f", "-", input=json.dumps(manifest), check=False
    )
    assert result.returncode != 0, f"{manifest['metadata']['name']} was accepted"
    return result.stderr


def nic_manifest(name: str, **spec: Any) -> dict[str, Any]:
    body = {"vpcRef": {"name": "blue"}, "nodeName": "node-b", "device": {"tap": {"name": name}}, **spec}
    return {
        "apiVersion": f"{e2e.GROUP}/v1alpha1",
        "kind": "NetworkInterface",
        "metadata": {"name": name},
        "spec": body,
    }


def test_a_spec_the_schema_rejects_never_reaches_the_operator(env: e2e.E2eEnv) -> None:
    before = env.snapshot()
    error = rejected_by_schema(env, nic_manifest("bad-ip", ips=["10.1.0.300"]))
    assert "spec.ips[0]" in error and "must be an IPv4 or IPv6 address in canonical form" in error
    error = rejected_by_schema(env, nic_manifest("bad-vip", ips=["fd00:1::99"], virtualIP="203.0.113.99"))
    assert "virtualIP needs an IPv4 address in ips" in error
    gateway = {
        "apiVersion": f"{e2e.GROUP}/v1alpha1",
        "kind": "NATGateway",
        "metadata": {"name": "bad-ports"},
        "spec": {"vpcRef": {"name": "blue"}, "ips": ["203.0.113.31"], "portsPerNetworkInterface": 3000},
    }
    assert "must be a power of two" in rejected_by_schema(env, gateway)
    assert env.kube.kubectl("get", "nic,natgw", "-n", env.namespace, "-o", "name").stdout.count("bad-") == 0
    assert env.snapshot() == before


OPERATOR_REJECTS = [
    # (manifest, reason, words the message must contain)
    (nic_manifest("blue-clash", ips=["10.1.0.11"]), "Conflict", ["10.1.0.11", "blue-web-1"]),
    (
        nic_manifest("blue-own-prefix", ips=["10.1.0.99"], prefixes=["10.1.0.0/24"]),
        "InvalidSpec",
        ["spec.prefixes[0]", "10.1.0.0/24 contains the interface's own address"],
    ),
    (
        {
            "apiVersion": f"{e2e.GROUP}/v1alpha1",
            "kind": "VPC",
            "metadata": {"name": "red"},
            "spec": {"vni": 100},
        },
        "VNIConflict",
        ["100", "blue"],
    ),
]


@pytest.mark.parametrize(
    ("manifest", "reason", "words"),
    OPERATOR_REJECTS,
    ids=[m["metadata"]["name"] for m, _, _ in OPERATOR_REJECTS],
)
def test_a_spec_only_the_operator_can_reject_gets_a_readable_condition_and_no_state(
    env: e2e.E2eEnv, manifest: dict[str, Any], reason: str, words: list[str]
) -> None:
    _, before = env.converged()
    name, kind = manifest["metadata"]["name"], manifest["kind"].lower()
    env.apply(json.dumps(manifest))

    def degraded() -> dict[str, Any] | None:
        obj = e2e.get_json(env.kube, kind, name, "-n", env.namespace)
        found = e2e.condition(obj, "Degraded")
        return obj if found.get("status") == "True" else None

    obj = e2e.poll(degraded, what=f"{name} to be Degraded")
    conditions = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conditions["Degraded"]["reason"] == reason
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", reason)
    for word in words:
        assert word in conditions["Degraded"]["message"], conditions["Degraded"]["message"]
    observation_window(env)
    _, after = env.converged(exclude=[name])
    assert after == before
    env.kube.kubectl("delete", kind, name, "-n", env.namespace, "--timeout=30s")
    _, after = env.converged()
    assert after == before


def test_an_invalid_update_keeps_the_programmed_state(env: e2e.E2eEnv) -> None:
    """A valid interface edited into an invalid spec: Degraded, and its dataplane state stays."""
    _, before = env.converged()
    patch = {"spec": {"prefixes": ["10.1.0.0/24"]}}  # contains web-2's own address
    env.kube.kubectl(
        "patch", "nic", "blue-web-2", "-n", env.namespace, "--type=merge", "-p", json.dumps(patch)
    )

    def invalid() -> bool:
        obj = e2e.get_json(env.kube, "nic", "blue-web-2", "-n", env.namespace)
        return e2e.condition(obj, "Degraded").get("reason") == "InvalidSpec"

    e2e.poll(invalid, what="blue-web-2 to be InvalidSpec")
    observation_window(env)
    assert env.snapshot() == before
    assert e2e.ping(vm(env, "blue-web-1").ns, "10.1.0.12")
    env.kube.kubectl(
        "patch",
        "nic",
        "blue-web-2",
        "-n",
        env.namespace,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/spec/prefixes"}]',
    )
    objects, after = env.converged()
    assert after == before
    assert objects.nic("blue-web-2")["metadata"]["generation"] == 3
    assert e2e.is_ready(objects.nic("blue-web-2"))


# --- 5. deletion ---------------------------------------------------------------------------------------


def test_deleting_an_interface_removes_its_state_on_every_node(env: e2e.E2eEnv) -> None:
    objects, before = env.converged()
    web2 = objects.nic("blue-web-2")
    uid, status = web2["metadata"]["uid"], web2["status"]
    gone = {status["underlayRoute"], status["nat"]["underlayRoute"]}
    gone |= {t["underlayRoute"] for t in status["loadBalancerTargets"]}
    env.kube.kubectl("delete", "nic", "blue-web-2", "-n", env.namespace, "--timeout=30s")
    objects, after = env.converged()
    assert not any(i[0] == uid for i in after["node-b"].interfaces)
    for node, dataplane in after.items():
        assert not {r[3] for r in dataplane.routes} & gone, node
        assert not {t[1] for t in dataplane.lb_targets} & gone, node
        assert not {n[4] for n in dataplane.neighbor_nats} & gone, node
    assert not any(r[1] in ("10.1.0.12/32", "fd00:1::12/128") for d in after.values() for r in d.routes)
    # The LB now has one target; the NAT slice is free again.
    assert objects.named("vlb", "blue-web")["status"]["targetCount"] == 1
    assert objects.named("natgw", "blue-egress")["status"]["usedSlots"] == 1
    assert before["node-a"].interfaces == after["node-a"].interfaces


def test_deleting_everything_leaves_every_agent_empty(env: e2e.E2eEnv) -> None:
    vnis = e2e.served_vnis(env.objects())
    assert len(vnis) == 2
    e2e.delete_all(env.kube, env.namespace)
    for node, dataplane in env.lab.snapshot(vnis).items():
        assert dataplane.is_empty(), (node, dataplane)
