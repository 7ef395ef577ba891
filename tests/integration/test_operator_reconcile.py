"""The operator's handlers end to end, in-process: kopf-style calls, fake agents on three nodes.

The objects are crds/samples (two peered VPCs, five interfaces on three nodes, a public load
balancer, a NAT gateway). Each test checks what the agents hold and what status says.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevpc_operator.handlers.support import Trigger
from kubevpc_operator.planning import ops
from testkit.aio import in_loop
from testkit.fake_agent import FakeAgent
from testkit.operator_harness import OperatorHarness

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"


def sample_bodies() -> list[dict[str, Any]]:
    bodies = []
    for number, path in enumerate(sorted(SAMPLES.glob("*.yaml"))):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if not document:
                continue
            meta = document["metadata"]
            meta.setdefault("namespace", "default")
            meta["uid"] = f"{document['kind'].lower()}-{meta['name']}-0000-0000-000000000000"[:36]
            meta["generation"] = 1
            meta["creationTimestamp"] = f"2026-01-01T00:{number:02d}:{index:02d}Z"
            meta.setdefault("labels", {})
            document["status"] = {}
            bodies.append(document)
    return bodies


@pytest.fixture
def cluster() -> OperatorHarness:
    """The samples, applied; each test runs on its own loop and closes the harness (``in_loop``)."""
    harness = OperatorHarness()
    harness.apply(*sample_bodies())
    return harness


def uid_of(cluster: OperatorHarness, kind: str, name: str) -> str:
    return str(cluster.get(kind, name)["metadata"]["uid"])


def tables(agent: FakeAgent) -> dict[str, Any]:
    """An agent's tables without underlay addresses (they change on every restart)."""
    return {
        "interfaces": {
            i.id: (
                i.vni,
                i.device,
                i.ipv4,
                i.ipv6,
                i.vip and i.vip[0],
                i.nat and i.nat[0],
                sorted(i.prefixes),
                sorted(i.lb_prefixes),
                [r.id for r in i.rules],
            )
            for i in agent.interfaces.values()
        },
        "lbs": {lb.id: (lb.vni, lb.ip, lb.ports, len(lb.targets)) for lb in agent.lbs.values()},
        "routes": sorted(
            (vni, prefix, r.nexthop_vni) for vni, t in agent.routes.items() for prefix, r in t.items()
        ),
        "neighbor_nats": sorted((n.ip, n.vni, n.min_port, n.max_port) for n in agent.neighbor_nats),
    }


