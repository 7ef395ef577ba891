"""Find each node's agent from the agent pods, by polling the API server.

The agents run on the host network, so a ready agent pod's IP is its node's address and the agent
listens on the configured gRPC port there. The pods live in one namespace (the chart's release
namespace), and the chart grants the operator read access to pods in that namespace only: a kopf
watch would cover every namespace the operator serves, so this is a plain LIST of that namespace
with the label selector, every ``interval`` seconds (cheap: one small request; an agent restart
keeps its IP, and the UUID poll notices the restart anyway).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from kubevpc_operator.agents.pool import AgentPool, Endpoint

logger = logging.getLogger("kubevpc.discovery")


class Connection(Protocol):
    """What is needed of kopf's ``ConnectionInfo``."""

    server: str

    def as_http_headers(self) -> dict[str, str]: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...


def endpoints_from_pods(pods: list[Mapping[str, Any]], port: int) -> dict[str, Endpoint]:
    """Node -> agent endpoint, for every running, ready agent pod with an IP."""
    endpoints: dict[str, Endpoint] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        status = pod.get("status") or {}
        ip = status.get("podIP") or status.get("hostIP")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        )
        if not node or not ip or not ready or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        host = f"[{ip}]" if ":" in ip else ip
        endpoints[node] = Endpoint(f"{host}:{port}")
    return endpoints


class PodDiscovery:
    def __init__(
        self,
        pool: AgentPool,
        login: Callable[[], Connection | None],
        *,
        namespace: str,
        selector: str,
        port: int,
        interval: float = 5.0,
    ) -> None:
        self._pool = pool
        self._login = login
        self._namespace = namespace
        self._selector = selector
        self._port = port
        self._interval = interval
        self._known: set[str] = set()
        self._last_error = ""

    def _url(self, server: str) -> str:
        path = f"/api/v1/namespaces/{quote(self._namespace)}/pods" if self._namespace else "/api/v1/pods"
        return f"{server.rstrip('/')}{path}?labelSelector={quote(self._selector)}"

    async def refresh(self) -> dict[str, Endpoint]:
        """List the agent pods once and update the pool; returns what was found."""
        connection = self._login()
        if connection is None:
            raise RuntimeError("no Kubernetes credentials (neither a service account nor a kubeconfig)")
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(headers=connection.as_http_headers(), timeout=timeout) as session,
            session.get(self._url(connection.server), ssl=connection.as_ssl_context()) as response,
        ):
            if response.status != 200:
                text = (await response.text())[:200]
                raise RuntimeError(f"listing agent pods: HTTP {response.status} {text}")
            pods = (await response.json()).get("items") or []
        found = endpoints_from_pods(pods, self._port)
        for node in sorted(self._known - set(found)):
            logger.info("Agent of node %s is gone", node)
            self._pool.set_discovered(node, None)
        for node, endpoint in sorted(found.items()):
            if node not in self._known:
                logger.info("Found the agent of node %s at %s", node, endpoint.address)
            self._pool.set_discovered(node, endpoint)
        self._known = set(found)
        return found

    async def run(self) -> None:
        """Refresh forever; errors are logged once and retried."""
        while True:
            try:
                await self.refresh()
                self._last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if str(error) != self._last_error:
                    logger.warning("Agent discovery failed (retrying): %s", error)
                self._last_error = str(error)
            await asyncio.sleep(self._interval)
