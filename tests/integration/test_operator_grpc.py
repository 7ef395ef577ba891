"""GrpcAgentClient against the real agent servicer, in-process (memory ports, real gRPC).

Checks the wire mapping both ways: what the operator programs, the agent lists back exactly as
planning expects (so a converged node plans nothing), "done" status codes, the error classes,
a replay onto a fresh agent, and mutual TLS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevpc_agent.api.server import TlsFiles as AgentTls
from kubevpc_operator.agents.client import AgentClient
from kubevpc_operator.agents.errors import (
    AgentInvalidArgumentError,
    AgentNotInitializedError,
    AgentRejectedError,
    AgentUnavailableError,
)
from kubevpc_operator.agents.observe import observe_node
from kubevpc_operator.agents.pool import AgentPool, Endpoint, TlsFiles, grpc_client_factory
from kubevpc_operator.agents.syncer import NodeSyncer
from kubevpc_operator.planning import ops
from kubevpc_operator.planning.desired import NodeDesired
from kubevpc_operator.planning.node import plan_node
from kubevpc_operator.planning.state import (
    ExportKind,
    FirewallRuleState,
    InterfaceState,
    LoadBalancerState,
    Nat,
    NeighborNatState,
    NodeState,
    Protected,
    Pxe,
    RouteState,
)
from testkit.agent_api import InProcessAgent, Topology, free_port
from testkit.aio import in_loop
from testkit.k8s_env import make_pki

RULES = (
    FirewallRuleState("ssh", "ingress", 100, "10.0.0.0/24", "0.0.0.0/0", "tcp", (-1, -1), (22, 22)),
    FirewallRuleState("dns", "egress", 200, "0.0.0.0/0", "0.0.0.0/0", "udp", (1024, 65535), (53, 53)),
    FirewallRuleState("ping", "ingress", 300, "0.0.0.0/0", "0.0.0.0/0", "icmp", icmp=(8, -1)),
    FirewallRuleState("v6", "ingress", 400, "fd00::/64", "::/0"),  # read back as /32 by dpservice
    FirewallRuleState("deny", "ingress", 500, "0.0.0.0/0", "0.0.0.0/0", action="drop"),
)
DESIRED = NodeState(
    interfaces={
        "if-a": InterfaceState(
            "if-a",
            100,
            "net_tap2",
            "10.0.0.1",
            "fd00::1",
            hostname="vm-a",
            pxe=Pxe("fd00::10", "boot.ipxe"),
            vip="203.0.113.5",
            nat=Nat("203.0.113.9", 1024, 3072),
            prefixes=frozenset({"10.10.0.0/24"}),
            lb_prefixes=frozenset({"10.0.100.1/32"}),
            firewall_rules=RULES,
        ),
        "if-b": InterfaceState("if-b", 200, "net_tap3", "10.0.0.1", ""),
    },
    load_balancers={
        "lb-1": LoadBalancerState("lb-1", 100, "10.0.100.1", ((6, 80), (17, 53)), frozenset({"fc00:9::1"}))
    },
    routes={
        r.key: r
        for r in (
            RouteState(100, "10.0.0.2/32", 100, "fc00:2::d000:0:0:1"),
            RouteState(100, "fd00::2/128", 100, "fc00:2::d000:0:0:2"),
            RouteState(200, "10.1.0.0/24", 100, "fc00:2::d000:0:0:3"),
        )
    },
    neighbor_nats={
        n.key: n for n in (NeighborNatState("203.0.113.9", 100, 3072, 5120, "fc00:2::d000:0:0:9"),)
    },
)


class StaticPlanner:
    def __init__(self, state: NodeState) -> None:
        self.state = state

    def desired_for(self, node: str) -> tuple[NodeDesired, Protected]:
        return NodeDesired(self.state), Protected()


@pytest.fixture
def agent() -> Iterator[InProcessAgent]:
    with InProcessAgent(Topology().config()) as running:
        yield running


def pool_for(*agents: InProcessAgent, tls: TlsFiles | None = None) -> AgentPool:
    static = {f"node-{i}": Endpoint(a.address) for i, a in enumerate(agents)}
    return AgentPool(grpc_client_factory(tls, timeout=5.0), static=static)


@in_loop
async def test_initialization_is_checked_before_anything_else(agent: InProcessAgent) -> None:
    pool = pool_for(agent)
    client = pool.client("node-0")
    with pytest.raises(AgentNotInitializedError):
        await client.check_initialized()
    with pytest.raises(AgentNotInitializedError):
        await client.list_interfaces()
    uuid = await client.initialize()
    assert len(uuid) == 36 and uuid == uuid.upper()
    assert await client.check_initialized() == uuid
    await pool.close()


@in_loop
async def test_a_synced_node_lists_back_exactly_what_was_planned(agent: InProcessAgent) -> None:
    pool = pool_for(agent)
    syncer = NodeSyncer("node-0", pool, StaticPlanner(DESIRED))
    report = await syncer.sync()
    assert report.error == ""
    assert report.failures == {}
    assert report.replayed  # a fresh agent: initialized, then everything created
    assert sum(r.ok for r in report.results) == len(report.results) == 17  # every operation, once
    client: AgentClient = pool.client("node-0")
    observed = await observe_node(client)  # a fresh look, no memory of what was sent
    assert plan_node(DESIRED, observed.state) == []
    # Every exported object reports its underlay, in the agent's /64.
    kinds = {export.kind for export in observed.exports}
    assert kinds == set(ExportKind)
    assert all(address.startswith("fc00:1::") for address in observed.exports.values())
    # The next sync finds nothing to do.
    again = await syncer.sync()
    assert again.results == () and not again.replayed
    await pool.close()


@in_loop
async def test_changes_are_planned_against_what_the_agent_lists(agent: InProcessAgent) -> None:
    pool = pool_for(agent)
    planner = StaticPlanner(DESIRED)
    syncer = NodeSyncer("node-0", pool, planner)
    await syncer.sync()
    interface = dataclasses.replace(
        DESIRED.interfaces["if-a"],
        vip=None,
        nat=Nat("203.0.113.9", 5120, 7168),
        firewall_rules=RULES[:2],
        prefixes=frozenset({"10.11.0.0/24"}),
    )
    planner.state = dataclasses.replace(
        DESIRED, interfaces={**DESIRED.interfaces, "if-a": interface}, routes={}, neighbor_nats={}
    )
    report = await syncer.sync(scope={"if-a"})
    assert report.failures == {}
    applied = sorted(type(r.op).__name__ for r in report.results)
    assert applied.count("DeleteRoute") == 3 and "DeleteVip" in applied and "CreateNat" in applied
    observed = await observe_node(pool.client("node-0"))
    assert plan_node(planner.state, observed.state) == []
    await pool.close()


@in_loop
async def test_done_codes_and_error_classes(agent: InProcessAgent) -> None:
    pool = pool_for(agent)
    client = pool.client("node-0")
    await client.initialize()
    created = await client.execute(ops.CreateInterface("if-x", 7, "net_tap4", "10.0.0.7", ""))
    assert created.startswith("fc00:1::")
    route = ops.CreateRoute(7, "10.9.0.0/16", 7, "fc00:2::1")
    assert await client.execute(route) == ""
    assert await client.execute(route) == ""  # 301 ROUTE_EXISTS counts as done
    assert await client.execute(ops.DeleteVip("if-x")) == ""  # 341 SNAT_NO_DATA counts as done
    assert await client.execute(ops.DeleteRoute(7, "10.8.0.0/16")) == ""  # 302
    assert await client.execute(ops.DeleteInterface("if-nope")) == ""  # 201
    with pytest.raises(AgentRejectedError) as rejected:
        await client.execute(ops.CreateInterface("if-y", 7, "net_tap99", "10.0.0.8", ""))
    assert rejected.value.code == 201
    assert "201 NOT_FOUND (CreateInterface)" in str(rejected.value)
    with pytest.raises(AgentRejectedError) as taken:
        await client.execute(ops.CreateInterface("if-z", 7, "net_tap4", "10.0.0.9", ""))
    assert taken.value.code == 202  # the device is in use by another interface: not "done"
    with pytest.raises(AgentInvalidArgumentError, match="Invalid interface_id"):
        await client.execute(ops.CreateInterface("bad id!", 7, "net_tap5", "10.0.0.9", ""))
    await pool.close()


@in_loop
async def test_an_unreachable_agent_raises_unavailable() -> None:
    pool = AgentPool(grpc_client_factory(timeout=0.5), static={"gone": Endpoint(f"127.0.0.1:{free_port()}")})
    with pytest.raises(AgentUnavailableError):
        await pool.client("gone").check_initialized()
    await pool.close()


@in_loop
async def test_a_fresh_agent_on_the_node_gets_everything_replayed(agent: InProcessAgent) -> None:
    pool = AgentPool(grpc_client_factory(timeout=5.0))
    pool.set_discovered("node-0", Endpoint(agent.address))
    syncer = NodeSyncer("node-0", pool, StaticPlanner(DESIRED))
    first = await syncer.sync()
    with InProcessAgent(Topology().config()) as fresh:
        pool.set_discovered("node-0", Endpoint(fresh.address))  # the restarted agent's pod
        report = await syncer.sync()
        assert report.replayed and report.failures == {} and report.uuid != first.uuid
        observed = await observe_node(pool.client("node-0"))
        assert plan_node(DESIRED, observed.state) == []
        # Initialize ran once; a further poll sees the same UUID and schedules nothing.
        assert await pool.client("node-0").check_initialized() == report.uuid
        await pool.close()


@in_loop
async def test_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    config = Topology().config(listen="127.0.0.1:0")
    server_tls = AgentTls(str(pki.serving_cert), str(pki.serving_key), str(pki.ca_cert))
    with InProcessAgent(config, tls=server_tls) as agent:
        tls = TlsFiles(pki.ca_cert, pki.admin_cert, pki.admin_key)
        pool = pool_for(agent, tls=tls)
        assert len(await pool.client("node-0").initialize()) == 36
        await pool.close()
        plain = pool_for(agent)
        with pytest.raises(AgentUnavailableError):
            await plain.client("node-0").check_initialized()
        await plain.close()
