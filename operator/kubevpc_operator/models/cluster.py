"""A consistent snapshot of every kubevpc object the operator can see, plus the agent nodes.

The handlers build it from kopf's in-memory indices; planning resolves it into what every node's
agent should hold. Objects being deleted are left out (so their state goes); objects whose spec is
invalid are listed in ``frozen`` (so their existing state stays exactly as it is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubevpc_operator.models.common import ObjectKey
from kubevpc_operator.models.load_balancer import LoadBalancer
from kubevpc_operator.models.nat_gateway import NATGateway
from kubevpc_operator.models.network_interface import NetworkInterface
from kubevpc_operator.models.vpc import VPC


@dataclass(frozen=True)
class Node:
    """A node with an agent; ``labels`` feed LoadBalancer node selectors."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterView:
    vpcs: tuple[VPC, ...] = ()
    interfaces: tuple[NetworkInterface, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] = ()
    nat_gateways: tuple[NATGateway, ...] = ()
    nodes: tuple[Node, ...] = ()
    frozen: frozenset[str] = frozenset()  # uids of invalid objects: keep their state, create nothing
    frozen_vpcs: frozenset[ObjectKey] = frozenset()  # invalid VPCs: everything in them is frozen too

    def node_names(self) -> frozenset[str]:
        return frozenset(node.name for node in self.nodes)
