"""Namespace helpers for tests: the lab module the demo and benchmarks use, re-exported."""

from kubevpc_agent.lab.netns import (
    PREFIX,
    Netns,
    NetnsPool,
    inside,
    leftover_namespaces,
    netns_pool,
    sh,
    unique_name,
    wait_for,
)

__all__ = [
    "PREFIX",
    "Netns",
    "NetnsPool",
    "inside",
    "leftover_namespaces",
    "netns_pool",
    "sh",
    "unique_name",
    "wait_for",
]
