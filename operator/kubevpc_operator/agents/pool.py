"""Which agent serves which node, and one reused client (gRPC channel) per node.

Endpoints come from two sources, merged: a static map (local mode: ``--agent node=host:port`` or a
YAML file) and discovery (the agent pods, which run on the host network, so the pod IP or host IP
plus the gRPC port reaches the node's agent). A client is created on first use and kept until
its node's address changes or the node goes away. With TLS configured, channels use mutual TLS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from kubevpc_operator.agents.client import AgentClient, GrpcAgentClient
from kubevpc_operator.agents.errors import NoAgentError

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 15_000),  # notice a dead agent between polls (dpservice uses 15 s too)
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),  # a node's full route list
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),  # an agent restart is noticed within seconds
)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for mutual TLS; ``server_name`` overrides the name checked in the agent's cert."""

    ca: Path
    cert: Path
    key: Path
    server_name: str = ""


@dataclass(frozen=True)
class Endpoint:
    address: str  # host:port (IPv6 as [addr]:port) or unix:/path
    labels: Mapping[str, str] = field(default_factory=dict)  # the node's labels (node selectors)


ClientFactory = Callable[[str, Endpoint], AgentClient]


def grpc_client_factory(tls: TlsFiles | None = None, timeout: float = 10.0) -> ClientFactory:
    """Clients over real gRPC channels (insecure, or mutual TLS with ``tls``)."""
    credentials = None
    options: list[tuple[str, str | int]] = list(CHANNEL_OPTIONS)
    if tls is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=tls.ca.read_bytes(),
            private_key=tls.key.read_bytes(),
            certificate_chain=tls.cert.read_bytes(),
        )
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))

    def make(node: str, endpoint: Endpoint) -> AgentClient:
        if credentials is not None:
            channel = grpc.aio.secure_channel(endpoint.address, credentials, options=options)
        else:
            channel = grpc.aio.insecure_channel(endpoint.address, options=options)
        return GrpcAgentClient(node, channel, timeout=timeout)

    return make


class AgentPool:
    """Endpoints by node, and the clients built for them."""

    def __init__(self, factory: ClientFactory, static: Mapping[str, Endpoint] | None = None) -> None:
        self._factory = factory
        self._static = dict(static or {})
        self._discovered: dict[str, Endpoint] = {}
        self._clients: dict[str, tuple[Endpoint, AgentClient]] = {}
        self._retired: list[AgentClient] = []
        self.on_change: Callable[[str], None] | None = None  # called with a node whose endpoint changed

    def endpoints(self) -> dict[str, Endpoint]:
        return {**self._discovered, **self._static}

    def nodes(self) -> frozenset[str]:
        return frozenset(self.endpoints())

    def set_discovered(self, node: str, endpoint: Endpoint | None) -> None:
        """Record (or forget, with None) the agent found on ``node``."""
        before = self.endpoints().get(node)
        if endpoint is None:
            self._discovered.pop(node, None)
        else:
            self._discovered[node] = endpoint
        if self.endpoints().get(node) != before and self.on_change is not None:
            self.on_change(node)

    def client(self, node: str) -> AgentClient:
        endpoint = self.endpoints().get(node)
        if endpoint is None:
            raise NoAgentError(node)
        cached = self._clients.get(node)
        if cached is not None and cached[0].address == endpoint.address:
            return cached[1]
        if cached is not None:
            self._retired.append(cached[1])
        client = self._factory(node, endpoint)
        self._clients[node] = (endpoint, client)
        return client

    async def close(self) -> None:
        for _, client in self._clients.values():
            await client.close()
        for client in self._retired:
            await client.close()
        self._clients.clear()
        self._retired.clear()
