"""Drive the operator's kopf handlers in-process, with kopf-style kwargs and fake agents.

``OperatorHarness`` plays the API server and kopf's bookkeeping just enough for handler tests:
it stores bodies, keeps the indices as kopf would (by calling our index functions on every
change), calls a kind's reconcile/delete handler with ``body``/``patch``/``memo``/``param``/...,
applies the status patch as a JSON merge patch (what the API server does) and removes an object
once its delete handler succeeded. Events go to ``events``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import kopf

from kubevpc_operator import conditions, config
from kubevpc_operator.agents.fabric import Fabric
from kubevpc_operator.agents.pool import AgentPool, Endpoint
from kubevpc_operator.handlers import (
    lifecycle,
    load_balancers,
    nat_gateways,
    network_interfaces,
    support,
    vpcs,
)
from kubevpc_operator.handlers.support import Trigger
from kubevpc_operator.planning.state import Owner
from testkit.fake_agent import FakeAgent

HANDLERS: dict[str, tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any]]] = {
    # kind: (index name, index function, reconcile, delete)
    "VPC": ("kubevpc_vpcs", vpcs.kubevpc_vpcs, vpcs.reconcile_vpc, vpcs.delete_vpc),
    "NetworkInterface": (
        "kubevpc_interfaces",
        network_interfaces.kubevpc_interfaces,
        network_interfaces.reconcile_network_interface,
        network_interfaces.delete_network_interface,
    ),
    "LoadBalancer": (
        "kubevpc_load_balancers",
        load_balancers.kubevpc_load_balancers,
        load_balancers.reconcile_load_balancer,
        load_balancers.delete_load_balancer,
    ),
    "NATGateway": (
        "kubevpc_nat_gateways",
        nat_gateways.kubevpc_nat_gateways,
        nat_gateways.reconcile_nat_gateway,
        nat_gateways.delete_nat_gateway,
    ),
}
ORDER = ("VPC", "NATGateway", "NetworkInterface", "LoadBalancer")


@dataclass
class Outcome:
    """What one handler call did."""

    error: BaseException | None = None
    patch: dict[str, Any] = field(default_factory=dict)

    @property
    def temporary(self) -> bool:
        return isinstance(self.error, kopf.TemporaryError)

    @property
    def permanent(self) -> bool:
        return isinstance(self.error, kopf.PermanentError)


class OperatorHarness:
    def __init__(
        self,
        nodes: Iterable[str] = ("node-a", "node-b", "node-c"),
        agents: dict[str, FakeAgent] | None = None,
        **settings: Any,
    ) -> None:
        """Fake agents for ``nodes`` (or the given ones: a second operator on the same agents)."""
        self.agents = agents if agents is not None else {node: FakeAgent(node) for node in nodes}
        values: dict[str, Any] = {
            "agents": {n: Endpoint(f"fake://{n}") for n in self.agents},
            "retry_delay": 0.1,
            "poll_interval": 0.0,  # every timer call polls (no rate limit between test steps)
        }
        values.update(settings)
        self.settings = config.Settings(**values)
        self.pool = AgentPool(lambda node, endpoint: self.agents[node], static=self.settings.agents)
        self.fabric: Fabric = lifecycle.build_fabric(self.settings, self.pool)
        self.fabric._on_event = self._event
        self.events: list[tuple[str, str, str, str]] = []  # (object name, type, reason, message)
        self.bodies: dict[str, dict[str, Any]] = {}  # uid -> body
        self.indices: dict[str, dict[str, list[support.Indexed]]] = {
            name: {} for name, *_ in HANDLERS.values()
        }
        self.builder = support.ViewBuilder(self.fabric, *(self.indices[HANDLERS[k][0]] for k in HANDLERS))
        self.fabric.attach(self.builder, self.builder.recorded)
        self.memo = kopf.Memo(settings=self.settings, fabric=self.fabric)
        self.logger = logging.getLogger("test.operator")

    def _event(self, owner: Owner, type_: str, reason: str, message: str) -> None:
        self.events.append((owner.name, type_, reason, message))

    # ---- the "API server" --------------------------------------------------------------------

    def apply(self, *bodies: dict[str, Any]) -> None:
        """Create or update objects (a spec change bumps the generation)."""
        for body in bodies:
            uid = body["metadata"]["uid"]
            stored = self.bodies.get(uid)
            if stored is not None:
                if stored.get("spec") != body.get("spec"):
                    stored["metadata"]["generation"] += 1
                stored["spec"] = copy.deepcopy(body["spec"])
                stored["metadata"]["labels"] = copy.deepcopy(body["metadata"].get("labels", {}))
            else:
                self.bodies[uid] = copy.deepcopy(body)
            self._reindex(uid)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return next(b for b in self.bodies.values() if b["kind"] == kind and b["metadata"]["name"] == name)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.get(kind, name).get("status") or {})

    def condition(self, kind: str, name: str, type_: str = "Ready") -> dict[str, Any]:
        for item in self.status(kind, name).get("conditions", []):
            if item["type"] == type_:
                return dict(item)
        return {}

    def mark_deleted(self, kind: str, name: str) -> None:
        body = self.get(kind, name)
        body["metadata"]["deletionTimestamp"] = "2026-01-01T01:00:00Z"
        self._reindex(body["metadata"]["uid"])

    def _reindex(self, uid: str) -> None:
        body = self.bodies.get(uid)
        for index_name, *_ in HANDLERS.values():
            self.indices[index_name].pop(uid, None)
        if body is None:
            return
        index_name, function, *_ = HANDLERS[body["kind"]]
        for key, value in function(body=kopf.Body(copy.deepcopy(body))).items():
            self.indices[index_name][key] = [value]

    # ---- kopf ----------------------------------------------------------------------------------

    async def reconcile(
        self, kind: str, name: str, trigger: Trigger = Trigger.CHANGE, retry: int = 0
    ) -> Outcome:
        body = self.get(kind, name)
        _, _, handler, _ = HANDLERS[kind]
        patch = kopf.Patch()
        outcome = Outcome()
        try:
            await handler(
                body=kopf.Body(copy.deepcopy(body)),
                patch=patch,
                memo=self.memo,
                logger=self.logger,
                param=trigger,
                retry=retry,
            )
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            outcome.error = error
        status_patch = dict(patch.get("status", {}))
        outcome.patch = status_patch
        if status_patch:
            body["status"] = conditions.merge(body.get("status"), status_patch)
            self._reindex(body["metadata"]["uid"])
        return outcome

    async def delete(self, kind: str, name: str) -> Outcome:
        """Run the delete handler; on success the object (and its finalizer) is gone."""
        body = self.get(kind, name)
        if not body["metadata"].get("deletionTimestamp"):
            self.mark_deleted(kind, name)
        _, _, _, handler = HANDLERS[kind]
        outcome = Outcome()
        patch = kopf.Patch()
        try:
            await handler(
                body=kopf.Body(copy.deepcopy(body)), patch=patch, memo=self.memo, logger=self.logger
            )
        except (kopf.TemporaryError, kopf.PermanentError) as error:
            outcome.error = error
        if outcome.error is None:
            uid = body["metadata"]["uid"]
            del self.bodies[uid]
            self._reindex(uid)
        elif patch.get("status"):
            body["status"] = conditions.merge(body.get("status"), dict(patch["status"]))
        return outcome

    async def reconcile_all(self, trigger: Trigger = Trigger.CHANGE) -> dict[str, Outcome]:
        results = {}
        for kind in ORDER:
            for body in sorted(
                (b for b in self.bodies.values() if b["kind"] == kind), key=lambda b: b["metadata"]["name"]
            ):
                results[f"{kind}/{body['metadata']['name']}"] = await self.reconcile(
                    kind, body["metadata"]["name"], trigger
                )
        return results

    async def settle(self, rounds: int = 10) -> dict[str, Outcome]:
        """Reconcile everything until no handler asks for a retry (as kopf's retries would)."""
        results: dict[str, Outcome] = {}
        for _ in range(rounds):
            await self.idle()
            results = await self.reconcile_all()
            if not any(r.temporary for r in results.values()):
                await self.idle()
                # Then one round of the timers (status that depends on other objects catches up).
                await self.reconcile_all(Trigger.TIMER)
                await self.idle()
                return results
        raise AssertionError(f"did not settle: { {k: str(r.error) for k, r in results.items() if r.error} }")

    async def idle(self, timeout: float = 30.0) -> None:
        """Until no node sync is queued or running (fan-out follow-ups included)."""
        await asyncio.wait_for(self.fabric.wait_idle(), timeout)

    async def close(self) -> None:
        await self.fabric.close()