@in_loop
async def test_samples_reach_ready_with_the_right_state_everywhere(cluster: OperatorHarness) -> None:
    await cluster.settle()
    for body in cluster.bodies.values():
        ready = cluster.condition(body["kind"], body["metadata"]["name"])
        assert ready["status"] == "True", (body["metadata"]["name"], ready)
        assert cluster.status(body["kind"], body["metadata"]["name"])["observedGeneration"] == 1

    web1, web2 = (
        uid_of(cluster, "NetworkInterface", "blue-web-1"),
        uid_of(cluster, "NetworkInterface", "blue-web-2"),
    )
    node_a, node_b, node_c = (cluster.agents[n] for n in ("node-a", "node-b", "node-c"))
    assert set(node_a.interfaces) == {web1, uid_of(cluster, "NetworkInterface", "green-app-1")}
    assert node_a.interfaces[web1].device == "blue-web-1"
    assert [r.id for r in node_a.interfaces[web1].rules] == [
        "blue-ssh-in",
        "blue-v6-in",
        "http-in",
        "ping-in",
    ]
    assert node_c.interfaces[uid_of(cluster, "NetworkInterface", "blue-bastion")].vip is not None

    # VPC green got a VNI, recorded in its status.
    green_vni = cluster.status("VPC", "green")["vni"]
    assert isinstance(green_vni, int) and green_vni != 100
    assert cluster.status("VPC", "blue")["peerings"] == [
        {"name": "green", "namespace": "default", "vni": green_vni, "state": "Active"}
    ]

    # Routes to each interface everywhere else, with the interface's own underlay as next hop.
    web2_status = cluster.status("NetworkInterface", "blue-web-2")
    assert web2_status["underlayRoute"] == node_b.interfaces[web2].underlay
    assert node_a.routes[100]["10.1.0.12/32"].nexthop == web2_status["underlayRoute"]
    assert node_c.routes[100]["10.1.0.12/32"].nexthop == web2_status["underlayRoute"]
    assert "10.1.0.12/32" not in node_b.routes.get(100, {})
    assert [n["name"] for n in web2_status["nodes"]] == ["node-a", "node-b", "node-c"]
    # Peering filters: green reaches blue's IPv4 only, blue reaches all of green.
    assert node_c.routes[green_vni]["10.1.0.11/32"].nexthop_vni == 100
    assert "fd00:1::11/128" not in node_c.routes[green_vni]
    assert node_c.routes[100]["10.2.0.11/32"].nexthop_vni == green_vni

    # The load balancer runs where its targets are, each instance with both targets.
    lb = uid_of(cluster, "LoadBalancer", "blue-web")
    assert lb in node_a.lbs and lb in node_b.lbs and lb not in node_c.lbs
    targets = {
        node_a.interfaces[web1].lb_prefixes["203.0.113.20/32"],
        node_b.interfaces[web2].lb_prefixes["203.0.113.20/32"],
    }
    assert node_a.lbs[lb].targets == targets == node_b.lbs[lb].targets
    lb_status = cluster.status("LoadBalancer", "blue-web")
    assert lb_status["targetCount"] == 2
    assert {n["name"]: n["underlayRoute"] for n in lb_status["nodes"]} == {
        "node-a": node_a.lbs[lb].underlay,
        "node-b": node_b.lbs[lb].underlay,
    }

    # NAT: one slice each for web-1 and web-2, neighbor NAT for the other's slice on every other node.
    allocations = {
        a["networkInterface"]: a for a in cluster.status("NATGateway", "blue-egress")["allocations"]
    }
    assert set(allocations) == {"blue-web-1", "blue-web-2"}
    assert (allocations["blue-web-1"]["minPort"], allocations["blue-web-1"]["maxPort"]) == (1024, 2048)
    assert allocations["blue-web-1"]["underlayRoute"] == node_a.interfaces[web1].nat[1]
    assert sorted((n.min_port, n.underlay) for n in node_c.neighbor_nats) == sorted(
        [(1024, node_a.interfaces[web1].nat[1]), (2048, node_b.interfaces[web2].nat[1])]
    )
    assert cluster.status("NetworkInterface", "blue-web-1")["nat"]["natGateway"] == "blue-egress"
    assert any(e[2] == "Programmed" and e[0] == "blue-web-1" for e in cluster.events)


@in_loop
async def test_reapplying_the_same_manifests_changes_nothing(cluster: OperatorHarness) -> None:
    await cluster.settle()
    statuses = {uid: copy.deepcopy(body["status"]) for uid, body in cluster.bodies.items()}
    mutations = {node: len(agent.mutations()) for node, agent in cluster.agents.items()}
    events = len(cluster.events)

    cluster.apply(*sample_bodies())
    for trigger in (Trigger.CHANGE, Trigger.TIMER):
        results = await cluster.reconcile_all(trigger)
        await cluster.idle()
        assert {name: r.patch for name, r in results.items() if r.patch} == {}
        assert all(r.error is None for r in results.values())
    assert {uid: body["status"] for uid, body in cluster.bodies.items()} == statuses
    assert {node: len(agent.mutations()) for node, agent in cluster.agents.items()} == mutations
    assert len(cluster.events) == events


@in_loop
async def test_an_invalid_spec_is_reported_and_leaves_the_dataplane_alone(cluster: OperatorHarness) -> None:
    await cluster.settle()
    before = {node: tables(agent) for node, agent in cluster.agents.items()}

    bad = copy.deepcopy(cluster.get("NetworkInterface", "blue-web-2"))
    bad["spec"]["prefixes"] = ["10.9.0.7/24"]
    bad["spec"]["hostname"] = "x" * 70
    cluster.apply(bad)
    outcome = await cluster.reconcile("NetworkInterface", "blue-web-2")
    assert outcome.permanent
    degraded = cluster.condition("NetworkInterface", "blue-web-2", "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert (
        "spec.prefixes[0]: '10.9.0.7/24' has host bits set; did you mean 10.9.0.0/24?" in degraded["message"]
    )
    assert "spec.hostname" in degraded["message"]
    assert degraded["observedGeneration"] == 2
    assert cluster.status("NetworkInterface", "blue-web-2")["state"] == "Failed"
    await cluster.reconcile_all(Trigger.TIMER)
    await cluster.idle()
    assert {node: tables(agent) for node, agent in cluster.agents.items()} == before

    # A brand-new invalid object creates nothing anywhere.
    fresh = copy.deepcopy(bad)
    fresh["metadata"].update(name="new-bad", uid="nic-new-bad-0000-0000-000000000000")
    fresh["spec"]["device"] = {"tap": {"name": "new-bad"}}
    cluster.apply(fresh)
    assert (await cluster.reconcile("NetworkInterface", "new-bad")).permanent
    await cluster.idle()
    assert not any(fresh["metadata"]["uid"] in agent.interfaces for agent in cluster.agents.values())


