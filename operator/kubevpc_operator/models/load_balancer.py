"""A LoadBalancer: one IP and up to 15 (protocol, port) pairs in a VPC, Maglev-balanced.

Instances run on the nodes ``spec.nodeSelector`` picks (default: every node that hosts a target).
Targets are the NetworkInterfaces of the same VPC that ``spec.targetSelector`` selects; each gets
the LB IP as a load balancer prefix, and that prefix's underlay address is the instance's target.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from kubevpc_operator.models.common import BodyReader, IPAddress, LabelSelector, ObjectKey, Resource

MAX_PORTS = 15  # dpservice: loadbalanced_ports < 16

FIELDS = (
    "spec.vpcRef.name",
    "spec.type",
    "spec.ip",
    "spec.ports[].protocol",
    "spec.ports[].port",
    "spec.targetSelector",
    "spec.targetSelector.matchLabels",
    "spec.targetSelector.matchExpressions[].key",
    "spec.targetSelector.matchExpressions[].operator",
    "spec.targetSelector.matchExpressions[].values",
    "spec.nodeSelector",
    "spec.nodeSelector.matchLabels",
    "spec.nodeSelector.matchExpressions[].key",
    "spec.nodeSelector.matchExpressions[].operator",
    "spec.nodeSelector.matchExpressions[].values",
)


class LoadBalancerType(Enum):
    PUBLIC = "Public"
    INTERNAL = "Internal"


class LbProtocol(Enum):
    TCP = 6
    UDP = 17


@dataclass(frozen=True)
class LbPort:
    protocol: LbProtocol
    port: int

    @property
    def sort_key(self) -> tuple[int, int]:
        return (self.protocol.value, self.port)


@dataclass(frozen=True)
class LoadBalancer(Resource):
    vpc: ObjectKey
    type: LoadBalancerType
    ip: IPAddress
    ports: tuple[LbPort, ...]
    target_selector: LabelSelector | None  # None: no targets; {}: every interface of the VPC
    node_selector: LabelSelector | None  # None: the nodes of the targets

    @classmethod
    def read(cls, reader: BodyReader) -> LoadBalancer:
        meta = reader.meta()
        vpc_name = reader.string("spec.vpcRef.name", required=True)
        type_text = reader.string("spec.type", default="Public")
        try:
            lb_type = LoadBalancerType(type_text)
        except ValueError:
            reader.fail("spec.type", f"{type_text!r} is not Public or Internal")
            lb_type = LoadBalancerType.PUBLIC
        ip = reader.ip("spec.ip", required=True)
        if ip is not None and ip.is_unspecified:
            reader.fail("spec.ip", f"{ip} is not a usable address")
        ports: list[LbPort] = []
        for index, item in reader.items("spec.ports"):
            if index >= MAX_PORTS:
                reader.fail("spec.ports", f"at most {MAX_PORTS} ports")
                break
            protocol_text = reader.string(f"{item}.protocol", default="TCP")
            port = reader.integer(f"{item}.port", minimum=1, maximum=65535)
            if port is None:
                reader.fail(f"{item}.port", "required")
                continue
            try:
                protocol = LbProtocol[protocol_text]
            except KeyError:
                reader.fail(f"{item}.protocol", f"{protocol_text!r} is not TCP or UDP")
                continue
            entry = LbPort(protocol, port)
            if entry in ports:
                reader.fail(item, f"{protocol_text}/{port} is listed twice")
            else:
                ports.append(entry)
        if not ports and not reader.problems:
            reader.fail("spec.ports", "required: at least one (protocol, port)")
        target_selector = reader.selector("spec.targetSelector")
        node_selector = reader.selector("spec.nodeSelector")
        reader.raise_if_failed()
        assert ip is not None
        return cls(
            meta=meta,
            vpc=ObjectKey(meta.namespace, vpc_name),
            type=lb_type,
            ip=ip,
            ports=tuple(sorted(ports, key=lambda p: p.sort_key)),
            target_selector=target_selector,
            node_selector=node_selector,
        )

    def host_prefix(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.ip)
