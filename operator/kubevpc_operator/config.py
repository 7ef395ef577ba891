"""The operator's settings: one dataclass, filled from the command line and/or ``KUBEVPC_*`` variables.

Agents are found in one of two ways:
- local mode: ``--agent node-a=127.0.0.1:1337`` (repeatable), ``KUBEVPC_AGENTS="node-a=...,node-b=..."``
  or a YAML file (``--agents-file``): ``{node-a: 127.0.0.1:1337}`` or
  ``{node-a: {address: "[fd00::1]:1337", labels: {zone: a}}}``;
- discovery (when no agent is configured): the agent pods (host network) in ``--agent-namespace``
  matching ``--agent-selector``; the node's agent is at ``<pod IP>:<--agent-port>``.

Leader election: with ``--peering NAME`` several replicas use kopf peering (a ``ClusterKopfPeering``
or ``KopfPeering`` object of that name must exist); the replica with the highest priority is active,
the others pause. A leader that dies without saying goodbye (SIGKILL, a lost node) keeps its place
until its entry expires (``--peering-lifetime``, 60 s); then the next priority resumes. Without
peering the operator runs standalone (one replica).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubevpc_operator.agents.pool import Endpoint, TlsFiles

DEFAULT_AGENT_SELECTOR = "app.kubernetes.io/name=kubevpc,app.kubernetes.io/component=agent"
DEFAULT_AGENT_PORT = 1337  # dpservice's default --grpc-port


class ConfigError(ValueError):
    """A setting that cannot be used as given."""


@dataclass(frozen=True)
class Settings:
    agents: Mapping[str, Endpoint] = field(default_factory=dict)  # local mode: node -> endpoint
    agent_selector: str = DEFAULT_AGENT_SELECTOR  # discovery: label selector of the agent pods
    agent_namespace: str = ""  # discovery: namespace of the agent pods ("" = every namespace)
    discovery_interval: float = 5.0  # seconds between listings of the agent pods
    agent_port: int = DEFAULT_AGENT_PORT
    tls: TlsFiles | None = None  # mutual TLS towards the agents
    rpc_timeout: float = 10.0  # seconds per agent call
    concurrency: int = 64  # agent calls in flight per node
    poll_interval: float = 2.0  # seconds between CheckInitialized polls (agent restarts show within it)
    resync_interval: float = 300.0  # seconds between full observations of an agent (drift repair)
    status_interval: float = 30.0  # seconds between status refreshes of each object
    retry_delay: float = 2.0  # seconds before a handler retries (waiting for a VPC, an agent, ...)
    peering: str | None = None  # kopf peering name: leader election between replicas
    priority: int | None = None  # kopf peering priority (default with peering: random)
    peering_lifetime: int = 60  # seconds a replica that stopped answering still counts (kopf's default)
    namespaces: tuple[str, ...] = ()  # watched namespaces; empty: the whole cluster
    liveness: str | None = None  # e.g. http://0.0.0.0:8080/healthz
    vni_first: int = 1
    vni_last: int = 0xFFFFFF
    router_address: str = ""  # border router's underlay IPv6: default routes of every VNI go there
    verbose: bool = False  # kopf's verbose logging
    debug: bool = False

    @property
    def discovery(self) -> bool:
        """Find agents from their pods (no static agents configured)."""
        return not self.agents

    def selector_labels(self) -> dict[str, str]:
        return parse_labels(self.agent_selector)

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        args = _parser(env).parse_args(argv)
        agents: dict[str, Endpoint] = {}
        if args.agents_file:
            agents.update(load_agents_file(Path(args.agents_file)))
        for item in args.agent or ():
            agents.update(parse_agents(item))
        tls = None
        if args.tls_ca or args.tls_cert or args.tls_key:
            if not (args.tls_ca and args.tls_cert and args.tls_key):
                raise ConfigError("mutual TLS needs --tls-ca, --tls-cert and --tls-key together")
            tls = TlsFiles(
                Path(args.tls_ca), Path(args.tls_cert), Path(args.tls_key), args.tls_server_name or ""
            )
        vni_first, vni_last = parse_range(args.vni_range)
        priority = args.priority
        if args.peering and priority is None:
            priority = random.randint(1, 32767)  # kopf peering: distinct priorities elect one leader
        return cls(
            agents=agents,
            agent_selector=args.agent_selector,
            agent_namespace=args.agent_namespace,
            discovery_interval=args.discovery_interval,
            agent_port=args.agent_port,
            tls=tls,
            rpc_timeout=args.rpc_timeout,
            concurrency=args.concurrency,
            poll_interval=args.poll_interval,
            resync_interval=args.resync_interval,
            status_interval=args.status_interval,
            retry_delay=args.retry_delay,
            peering=args.peering or None,
            priority=priority,
            peering_lifetime=args.peering_lifetime,
            namespaces=tuple(args.namespace or ()),
            liveness=args.liveness or None,
            vni_first=vni_first,
            vni_last=vni_last,
            router_address=parse_router_address(args.router_address),
            verbose=args.verbose,
            debug=args.debug,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return cls.from_args([], env)


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def default(name: str, fallback: str = "") -> str:
        return env.get(f"KUBEVPC_{name}", fallback)

    parser = argparse.ArgumentParser(prog="kubevpc-operator", description="kubevpc operator (kopf)")
    agents_env = default("AGENTS")
    parser.add_argument(
        "--agent",
        action="append",
        default=[agents_env] if agents_env else None,
        metavar="NODE=HOST:PORT",
        help="static agent endpoint (local mode); repeatable, or comma-separated [$KUBEVPC_AGENTS]",
    )
    parser.add_argument("--agents-file", default=default("AGENTS_FILE"), help="YAML map of node -> agent")
    parser.add_argument("--agent-selector", default=default("AGENT_SELECTOR", DEFAULT_AGENT_SELECTOR))
    parser.add_argument(
        "--agent-namespace", default=default("AGENT_NAMESPACE"), help="namespace of agent pods"
    )
    parser.add_argument("--discovery-interval", type=float, default=float(default("DISCOVERY_INTERVAL", "5")))
    parser.add_argument("--agent-port", type=int, default=int(default("AGENT_PORT", str(DEFAULT_AGENT_PORT))))
    parser.add_argument("--tls-ca", default=default("TLS_CA"), help="CA bundle that signed the agents' certs")
    parser.add_argument("--tls-cert", default=default("TLS_CERT"), help="client certificate (PEM)")
    parser.add_argument("--tls-key", default=default("TLS_KEY"), help="client key (PEM)")
    parser.add_argument("--tls-server-name", default=default("TLS_SERVER_NAME"))
    parser.add_argument("--rpc-timeout", type=float, default=float(default("RPC_TIMEOUT", "10")))
    parser.add_argument("--concurrency", type=int, default=int(default("CONCURRENCY", "64")))
    parser.add_argument("--poll-interval", type=float, default=float(default("POLL_INTERVAL", "2")))
    parser.add_argument("--resync-interval", type=float, default=float(default("RESYNC_INTERVAL", "300")))
    parser.add_argument("--status-interval", type=float, default=float(default("STATUS_INTERVAL", "30")))
    parser.add_argument("--retry-delay", type=float, default=float(default("RETRY_DELAY", "2")))
    parser.add_argument("--peering", default=default("PEERING"), help="kopf peering name (leader election)")
    priority_env = default("PRIORITY")
    parser.add_argument("--priority", type=int, default=int(priority_env) if priority_env else None)
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=int(default("PEERING_LIFETIME", "60")),
        help="seconds before a killed leader's place is taken (its peering entry expires)",
    )
    namespaces_env = [n for n in default("NAMESPACES").split(",") if n]
    parser.add_argument("--namespace", action="append", default=namespaces_env or None)
    parser.add_argument("--liveness", default=default("LIVENESS"), help="e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--vni-range", default=default("VNI_RANGE", "1-16777215"), help="FIRST-LAST")
    parser.add_argument(
        "--router-address",
        default=default("ROUTER_ADDRESS"),
        help="underlay IPv6 of the border router; every VNI gets 0.0.0.0/0 and ::/0 routes to it",
    )
    parser.add_argument("--verbose", action="store_true", default=default("VERBOSE") == "1")
    parser.add_argument("--debug", action="store_true", default=default("DEBUG") == "1")
    return parser


def parse_agents(text: str) -> dict[str, Endpoint]:
    """``node-a=127.0.0.1:1337,node-b=[::1]:1337``."""
    agents = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        node, sep, address = item.partition("=")
        if not sep or not node or not address:
            raise ConfigError(f"agent {item!r}: expected NODE=HOST:PORT")
        agents[node] = Endpoint(address)
    return agents


def load_agents_file(path: Path) -> dict[str, Endpoint]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a map of node -> address")
    data = data.get("nodes", data)
    agents = {}
    for node, value in data.items():
        if isinstance(value, str):
            agents[str(node)] = Endpoint(value)
        elif isinstance(value, dict) and isinstance(value.get("address"), str):
            labels = {str(k): str(v) for k, v in (value.get("labels") or {}).items()}
            agents[str(node)] = Endpoint(value["address"], labels)
        else:
            raise ConfigError(f"{path}: node {node!r}: expected an address or {{address, labels}}")
    return agents


def parse_labels(selector: str) -> dict[str, str]:
    """``a=b,c=d`` (equality-based selectors only)."""
    labels = {}
    for item in (part.strip() for part in selector.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"label selector {selector!r}: only key=value terms are supported")
        labels[key.strip()] = value.strip()
    return labels


def parse_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise ConfigError(f"VNI range {text!r}: expected FIRST-LAST") from None
    if not sep or not 1 <= low <= high <= 0xFFFFFF:
        raise ConfigError(f"VNI range {text!r}: expected 1 <= FIRST <= LAST <= 16777215")
    return low, high


def parse_router_address(text: str) -> str:
    """The border router's underlay address in canonical form ("" = no default routes)."""
    if not text:
        return ""
    try:
        return str(ipaddress.IPv6Address(text.strip()))
    except ValueError:
        raise ConfigError(f"router address {text!r}: expected an IPv6 address") from None


_active: Settings | None = None


def activate(settings: Settings) -> None:
    """Make ``settings`` the ones handlers register with (set before importing the handlers)."""
    global _active  # noqa: PLW0603
    _active = settings


def active() -> Settings:
    """The activated settings, else the ones from the environment."""
    return _active if _active is not None else Settings.from_env()
