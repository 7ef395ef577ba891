"""Builders for kubevpc custom resource bodies (plain dicts, as kopf hands them to handlers)."""

from __future__ import annotations

import itertools
import uuid as uuidlib
from typing import Any

GROUP_VERSION = "kubevpc.dev/v1alpha1"
_CLOCK = itertools.count()


def _timestamp(n: int) -> str:
    return f"2026-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"


def _meta(
    kind: str, name: str, namespace: str, labels: dict[str, str] | None, uid: str | None
) -> dict[str, Any]:
    return {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"{kind}/{namespace}/{name}")),
            "generation": 1,
            # Strictly increasing, so "older object wins" is deterministic in tests.
            "creationTimestamp": _timestamp(next(_CLOCK)),
            "labels": dict(labels or {}),
        },
    }


def vpc(
    name: str,
    *,
    vni: int | None = None,
    peerings: list[dict[str, Any]] | None = None,
    namespace: str = "default",
    status_vni: int | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    body = _meta("VPC", name, namespace, None, uid)
    body["spec"] = {}
    if vni is not None:
        body["spec"]["vni"] = vni
    if peerings is not None:
        body["spec"]["peerings"] = peerings
    body["status"] = {"vni": status_vni} if status_vni is not None else {}
    return body


def nic(
    name: str,
    *,
    vpc: str = "vpc-a",
    node: str = "node-a",
    ips: list[str] | None = None,
    tap: str | None = None,
    vf: str | None = None,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = _meta("NetworkInterface", name, namespace, labels, uid)
    device: dict[str, Any] = {"vf": {"name": vf}} if vf else {"tap": {"name": tap or f"tap-{name}"[:15]}}
    body["spec"] = {
        "vpcRef": {"name": vpc},
        "nodeName": node,
        "device": device,
        "ips": ips or ["10.0.0.1"],
        **spec,
    }
    body["status"] = {}
    return body


def load_balancer(
    name: str,
    *,
    vpc: str = "vpc-a",
    ip: str = "10.0.100.1",
    ports: list[dict[str, Any]] | None = None,
    targets: dict[str, str] | None = None,
    namespace: str = "default",
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = _meta("LoadBalancer", name, namespace, None, uid)
    body["spec"] = {
        "vpcRef": {"name": vpc},
        "type": "Internal",
        "ip": ip,
        "ports": ports or [{"protocol": "TCP", "port": 80}],
        **spec,
    }
    if targets is not None:
        body["spec"]["targetSelector"] = {"matchLabels": targets}
    body["status"] = {}
    return body


def nat_gateway(
    name: str,
    *,
    vpc: str = "vpc-a",
    ips: list[str] | None = None,
    ports: int | None = None,
    namespace: str = "default",
    uid: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body = _meta("NATGateway", name, namespace, None, uid)
    body["spec"] = {"vpcRef": {"name": vpc}, "ips": ips or ["203.0.113.1"], **spec}
    if ports is not None:
        body["spec"]["portsPerNetworkInterface"] = ports
    body["status"] = {}
    return body
