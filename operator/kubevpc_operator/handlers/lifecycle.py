"""Operator lifecycle: kopf settings, the agent pool and fabric in memo, probes, agent discovery.

kopf settings follow the project's conventions: our finalizer ``kubevpc.dev/finalizer``, progress
and diff-base annotations under ``kubevpc.dev/``, and peering (leader election) or standalone as
configured (see ``config``). In discovery mode the agent pods are listed (``agents.discovery``:
host network, so the pod IP is the node's address) and the nodes' labels are indexed for
LoadBalancer node selectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from kubevpc_operator import FINALIZER, config
from kubevpc_operator.agents.discovery import PodDiscovery
from kubevpc_operator.agents.fabric import Fabric, FabricSettings
from kubevpc_operator.agents.pool import AgentPool, grpc_client_factory
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
        router_address=settings.router_address,
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
        settings.peering.lifetime = ours.peering_lifetime
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
    if ours.discovery and memo.get("discovery") is None:
        discovery = PodDiscovery(
            fabric.pool,
            _login(settings),
            namespace=ours.agent_namespace,
            selector=ours.agent_selector,
            port=ours.agent_port,
            interval=ours.discovery_interval,
        )
        memo.discovery = asyncio.create_task(discovery.run(), name="kubevpc agent discovery")
    mode = (
        "static agents " + ", ".join(sorted(ours.agents))
        if ours.agents
        else f"agent pods {ours.agent_selector}"
    )
    leader = f"peering {ours.peering!r} (priority {ours.priority})" if ours.peering else "standalone"
    logger.info("Started kubevpc operator: %s, %s", mode, leader)


@kopf.on.cleanup()
async def stop(*, memo: kopf.Memo, **_: Any) -> None:
    discovery: asyncio.Task[None] | None = memo.get("discovery")
    if discovery is not None:
        discovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await discovery
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


def _login(settings: kopf.OperatorSettings) -> Callable[[], Any]:
    """Credentials for discovery's own API calls: the service account, else the kubeconfig."""

    def login() -> Any:
        return kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
            settings=settings
        )

    return login


if config.active().discovery:

    @kopf.index("nodes")
    def kubevpc_node_labels(*, name: str, labels: Mapping[str, str], **_: Any) -> dict[str, dict[str, str]]:
        """Node labels, for LoadBalancer node selectors."""
        return {name: dict(labels)}
