"""Topology and per-node desired state: who holds what, on which node, pointing where.

The cluster mirrors crds/samples: VPC blue (pinned VNI 100) peered with green, interfaces on three
nodes, a load balancer over blue's web interfaces, a NAT gateway, and an alias prefix.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kubevpc_operator.agents.apply import apply_ops
from kubevpc_operator.agents.observe import observe_node
from kubevpc_operator.models import VPC, LoadBalancer, NATGateway, NetworkInterface
from kubevpc_operator.models.cluster import ClusterView, Node
from kubevpc_operator.planning.desired import Exports, build_node_desired, nat_by_interface, protected_for
from kubevpc_operator.planning.nat import allocate_nat_slots
from kubevpc_operator.planning.node import plan_node
from kubevpc_operator.planning.ops import CreateInterface, DeleteInterface, DeleteRoute
from kubevpc_operator.planning.state import Export, ExportKind, NodeState, Protected
from kubevpc_operator.planning.topology import Topology, resolve_topology
from testkit import operator_objects as objects
from testkit.aio import in_loop
from testkit.fake_agent import FakeAgent

NODES = (Node("node-a", {"zone": "1"}), Node("node-b", {"zone": "2"}), Node("node-c", {"zone": "2"}))


def sample_bodies() -> dict[str, dict[str, Any]]:
    return {
        "blue": objects.vpc("blue", vni=100, peerings=[{"vpcRef": {"name": "green"}}]),
        "green": objects.vpc(
            "green", status_vni=200, peerings=[{"vpcRef": {"name": "blue"}, "prefixes": ["10.1.0.0/24"]}]
        ),
        "web-1": objects.nic(
            "web-1", vpc="blue", node="node-a", ips=["10.1.0.11", "fd00:1::11"], labels={"app": "web"}
        ),
        "web-2": objects.nic("web-2", vpc="blue", node="node-b", ips=["10.1.0.12"], labels={"app": "web"}),
        "bastion": objects.nic(
            "bastion", vpc="blue", node="node-c", ips=["10.1.0.5"], virtualIP="203.0.113.10"
        ),
        "app-1": objects.nic("app-1", vpc="green", node="node-a", ips=["10.2.0.11"]),
        "app-2": objects.nic(
            "app-2", vpc="green", node="node-c", ips=["10.2.0.12"], prefixes=["10.2.100.0/24"]
        ),
        "lb": objects.load_balancer("lb", vpc="blue", ip="203.0.113.20", targets={"app": "web"}),
        "gw": objects.nat_gateway("gw", vpc="blue", ips=["203.0.113.30"], ports=1024),
    }


def view_of(bodies: dict[str, dict[str, Any]], **changes: Any) -> ClusterView:
    vpcs = tuple(VPC.from_body(b) for b in bodies.values() if b["kind"] == "VPC")
    nics = tuple(NetworkInterface.from_body(b) for b in bodies.values() if b["kind"] == "NetworkInterface")
    lbs = tuple(LoadBalancer.from_body(b) for b in bodies.values() if b["kind"] == "LoadBalancer")
    gws = tuple(NATGateway.from_body(b) for b in bodies.values() if b["kind"] == "NATGateway")
    view = ClusterView(vpcs, nics, lbs, gws, NODES)
    return dataclasses.replace(view, **changes)


def uid(bodies: dict[str, dict[str, Any]], name: str) -> str:
    return str(bodies[name]["metadata"]["uid"])


def all_exports(topology: Topology) -> Exports:
    """Every underlay address known: fc00:<node>::<kind>:<n>."""
    exports: dict[tuple[str, Export], str] = {}
    counter = 0

    def put(node: str, export: Export) -> None:
        nonlocal counter
        counter += 1
        exports[(node, export)] = f"fc00:{node[-1]}::d000:0:0:{counter:x}"

    for resolved in topology.interfaces.values():
        nic = resolved.nic
        put(resolved.node, Export(ExportKind.INTERFACE, nic.uid))
        put(resolved.node, Export(ExportKind.NAT, nic.uid))
        for prefix in nic.prefixes:
            put(resolved.node, Export(ExportKind.PREFIX, nic.uid, str(prefix)))
    for lb in topology.load_balancers.values():
        for target in lb.targets:
            put(topology.interfaces[target].node, Export(ExportKind.LB_PREFIX, target, lb.prefix))
        for node in lb.nodes:
            put(node, Export(ExportKind.LOAD_BALANCER, lb.lb.uid))
    return exports


def desired(bodies: dict[str, dict[str, Any]], node: str, exports: Exports | None = None) -> NodeState:
    topology = resolve_topology(view_of(bodies))
    allocations = {
        gw_uid: allocate_nat_slots(m.gateway, m.members, previous={})
        for gw_uid, m in topology.nat_gateways.items()
    }
    return build_node_desired(
        topology, allocations, all_exports(topology) if exports is None else exports, node
    ).state


def test_topology_resolves_vnis_targets_instances_and_nat_members() -> None:
    bodies = sample_bodies()
    topology = resolve_topology(view_of(bodies))
    assert topology.problems == {}
    lb = topology.load_balancers[uid(bodies, "lb")]
    assert lb.vni == 100
    assert lb.targets == tuple(sorted([uid(bodies, "web-1"), uid(bodies, "web-2")]))
    assert lb.nodes == ("node-a", "node-b")  # default: the targets' nodes
    members = topology.nat_gateways[uid(bodies, "gw")].members
    assert members == ("web-1", "web-2")  # bastion has a virtual IP
    assert topology.peer_vnis(100) == {200}
    assert topology.serving("node-c") == {100, 200}


def test_node_a_holds_its_interfaces_with_lb_prefix_nat_and_the_lb_instance() -> None:
    bodies = sample_bodies()
    state = desired(bodies, "node-a")
    web1 = state.interfaces[uid(bodies, "web-1")]
    assert (web1.vni, web1.ipv4, web1.ipv6) == (100, "10.1.0.11", "fd00:1::11")
    assert web1.lb_prefixes == {"203.0.113.20/32"}
    assert web1.nat is not None and (web1.nat.min_port, web1.nat.max_port) == (1024, 2048)
    assert state.interfaces[uid(bodies, "app-1")].vni == 200
    lb = state.load_balancers[uid(bodies, "lb")]
    assert len(lb.targets) == 2  # both LB-prefix underlays, the local one included
    assert set(state.interfaces) == {uid(bodies, "web-1"), uid(bodies, "app-1")}


def test_routes_cover_remote_interfaces_prefixes_lbs_and_peers_with_their_filters() -> None:
    bodies = sample_bodies()
    state = desired(bodies, "node-a")
    blue = {prefix: r for (vni, prefix), r in state.routes.items() if vni == 100}
    green = {prefix: r for (vni, prefix), r in state.routes.items() if vni == 200}
    # Blue: its remote interfaces, the LB IP (instance on this node), and all of green (no filter).
    assert set(blue) == {
        "10.1.0.12/32",
        "10.1.0.5/32",
        "203.0.113.20/32",
        "10.2.0.11/32",
        "10.2.0.12/32",
        "10.2.100.0/24",
    }
    assert blue["10.2.0.12/32"].nexthop_vni == 200
    assert blue["10.1.0.12/32"].nexthop_vni == 100
    # Green: its remote interface and alias prefix, and only blue's IPv4 subnet (the peering filter).
    assert set(green) == {"10.2.0.12/32", "10.2.100.0/24", "10.1.0.11/32", "10.1.0.12/32", "10.1.0.5/32"}
    assert "fd00:1::11/128" not in green
    # Never a route for an address the node routes itself.
    assert "10.1.0.11/32" not in blue and "10.2.0.11/32" not in green


def test_lb_ip_routes_to_the_local_instance_or_one_spread_over_nodes() -> None:
    bodies = sample_bodies()
    topology = resolve_topology(view_of(bodies))
    exports = all_exports(topology)
    lb_uid = uid(bodies, "lb")
    on_a = build_node_desired(topology, {}, exports, "node-a").state.routes[(100, "203.0.113.20/32")]
    assert on_a.nexthop == exports[("node-a", Export(ExportKind.LOAD_BALANCER, lb_uid))]
    on_c = build_node_desired(topology, {}, exports, "node-c").state.routes[(100, "203.0.113.20/32")]
    instance = topology.load_balancers[lb_uid].instance_for("node-c")
    assert instance in ("node-a", "node-b")
    assert on_c.nexthop == exports[(instance, Export(ExportKind.LOAD_BALANCER, lb_uid))]


def test_neighbor_nats_go_to_the_other_nodes_of_the_vni() -> None:
    bodies = sample_bodies()
    on_c = desired(bodies, "node-c").neighbor_nats
    assert sorted((n.min_port, n.max_port) for n in on_c.values()) == [(1024, 2048), (2048, 3072)]
    on_a = desired(bodies, "node-a").neighbor_nats
    assert [(n.min_port, n.max_port) for n in on_a.values()] == [(2048, 3072)]  # web-2's only


def test_entries_wait_for_unknown_underlays() -> None:
    bodies = sample_bodies()
    topology = resolve_topology(view_of(bodies))
    result = build_node_desired(topology, {}, {}, "node-a")
    assert result.state.routes == {}
    assert uid(bodies, "web-2") in result.waiting
    assert "no underlay address" in result.waiting[uid(bodies, "web-2")]
    assert result.state.load_balancers[uid(bodies, "lb")].targets == frozenset()


def test_a_node_serving_nothing_holds_nothing() -> None:
    bodies = sample_bodies()
    nodes = (*NODES, Node("node-d"))
    topology = resolve_topology(view_of(bodies, nodes=nodes))
    assert build_node_desired(topology, {}, all_exports(topology), "node-d").state == NodeState()


@pytest.mark.parametrize(
    ("change", "reason", "fragment"),
    [
        (lambda b: b["web-2"]["spec"].update(vpcRef={"name": "nope"}), "VPCNotFound", "VPC nope not found"),
        (
            lambda b: b["web-2"]["spec"].update(nodeName="node-z"),
            "WaitingForAgent",
            "no agent serves node node-z",
        ),
        (
            lambda b: b["web-2"]["spec"].update(ips=["10.1.0.11"]),
            "Conflict",
            "already used by NetworkInterface web-1",
        ),
        (
            lambda b: b["web-2"]["spec"].update(nodeName="node-a", device={"tap": {"name": "tap-web-1"}}),
            "Conflict",
            "device tap-web-1 on node node-a is already used by web-1",
        ),
    ],
)
def test_problems_freeze_the_younger_object(change: Any, reason: str, fragment: str) -> None:
    bodies = sample_bodies()
    change(bodies)
    topology = resolve_topology(view_of(bodies))
    problem = topology.problems[uid(bodies, "web-2")]
    assert problem.reason == reason
    assert fragment in problem.message
    assert uid(bodies, "web-2") in topology.frozen
    assert uid(bodies, "web-2") not in topology.interfaces
    assert uid(bodies, "web-1") in topology.interfaces


def test_a_younger_vpc_with_a_taken_vni_freezes_its_objects() -> None:
    bodies = sample_bodies()
    bodies["red"] = objects.vpc("red", vni=100)
    bodies["red-1"] = objects.nic("red-1", vpc="red", node="node-b", ips=["10.3.0.1"], tap="red1")
    topology = resolve_topology(view_of(bodies))
    assert topology.problems[uid(bodies, "red")].reason == "VNIConflict"
    assert topology.problems[uid(bodies, "red-1")].reason == "InvalidVPC"


def test_frozen_objects_keep_their_state_on_the_agent() -> None:
    bodies = sample_bodies()
    topology = resolve_topology(view_of(bodies))
    exports = all_exports(topology)
    observed = build_node_desired(topology, {}, exports, "node-b").state
    web1 = uid(bodies, "web-1")
    # web-1's spec became invalid after an operator restart: it is frozen, not deleted anywhere.
    frozen_view = view_of(bodies, frozen=frozenset({web1}))
    frozen_view = dataclasses.replace(
        frozen_view, interfaces=tuple(n for n in frozen_view.interfaces if n.uid != web1)
    )
    frozen_topology = resolve_topology(frozen_view)
    wanted = build_node_desired(frozen_topology, {}, exports, "node-b").state
    ops = plan_node(wanted, observed, protected_for(frozen_topology, exports))
    assert not any(isinstance(op, DeleteRoute) and op.prefix.startswith("10.1.0.11") for op in ops)
    assert plan_node(wanted, observed, Protected()) != ops  # without protection the route would go


def test_converged_node_plans_nothing_and_a_missing_interface_is_recreated() -> None:
    bodies = sample_bodies()
    state = desired(bodies, "node-b")
    assert plan_node(state, state) == []
    web2 = uid(bodies, "web-2")
    missing = dataclasses.replace(state, interfaces={k: v for k, v in state.interfaces.items() if k != web2})
    ops = plan_node(state, missing)
    assert isinstance(ops[0], CreateInterface) and ops[0].interface_id == web2
    gone = plan_node(NodeState(), state)
    assert isinstance(gone[-1], DeleteInterface)


def test_nat_by_interface_follows_allocations() -> None:
    bodies = sample_bodies()
    topology = resolve_topology(view_of(bodies))
    allocations = {
        u: allocate_nat_slots(m.gateway, m.members, previous={}) for u, m in topology.nat_gateways.items()
    }
    nats = nat_by_interface(topology, allocations)
    assert set(nats) == {uid(bodies, "web-1"), uid(bodies, "web-2")}


@in_loop
async def test_applying_a_node_plan_to_a_fake_agent_converges() -> None:
    """apply(plan) on an agent with dpservice's semantics, then a fresh listing plans nothing."""
    bodies = sample_bodies()
    state = desired(bodies, "node-c")
    agent = FakeAgent("node-c", list_ipv6_routes=True)  # a fresh listing must see every route
    await agent.initialize()
    results = await apply_ops(agent, plan_node(state, NodeState()))
    assert all(result.ok for result in results)
    observed = await observe_node(agent)
    assert plan_node(state, observed.state) == []
    # And from any intermediate state: drop an interface's NAT and a route behind the plan's back.
    bastion = uid(bodies, "bastion")
    agent.interfaces[bastion].vip = None
    agent.routes[100].pop("10.1.0.12/32")
    observed = await observe_node(agent)
    repair = plan_node(state, observed.state)
    assert sorted(type(op).__name__ for op in repair) == ["CreateRoute", "CreateVip"]
    assert all(result.ok for result in await apply_ops(agent, repair))
    assert plan_node(state, (await observe_node(agent)).state) == []
