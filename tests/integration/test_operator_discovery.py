"""Agent discovery: ready agent pods of one namespace become node endpoints (a local fake API)."""

from __future__ import annotations

import ssl
from typing import Any

from aiohttp import web

from kubevpc_operator.agents.discovery import PodDiscovery, endpoints_from_pods
from kubevpc_operator.agents.fabric import Fabric
from kubevpc_operator.agents.pool import AgentPool, Endpoint
from testkit.aio import in_loop
from testkit.fake_agent import FakeAgent

READY = {"conditions": [{"type": "Ready", "status": "True"}]}


def pod(node: str, ip: str, status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {"podIP": ip, **(READY if status is None else status)},
    }


def test_only_ready_pods_with_an_ip_count() -> None:
    pods = [
        pod("node-a", "10.0.0.1"),
        pod("node-b", "fd00::2"),
        pod("node-c", "10.0.0.3", status={}),  # not ready
        pod("node-d", "10.0.0.4", deletionTimestamp="2026-01-01T00:00:00Z"),  # terminating
        {"spec": {}, "status": {"podIP": "10.0.0.5", **READY}},  # not scheduled
    ]
    assert endpoints_from_pods(pods, 1337) == {
        "node-a": Endpoint("10.0.0.1:1337"),
        "node-b": Endpoint("[fd00::2]:1337"),
    }


class Connection:
    def __init__(self, server: str) -> None:
        self.server = server

    def as_http_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer t0ken"}

    def as_ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context()


@in_loop
async def test_the_pool_follows_the_listed_pods() -> None:
    pods = [pod("node-a", "10.0.0.1"), pod("node-b", "10.0.0.2")]
    seen: list[tuple[str, str, str]] = []

    async def list_pods(request: web.Request) -> web.Response:
        seen.append((request.path, request.query["labelSelector"], request.headers["Authorization"]))
        return web.json_response({"kind": "PodList", "items": pods})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/kubevpc-system/pods", list_pods)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    pool = AgentPool(lambda node, endpoint: FakeAgent(node))
    discovery = PodDiscovery(
        pool,
        lambda: Connection(f"http://127.0.0.1:{port}"),
        namespace="kubevpc-system",
        selector="app.kubernetes.io/component=agent",
        port=1337,
    )
    try:
        await discovery.refresh()
        assert pool.endpoints() == {"node-a": Endpoint("10.0.0.1:1337"), "node-b": Endpoint("10.0.0.2:1337")}
        assert seen == [
            ("/api/v1/namespaces/kubevpc-system/pods", "app.kubernetes.io/component=agent", "Bearer t0ken")
        ]
        pods[1] = pod("node-b", "10.0.0.2", status={})  # node-b's agent is not ready any more
        await discovery.refresh()
        assert pool.nodes() == {"node-a"}
    finally:
        await runner.cleanup()
        await pool.close()


@in_loop
async def test_a_new_endpoint_syncs_the_node_only_once_the_view_is_complete() -> None:
    agents: dict[str, FakeAgent] = {}

    def factory(node: str, endpoint: Endpoint) -> FakeAgent:
        return agents.setdefault(endpoint.address, FakeAgent(node))

    fabric = Fabric(AgentPool(factory))
    # kopf fills its indices while discovery already runs: planning now could delete real state.
    fabric.pool.set_discovered("node-a", Endpoint("10.0.0.1:1337"))
    await fabric.wait_idle()
    assert agents == {}  # not even contacted
    fabric.mark_ready()  # a resource handler ran: every index is complete
    fabric.pool.set_discovered("node-a", Endpoint("10.0.0.9:1337"))  # the agent moved (restarted)
    await fabric.wait_idle()
    assert [name for name, _ in agents["10.0.0.9:1337"].calls][:2] == ["CheckInitialized", "Initialize"]
    await fabric.close()
