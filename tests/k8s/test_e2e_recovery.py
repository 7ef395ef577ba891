"""An agent killed under traffic is replayed, and a restarted operator converges without leftovers.

Same environment as test_e2e_samples (testkit.e2e): the samples, plus ``blue-vf`` on node-b on a
veth "VF" (a netdev the agent opens; it survives the agent like an SR-IOV VF does, while a TAP
vanishes with its agent as dpservice's net_tap does), and spare TAP ports for interfaces created
later.

* SIGKILL node-b's agent while blue-vf pings across nodes: the operator sees the new agent
  (CheckInitialized ABORTED), calls Initialize once, replays node-b, and fans the new underlay
  addresses out to the other nodes; traffic returns (also through the NAT gateway, whose replies
  node-a relays to node-b's new NAT underlay) and the other agents are never re-initialized.
* SIGKILL the operator in the middle of a batch of changes and start another: it converges, every
  agent holds exactly what the objects say (nothing twice, nothing stale), no agent is
  re-initialized.
* Start a lower-priority replica beside it: it pauses (kopf peering) and programs nothing; SIGKILL
  the leader and the standby resumes once the leader's peering entry expires and programs the
  next change.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest

from kubevpc_agent.lab.topology import Vm
from testkit import e2e
from testkit.border_router import INTERNET_V4
from testkit.k8s_env import KubeControlPlane

pytestmark = [pytest.mark.k8s, pytest.mark.privileged]

VMS = [
    e2e.VmSpec("blue-web-1", "node-a", "blue-web-1"),
    e2e.VmSpec("green-app-1", "node-a", "green-app-1"),
    e2e.VmSpec("blue-web-2", "node-b", "blue-web-2"),
    e2e.VmSpec("blue-vf", "node-b", "vf-blue-b", kind="veth"),
    e2e.VmSpec("blue-bastion", "node-c", "blue-bastion"),
    e2e.VmSpec("green-app-2", "node-c", "green-app-2"),
]
SPARE_TAPS = {"node-a": ["spare-a1"], "node-b": ["spare-b1"], "node-c": ["spare-c1"]}
VF_NIC = """
apiVersion: kubevpc.dev/v1alpha1
kind: NetworkInterface
metadata:
  name: blue-vf
  labels: {app: vf}
spec:
  vpcRef: {name: blue}
  nodeName: node-b
  device: {vf: {name: vf-blue-b}}
  ips: [10.1.0.21]
"""
INTERNET_URL = f"http://{INTERNET_V4}:8080/"


@pytest.fixture(scope="module")
def env(kube: KubeControlPlane) -> Iterator[e2e.E2eEnv]:
    # A killed leader's peering entry expires after 10 s here (60 s by default).
    peering = {"peering": {"enabled": True, "name": "", "lifetime": 10}}
    with e2e.e2e_environment(kube, VMS, spare_taps=SPARE_TAPS, operator_values=peering) as environment:
        environment.apply(e2e.SAMPLES)
        environment.apply(VF_NIC)
        objects, _ = environment.converged()
        for machine in environment.lab.vms.values():
            machine.dhcp4()
        e2e.announce_public(environment.lab, objects)
        e2e.serve_http(environment.lab.inet, str(INTERNET_V4), 8080, "internet")
        yield environment


def vm(env: e2e.E2eEnv, name: str) -> Vm:
    return env.lab.vms[name]


def uuids(env: e2e.E2eEnv) -> dict[str, str | None]:
    result = {}
    for name, node in env.lab.nodes.items():
        with node.view() as view:
            result[name] = view.uuid()
    return result


def initialized(env: e2e.E2eEnv, node: str) -> int:
    """How often the operators called Initialize on ``node``'s agent (one log line each)."""
    return sum(op.count(f"Initialized agent on node {node} ") for op in env.operators)


def test_every_agent_was_initialized_once_by_the_operator(env: e2e.E2eEnv) -> None:
    assert all(uuids(env).values())
    assert [initialized(env, node) for node in e2e.NODES] == [1, 1, 1]
    assert e2e.ping(vm(env, "blue-vf").ns, "10.1.0.5")  # the veth VF works like a TAP


