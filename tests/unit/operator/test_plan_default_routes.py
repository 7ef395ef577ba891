"""Default routes to the border router (``--router-address``): one pair per VNI a node serves.

Without them a VM with a virtual IP, behind a NAT gateway or behind a public load balancer has no
path to the internet: dpservice sends traffic that matches a default route to that route's next hop
(the border router) and applies NAT only to such traffic.
"""

from __future__ import annotations

import pytest

from kubevpc_operator import config
from kubevpc_operator.models import VPC, NetworkInterface
from kubevpc_operator.models.cluster import ClusterView, Node
from kubevpc_operator.planning.desired import build_node_desired
from kubevpc_operator.planning.routes import plan_routes
from kubevpc_operator.planning.state import RouteState
from kubevpc_operator.planning.topology import Topology, resolve_topology
from testkit import operator_objects as objects

ROUTER = "fc00::ffff"


def topology() -> Topology:
    vpcs = (VPC.from_body(objects.vpc("blue", vni=100)), VPC.from_body(objects.vpc("green", vni=200)))
    nics = (
        NetworkInterface.from_body(objects.nic("a", vpc="blue", node="node-a", ips=["10.1.0.1"])),
        NetworkInterface.from_body(objects.nic("b", vpc="green", node="node-b", ips=["10.2.0.1"])),
    )
    return resolve_topology(ClusterView(vpcs, nics, (), (), (Node("node-a", {}), Node("node-b", {}))))


def defaults(node: str, router: str) -> dict[tuple[int, str], RouteState]:
    state = build_node_desired(topology(), {}, {}, node, router).state
    return {key: route for key, route in state.routes.items() if key[1] in ("0.0.0.0/0", "::/0")}


def test_each_served_vni_routes_both_families_to_the_router() -> None:
    routes = defaults("node-a", ROUTER)
    assert set(routes) == {(100, "0.0.0.0/0"), (100, "::/0")}  # node-a serves blue only
    assert {(r.nexthop_vni, r.nexthop) for r in routes.values()} == {(100, ROUTER)}
    assert set(defaults("node-b", ROUTER)) == {(200, "0.0.0.0/0"), (200, "::/0")}


def test_no_router_no_default_routes() -> None:
    assert defaults("node-a", "") == {}


def test_converged_default_routes_plan_nothing_and_a_new_router_replaces_them() -> None:
    routes = defaults("node-a", ROUTER)
    assert plan_routes(routes, routes) == []
    moved = defaults("node-a", "fc00::fffe")
    ops = plan_routes(moved, routes)
    assert [type(op).__name__ for op in ops] == ["DeleteRoute", "DeleteRoute", "CreateRoute", "CreateRoute"]


def test_router_address_setting_is_canonical_and_checked() -> None:
    settings = config.Settings.from_args(["--router-address", "fc00:0::FFFF"], env={})
    assert settings.router_address == ROUTER
    assert config.Settings.from_args([], env={"KUBEVPC_ROUTER_ADDRESS": ROUTER}).router_address == ROUTER
    assert config.Settings.from_args([], env={}).router_address == ""
    with pytest.raises(config.ConfigError, match="expected an IPv6 address"):
        config.Settings.from_args(["--router-address", "10.0.0.1"], env={})
