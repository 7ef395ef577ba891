"""The PF's underlay next hop from the kernel neighbour table (NTF_ROUTER), as dpservice reads it."""

from __future__ import annotations

import pytest

from kubevpc_agent.dataplane.router_mac import Backoff, kernel_router_mac
from kubevpc_agent.lab.netns import NetnsPool, inside

pytestmark = pytest.mark.privileged


def test_only_a_router_flagged_neighbour_counts(netns: NetnsPool) -> None:
    node = netns.netns("node")
    netns.veth("pf0", node, "rt0", node)
    node.ip(
        "-6", "neigh", "replace", "fe80::7", "lladdr", "02:00:00:00:00:07", "dev", "pf0", "nud", "permanent"
    )
    with inside(node):
        assert kernel_router_mac("pf0") is None  # a neighbour, but not a router
    node.ip(
        "-6",
        "neigh",
        "replace",
        "fe80::1",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "pf0",
        "router",
        "nud",
        "permanent",
    )
    with inside(node):
        assert kernel_router_mac("pf0") == bytes.fromhex("020000000001")
        assert kernel_router_mac("nosuchdev") is None


def test_lookups_back_off_while_nothing_is_found_and_slow_down_once_found() -> None:
    backoff = Backoff(now=100.0)
    assert backoff.due == 100.0
    dues = []
    for _ in range(8):
        backoff.next(backoff.due, found=False)
        dues.append(backoff.due)
    gaps = [b - a for a, b in zip([100.0, *dues], dues, strict=False)]
    assert gaps == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.next(1000.0, found=True)
    assert backoff.due == 1060.0
