"""Operator lifecycle: kopf settings, the agent pool and fabric in memo, probes, agent discovery.

kopf settings follow the project's conventions: our finalizer ``kubevpc.dev/finalizer``, progress
and diff-base annotations under ``kubevpc.dev/``, and peering (leader election) or standalone as
configured (see ``config``). In discovery mode the agent pods are watched (host network: the pod
IP is the node's address) and the nodes' labels are indexed for LoadBalancer node selectors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kopf

from kubevpc_operator import FINALIZER, config
from kubevpc_operator.agents.fabric import Fabric, FabricSettings
from kubevpc_operator.agents.pool import AgentPool, Endpoint, grpc_client_factory
from kubevpc_operator.handlers.support import Indexed, ViewBuilder, post_event

ANNOTATIONS_PREFIX = "kubevpc.dev"


def build_fabric(settings: config.Settings, pool: AgentPool | None = None) -> Fabric:
    pool = pool or AgentPool(grpc_client_factory(settings.tls, settings.rpc_timeout), static=settings.agents)
    fabric_settings = FabricSettings(
        concurrency=settings.concurrency,
        poll_interval=settings.poll_interval,
        resync_interval=settings.resync_interval,
        vni_first=settings.vni_first,
        vni_last=settings.vni_last,
    )
    return Fabric(pool, fabric_settings, on_event=post_event)


@kopf.on.startup()
async def start(
    *,
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    kubevpc_vpcs: Mapping[Any, Iterable[Indexed]] | None = None,
    kubevpc_interfaces: Mapping[Any, Iterable[Indexed]] | None = None,
    kubevpc_load_balancers: Mapping[Any, Iterable[Indexed]] | None = None,
    kubevpc_nat_gateways: Mapping[Any, Iterable[Indexed]] | None = None,
    **kwargs: Any,
) -> None:
    """Settings, the agent pool and the fabric; the indices are live mappings kopf keeps filling."""
    ours: config.Settings = memo.get("settings") or config.active()
    memo.settings = ours
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATIONS_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # kopf's own log-derived events: warnings only
    if ours.peering:
        settings.peering.name = ours.peering
        settings.peering.mandatory = True
        if ours.priority is not None:
            settings.peering.priority = ours.priority
    fabric: Fabric = memo.get("fabric") or build_fabric(ours)
    builder = ViewBuilder(
        fabric,
        kubevpc_vpcs,
        kubevpc_interfaces,
        kubevpc_load_balancers,
        kubevpc_nat_gateways,
        kwargs.get("kubevpc_node_labels"),
    )
    fabric.attach(builder, builder.recorded)
    memo.fabric = fabric
    mode = (
        "static agents " + ", ".join(sorted(ours.agents))
        if ours.agents
        else f"agent pods {ours.agent_selector}"
    )
    leader = f"peering {ours.peering!r} (priority {ours.priority})" if ours.peering else "standalone"
    logger.info("Started kubevpc operator: %s, %s", mode, leader)


@kopf.on.cleanup()
async def stop(*, memo: kopf.Memo, **_: Any) -> None:
    fabric: Fabric | None = memo.get("fabric")
    if fabric is not None:
        await fabric.close()


@kopf.on.probe(id="agents")
def agents_probe(*, memo: kopf.Memo, **_: Any) -> dict[str, str]:
    """Liveness detail: each node's last sync (ok, or why not)."""
    fabric: Fabric | None = memo.get("fabric")
    if fabric is None:
        return {}
    return {node: report.error or "ok" for node, report in fabric.reports().items()}


if config.active().discovery:
    _DISCOVERY = config.active()

    @kopf.index("nodes")
    def kubevpc_node_labels(*, name: str, labels: Mapping[str, str], **_: Any) -> dict[str, dict[str, str]]:
        return {name: dict(labels)}

    @kopf.on.event("pods", labels=_DISCOVERY.selector_labels())
    async def agent_pod_event(
        *, event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        """Track the agent pod of every node: its IP (host network) and the configured port.

        Async so it runs in the operator's loop (kopf runs sync handlers in threads).
        """
        fabric: Fabric | None = memo.get("fabric")
        node = body.get("spec", {}).get("nodeName")
        if fabric is None or not node:
            return
        status = body.get("status") or {}
        ip = status.get("podIP") or status.get("hostIP")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        )
        if event.get("type") == "DELETED" or not ip or not ready:
            fabric.pool.set_discovered(node, None)
            return
        host = f"[{ip}]" if ":" in ip else ip
        fabric.pool.set_discovered(node, Endpoint(f"{host}:{_DISCOVERY.agent_port}"))