def test_agent_killed_under_traffic_is_replayed_and_traffic_returns(env: e2e.E2eEnv) -> None:
    before_uuids = uuids(env)
    before = e2e.read_objects(env.kube, env.namespace)
    web2_nat = before.nic("blue-web-2")["status"]["nat"]
    node_b = env.lab.nodes["node-b"]
    pinger = e2e.ContinuousPing(vm(env, "blue-vf").ns, "10.1.0.5")  # node-b -> node-c
    e2e.poll(lambda: len(pinger.replies()) >= 5, what="the ping to get replies")

    killed = time.time()
    node_b.restart()  # SIGKILL, then a new agent process: empty, not initialized, TAPs recreated
    objects, _ = env.converged(timeout=60)
    replayed = time.time()
    try:
        e2e.poll(lambda: [t for t in pinger.replies() if t > killed], timeout=30, what="replies again")
    finally:
        replies = pinger.stop()

    after_uuids = uuids(env)
    assert after_uuids["node-b"] not in (None, before_uuids["node-b"])
    assert {n: after_uuids[n] for n in ("node-a", "node-c")} == {
        n: before_uuids[n] for n in ("node-a", "node-c")
    }
    assert [initialized(env, node) for node in e2e.NODES] == [1, 2, 1]  # once, only the new agent
    # Underlay addresses handed out again by the new agent reached status and the other nodes.
    assert objects.nic("blue-vf")["status"]["underlayRoute"].startswith("fc00:2::")
    resumed = [t for t in replies if t > killed]
    assert resumed, "no reply after the agent was killed:\n" + "\n".join(pinger.lines[-20:])
    gap = min(resumed) - killed
    print(f"agent SIGKILL -> converged {replayed - killed:.1f} s, -> first reply {gap:.1f} s")
    assert e2e.ping(vm(env, "blue-vf").ns, "10.1.0.11")  # and to node-a

    # The TAP VM on node-b got a new TAP from the new agent: the harness re-attached it.
    web2 = vm(env, "blue-web-2")
    assert web2.dhcp4()["ip"] == "10.1.0.12"
    e2e.eventually(lambda: e2e.ping(vm(env, "blue-bastion").ns, "10.1.0.12"), what="bastion -> web-2")
    # NAT: same slice as before the crash; replies reach node-b's new NAT underlay via node-a.
    nat = objects.nic("blue-web-2")["status"]["nat"]
    assert (nat["minPort"], nat["maxPort"]) == (web2_nat["minPort"], web2_nat["maxPort"])
    e2e.announce_public(env.lab, objects)

    def through_nat() -> bool:
        _, address, port = e2e.fetch(web2.ns, INTERNET_URL)
        return address == nat["ip"] and nat["minPort"] <= port < nat["maxPort"]

    e2e.eventually(through_nat, what="web-2's egress through the NAT gateway")


NEW_OBJECTS = """
apiVersion: kubevpc.dev/v1alpha1
kind: NetworkInterface
metadata: {name: blue-extra-a, labels: {app: web}}
spec: {vpcRef: {name: blue}, nodeName: node-a, device: {tap: {name: spare-a1}}, ips: [10.1.0.31]}
---
apiVersion: kubevpc.dev/v1alpha1
kind: NetworkInterface
metadata: {name: blue-extra-c, labels: {app: web}}
spec: {vpcRef: {name: blue}, nodeName: node-c, device: {tap: {name: spare-c1}}, ips: [10.1.0.33]}
---
apiVersion: kubevpc.dev/v1alpha1
kind: NetworkInterface
metadata: {name: green-extra-b, labels: {app: app}}
spec:
  vpcRef: {name: green}
  nodeName: node-b
  device: {tap: {name: spare-b1}}
  ips: [10.2.0.32]
  prefixes: [10.2.200.0/24]
---
apiVersion: kubevpc.dev/v1alpha1
kind: LoadBalancer
metadata: {name: green-internal}
spec:
  vpcRef: {name: green}
  type: Internal
  ip: 10.2.0.100
  ports: [{protocol: TCP, port: 8080}]
  targetSelector: {matchLabels: {app: app}}
"""


