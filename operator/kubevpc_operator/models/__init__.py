"""Typed, frozen, validated views of the four custom resources (pure: no kopf, gRPC or API access)."""

from kubevpc_operator.models.common import LabelSelector, ObjectKey, SpecError
from kubevpc_operator.models.load_balancer import LbPort, LbProtocol, LoadBalancer, LoadBalancerType
from kubevpc_operator.models.nat_gateway import NATGateway, NatSlot
from kubevpc_operator.models.network_interface import (
    Device,
    DeviceKind,
    FirewallRule,
    NetworkInterface,
    Pxe,
)
from kubevpc_operator.models.vpc import VPC, Peering

__all__ = [
    "VPC",
    "Device",
    "DeviceKind",
    "FirewallRule",
    "LabelSelector",
    "LbPort",
    "LbProtocol",
    "LoadBalancer",
    "LoadBalancerType",
    "NATGateway",
    "NatSlot",
    "NetworkInterface",
    "ObjectKey",
    "Peering",
    "Pxe",
    "SpecError",
]