@in_loop
async def test_an_agent_restart_is_replayed_after_one_initialize(cluster: OperatorHarness) -> None:
    await cluster.settle()
    node_b = cluster.agents["node-b"]
    before = tables(node_b)
    old_underlay = cluster.status("NetworkInterface", "blue-web-2")["underlayRoute"]
    # A poll of an agent whose UUID is known never initializes it.
    node_b.calls.clear()
    await cluster.reconcile("VPC", "blue", Trigger.TIMER)
    await cluster.idle()
    assert [name for name, _ in node_b.calls] == ["CheckInitialized"]

    node_b.restart()
    await cluster.reconcile("VPC", "blue", Trigger.TIMER)  # the VPC timer polls the agents
    await cluster.idle()
    assert [name for name, _ in node_b.calls].count("Initialize") == 1
    assert tables(node_b) == before
    web2 = uid_of(cluster, "NetworkInterface", "blue-web-2")
    new_underlay = node_b.interfaces[web2].underlay
    assert new_underlay != old_underlay
    # Other nodes follow the new addresses without any handler running.
    assert cluster.agents["node-a"].routes[100]["10.1.0.12/32"].nexthop == new_underlay
    # Status catches up on the next timer.
    await cluster.reconcile("NetworkInterface", "blue-web-2", Trigger.TIMER)
    assert cluster.status("NetworkInterface", "blue-web-2")["underlayRoute"] == new_underlay


@in_loop
async def test_deleting_an_interface_removes_its_state_on_every_node(cluster: OperatorHarness) -> None:
    await cluster.settle()
    web2 = uid_of(cluster, "NetworkInterface", "blue-web-2")
    lb = uid_of(cluster, "LoadBalancer", "blue-web")
    outcome = await cluster.delete("NetworkInterface", "blue-web-2")
    assert outcome.error is None
    await cluster.idle()
    node_a, node_b, node_c = (cluster.agents[n] for n in ("node-a", "node-b", "node-c"))
    assert web2 not in node_b.interfaces
    assert "10.1.0.12/32" not in node_a.routes[100] and "10.1.0.12/32" not in node_c.routes[100]
    assert lb not in node_b.lbs  # no target left there
    assert len(node_a.lbs[lb].targets) == 1
    assert all(n.min_port != 2048 for agent in (node_a, node_c) for n in agent.neighbor_nats)
    # The freed slice disappears from the gateway's status.
    await cluster.reconcile("NATGateway", "blue-egress", Trigger.TIMER)
    names = [a["networkInterface"] for a in cluster.status("NATGateway", "blue-egress")["allocations"]]
    assert names == ["blue-web-1"]
    # Children before the interface, on its node.
    deletes = [type(op).__name__ for name, op in node_b.mutations() if name.startswith("Delete")]
    assert deletes.index("DeleteInterface") > deletes.index("DeleteNat")
    assert deletes.index("DeleteInterface") > deletes.index("DeleteLoadBalancerPrefix")


@in_loop
async def test_a_vpc_is_deleted_only_once_nothing_uses_it(cluster: OperatorHarness) -> None:
    await cluster.settle()
    outcome = await cluster.delete("VPC", "green")
    assert outcome.temporary
    assert "still used by NetworkInterface green-app-1" in str(outcome.error)
    for name in ("green-app-1", "green-app-2"):
        assert (await cluster.delete("NetworkInterface", name)).error is None
    assert (await cluster.delete("VPC", "green")).error is None
    await cluster.idle()
    assert all(not any(vni not in (100,) for vni in agent.routes) for agent in cluster.agents.values())