def test_operator_killed_mid_reconcile_is_replaced_and_converges_exactly(env: e2e.E2eEnv) -> None:
    before_uuids = uuids(env)
    first = env.operator
    lines_before = first.count("on node node-a")
    patches = [
        ("natgw", "blue-egress", {"spec": {"portsPerNetworkInterface": 512}}),  # every slice moves
        ("nic", "green-app-1", {"spec": {"virtualIP": "203.0.113.11"}}),
    ]
    # Mid-reconcile: node-a has some of the batch; node-c's agent hangs, so none of it is there.
    node_c = env.lab.nodes["node-c"]
    node_c.pause()
    try:
        env.apply(NEW_OBJECTS)
        env.kube.kubectl("delete", "nic", "blue-bastion", "-n", env.namespace, "--wait=false")
        for kind, name, patch in patches:
            env.kube.kubectl(
                "patch", kind, name, "-n", env.namespace, "--type=merge", "-p", json.dumps(patch)
            )
        e2e.poll(lambda: first.count("on node node-a") > lines_before, timeout=30, what="node-a to change")
        first.kill()
    finally:
        node_c.pause(False)
    partial = env.snapshot()

    second = env.start_operator(priority=200)  # kopf peering: the higher priority works at once
    objects, observed = env.converged(timeout=90)
    unfinished = e2e.compare(e2e.expected_dataplane(objects), partial)
    print(f"operator killed with {len(unfinished)} differences left on the agents")
    assert unfinished, "the batch was complete before the kill: not a mid-reconcile restart"
    assert uuids(env) == before_uuids  # no agent restarted ...
    assert second.count("Initialized agent") == 0  # ... and none was re-initialized
    names = {o["metadata"]["name"] for o in objects.all()}
    assert {"blue-extra-a", "blue-extra-c", "green-extra-b", "green-internal"} <= names
    assert "blue-bastion" not in names
    for obj in objects.all():
        assert e2e.is_ready(obj), obj["metadata"]["name"]
    # NAT slices: 512 ports each, disjoint, for web-1, web-2, blue-extra-a and blue-extra-c.
    allocations = objects.named("natgw", "blue-egress")["status"]["allocations"]
    assert sorted(a["networkInterface"] for a in allocations) == [
        "blue-extra-a", "blue-extra-c", "blue-web-1", "blue-web-2",
    ]  # fmt: skip
    ranges = sorted((a["minPort"], a["maxPort"]) for a in allocations)
    assert all(hi - lo == 512 for lo, hi in ranges)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    assert objects.named("vlb", "blue-web")["status"]["targetCount"] == 4
    # nothing twice: each interface on exactly one node, each LB instance once per node
    listed = [i[0] for d in observed.values() for i in d.interfaces]
    assert len(listed) == len(set(listed)) == len(objects.nics)
    # traffic over what the new operator programmed
    assert e2e.ping(vm(env, "blue-vf").ns, "10.1.0.11")
    assert e2e.ping(vm(env, "green-app-2").ns, "10.2.0.11")


def test_a_standby_replica_takes_over_when_the_leader_is_killed(env: e2e.E2eEnv) -> None:
    leader = env.operator
    standby = env.start_operator(priority=50)  # lower than the leader's: it must pause
    env.operator = leader

    def peers() -> dict[str, dict[str, object]]:
        peering = e2e.get_json(env.kube, "clusterkopfpeering", env.release.fullname)
        return peering.get("status") or {}

    # kopf starts a peering replica paused; it stays so while a higher priority is alive.
    e2e.poll(lambda: any(p.get("priority") == 50 for p in peers().values()), what="the standby to join")
    standby_work = standby.count(" on node ")

    def set_vip(address: str) -> None:
        patch = json.dumps({"spec": {"virtualIP": address}})
        env.kube.kubectl("patch", "nic", "green-app-1", "-n", env.namespace, "--type=merge", "-p", patch)

    # While both run, only the leader programs a change.
    set_vip("203.0.113.12")
    env.converged(timeout=60)
    assert standby.count(" on node ") == standby_work, standby.log_tail()
    assert "Resuming operations" not in standby.log()

    leader.kill()  # no goodbye: its peering entry stays until it expires
    killed = time.monotonic()
    set_vip("203.0.113.13")
    objects, observed = env.converged(timeout=120)
    takeover = time.monotonic() - killed
    env.operator = standby
    print(f"standby programmed the change {takeover:.1f} s after the leader was killed (lifetime 10 s)")
    assert "Resuming operations after the pause" in standby.log()
    assert standby.count(" on node ") > standby_work  # the standby, not a ghost, did the work
    assert {ip for _, ip, _ in observed["node-a"].vips} >= {"203.0.113.13"}, observed["node-a"].vips
    assert (
        objects.named("nic", "green-app-1")["status"]["observedGeneration"]
        == (objects.named("nic", "green-app-1")["metadata"]["generation"])
    )
    assert e2e.ping(vm(env, "green-app-2").ns, "10.2.0.11")