@pytest.mark.parametrize("lists_ipv6_routes", [True, False], ids=["kubevpc-agent", "dpservice-like"])
@in_loop
async def test_a_restarted_operator_converges_without_touching_the_agents(
    cluster: OperatorHarness, lists_ipv6_routes: bool
) -> None:
    for agent in cluster.agents.values():
        agent.list_ipv6_routes = lists_ipv6_routes
    await cluster.settle()
    allocations = cluster.status("NATGateway", "blue-egress")["allocations"]
    before = {node: tables(agent) for node, agent in cluster.agents.items()}
    restarted = OperatorHarness(agents=cluster.agents)  # same agents, a new operator process
    restarted.apply(*cluster.bodies.values())
    for agent in cluster.agents.values():
        agent.calls.clear()
    try:
        results = await restarted.settle()
        assert all(r.error is None for r in results.values())
        assert {node: tables(agent) for node, agent in cluster.agents.items()} == before
        assert restarted.status("NATGateway", "blue-egress")["allocations"] == allocations
        assert not [c for agent in cluster.agents.values() for c in agent.calls if c[0] == "Initialize"]
        mutations = [op for agent in cluster.agents.values() for _, op in agent.mutations()]
        if lists_ipv6_routes:
            assert mutations == []
        else:
            # dpservice does not list IPv6 routes: they are created again and found to exist.
            assert mutations and all(isinstance(op, ops.CreateRoute) and ":" in op.prefix for op in mutations)
    finally:
        await restarted.close()


@in_loop
async def test_nat_exhaustion_is_readable_and_freed_slots_are_reused(cluster: OperatorHarness) -> None:
    gateway = copy.deepcopy(cluster.get("NATGateway", "blue-egress"))
    gateway["spec"]["portsPerNetworkInterface"] = 32768  # one slice per IP
    cluster.apply(gateway)
    await cluster.settle()
    ready = cluster.condition("NATGateway", "blue-egress", "Degraded")
    assert (ready["status"], ready["reason"]) == ("True", "NoFreePortSlice")
    assert "1 NetworkInterface have no port slice" in ready["message"] or "blue-web-2" in ready["message"]
    assert cluster.condition("NetworkInterface", "blue-web-2", "Degraded")["reason"] == "NoFreePortSlice"
    assert (await cluster.delete("NetworkInterface", "blue-web-1")).error is None
    await cluster.settle()
    nat = cluster.status("NetworkInterface", "blue-web-2")["nat"]
    assert (nat["minPort"], nat["maxPort"]) == (1024, 33792)
    assert cluster.condition("NATGateway", "blue-egress", "Degraded")["status"] == "False"


@in_loop
async def test_an_unreachable_agent_is_reported_and_recovers(cluster: OperatorHarness) -> None:
    await cluster.settle()
    cluster.agents["node-c"].unavailable = True
    outcome = await cluster.reconcile("NetworkInterface", "green-app-2")
    assert outcome.temporary
    ready = cluster.condition("NetworkInterface", "green-app-2")
    assert (ready["status"], ready["reason"]) == ("False", "AgentUnavailable")
    assert cluster.status("NetworkInterface", "green-app-2")["nodes"][-1]["state"] == "Failed"
    cluster.agents["node-c"].unavailable = False
    await cluster.settle()
    assert cluster.condition("NetworkInterface", "green-app-2")["status"] == "True"


@in_loop
async def test_a_rejected_operation_is_an_event_and_a_degraded_condition(cluster: OperatorHarness) -> None:
    cluster.agents["node-b"].reject[ops.CreateInterface] = 201  # the device does not exist there
    results = await cluster.reconcile_all()
    await cluster.idle()
    outcome = await cluster.reconcile("NetworkInterface", "blue-web-2")
    assert results["NetworkInterface/blue-web-2"].temporary and outcome.temporary
    degraded = cluster.condition("NetworkInterface", "blue-web-2", "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "AgentRejected")
    assert "201" in degraded["message"] and "node-b" in degraded["message"]
    assert any(
        e[0] == "blue-web-2" and e[1] == "Warning" and e[2] == "ProgrammingFailed" for e in cluster.events
    )
    # Its children were not attempted.
    assert not [name for name, _ in cluster.agents["node-b"].calls if name == "CreatePrefix"]
