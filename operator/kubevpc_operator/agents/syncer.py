"""One node's reconcile loop: observe the agent, plan against what it holds, apply, report.

Requests coalesce: while a sync runs, every new request joins the *next* sync (their scopes are
merged), so a burst of a thousand object changes costs a few syncs, not a thousand. Each sync
starts by asking the agent who it is (CheckInitialized):

- ABORTED "not initialized": the agent (re)started. ``Initialize`` is called, once, and
  everything the node should hold is replayed (a full sync against an empty agent).
- A UUID other than the one this syncer last saw: another process initialized a restarted agent,
  or this operator just started. Its state is listed in full and reconciled (no Initialize).
- The known UUID: the syncer's picture of the agent (kept current by ``simulate.after``) is
  reused for interfaces outside the request's scope, and node-wide tables are listed again.

``check`` is the cheap poll a kopf timer drives: it only calls CheckInitialized and schedules a
replay when the agent restarted, or a full resync when the last one is older than
``resync_interval``. Initialize is never called when CheckInitialized succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kubevpc_operator.agents.apply import ApplyAbortedError, OpResult, apply_ops
from kubevpc_operator.agents.errors import (
    AgentError,
    AgentNotInitializedError,
    AgentUnavailableError,
    NoAgentError,
)
from kubevpc_operator.agents.observe import observe_node, with_exports
from kubevpc_operator.agents.pool import AgentPool
from kubevpc_operator.planning.desired import NodeDesired
from kubevpc_operator.planning.node import plan_node
from kubevpc_operator.planning.ops import Op
from kubevpc_operator.planning.simulate import after
from kubevpc_operator.planning.state import Export, ObservedNode, Protected

logger = logging.getLogger("kubevpc.syncer")


class Planner(Protocol):
    def desired_for(self, node: str) -> tuple[NodeDesired, Protected]:
        """What ``node`` should hold now, and what must be left alone there."""
        ...


@dataclass(frozen=True)
class SyncReport:
    node: str
    finished: float  # monotonic clock
    uuid: str = ""
    results: tuple[OpResult, ...] = ()
    owners: frozenset[str] = frozenset()  # objects with state on this node
    waiting: Mapping[str, str] = field(default_factory=dict)  # uid -> what it waits for
    failures: Mapping[str, str] = field(default_factory=dict)  # uid -> first failure message
    exports: Mapping[Export, str] = field(default_factory=dict)  # underlay addresses after the sync
    error: str = ""  # the node could not be synced at all (no agent, unreachable)
    replayed: bool = False  # a full sync after the agent (re)started
    full: bool = False

    def state_of(self, uid: str) -> tuple[str, str]:
        """(Programmed | Pending | Failed | Unavailable, message) for one object on this node."""
        if self.error:
            return "Unavailable", self.error
        if uid in self.failures:
            return "Failed", self.failures[uid]
        if uid in self.waiting:
            return "Pending", f"waiting: {self.waiting[uid]}"
        return "Programmed", ""


class NodeSyncer:
    def __init__(
        self,
        node: str,
        pool: AgentPool,
        planner: Planner,
        *,
        concurrency: int = 64,
        poll_interval: float = 2.0,
        resync_interval: float = 300.0,
        on_report: Callable[[SyncReport], None] | None = None,
        on_result: Callable[[str, OpResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self._pool = pool
        self._planner = planner
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._resync_interval = resync_interval
        self._on_report = on_report
        self._on_result = on_result
        self._clock = clock
        self.uuid: str | None = None
        self.known: ObservedNode | None = None  # the agent's state after the last sync (same uuid)
        self.dirty: set[str] = set()  # interfaces whose children must be listed again
        self.last_report: SyncReport | None = None
        self._last_full = float("-inf")
        self._last_check = float("-inf")
        self._unavailable = ""
        self._next: asyncio.Future[SyncReport] | None = None
        self._next_scope: set[str] = set()
        self._next_full = False
        self._worker: asyncio.Task[None] | None = None

    # ---- requests ---------------------------------------------------------------------------

    async def sync(
        self, *, scope: Collection[str] = (), full: bool = False, max_age: float | None = None
    ) -> SyncReport:
        """A report from a sync that started after this call (or a recent one, with ``max_age``)."""
        recent = self.last_report
        if max_age is not None and recent is not None and not recent.error:
            age = self._clock() - recent.finished
            if age <= max_age:
                return recent
        return await asyncio.shield(self._request(scope, full))

    def request(self, *, scope: Collection[str] = (), full: bool = False) -> None:
        """Schedule a sync without waiting for it."""
        self._request(scope, full)

    def _request(self, scope: Collection[str], full: bool) -> asyncio.Future[SyncReport]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
            self._next_scope = set()
            self._next_full = False
        self._next_scope |= set(scope)
        self._next_full |= full
        future = self._next
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name=f"kubevpc sync {self.node}")
        return future

    async def _work(self) -> None:
        while self._next is not None:
            future, scope, full = self._next, self._next_scope, self._next_full
            self._next = None
            try:
                report = await self._run(scope, full)
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as error:  # a bug: hand it to every waiter, keep the loop alive
                logger.exception("Sync of node %s failed unexpectedly", self.node)
                future.set_exception(error)
                continue
            future.set_result(report)

    @property
    def busy(self) -> bool:
        """A sync is running or queued."""
        return self._next is not None or (self._worker is not None and not self._worker.done())

    async def wait_idle(self) -> None:
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def stop(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    # ---- the poll ---------------------------------------------------------------------------

    async def check(self) -> None:
        """CheckInitialized, rate-limited; schedules a replay or a due full resync."""
        now = self._clock()
        if now - self._last_check < self._poll_interval / 2:
            return
        self._last_check = now
        try:
            uuid = await self._pool.client(self.node).check_initialized()
        except NoAgentError:
            return
        except AgentNotInitializedError:
            logger.info("Agent on node %s is not initialized: initializing and replaying", self.node)
            self.request(full=True)
            return
        except AgentUnavailableError as error:
            if self._unavailable != str(error):
                logger.warning("Agent on node %s is unreachable: %s", self.node, error)
            self._unavailable = str(error)
            return
        self._unavailable = ""
        if uuid != self.uuid or now - self._last_full >= self._resync_interval:
            self.request(full=True)

    # ---- one sync ---------------------------------------------------------------------------

    async def _run(self, scope: Collection[str], full: bool) -> SyncReport:
        replayed = False
        results: list[OpResult] = []
        try:
            client = self._pool.client(self.node)
            try:
                uuid = await client.check_initialized()
            except AgentNotInitializedError:
                # Case: a fresh agent. Initialize exactly once; the full sync below replays.
                uuid = await client.initialize()
                logger.info("Initialized agent on node %s (UUID %s)", self.node, uuid)
                replayed = True
            if uuid != self.uuid:
                if self.uuid is not None:
                    logger.info(
                        "Agent on node %s restarted (UUID %s -> %s): replaying", self.node, self.uuid, uuid
                    )
                    replayed = True
                self.known = None
                self.dirty.clear()
            self.uuid = uuid
            full = full or self.known is None
            started = self._clock()
            observed = await observe_node(
                client, None if full else self.known, scope, self.dirty, self._concurrency
            )
            desired, protected = self._planner.desired_for(self.node)
            ops = plan_node(desired.state, observed.state, protected)
            try:
                results = await apply_ops(client, ops, self._concurrency, self._result_callback())
            except ApplyAbortedError as aborted:
                self.known = None
                return self._report(error=str(aborted.cause), results=aborted.results, desired=desired)
            self._remember(observed, results)
            if full:
                self._last_full = started
            self._unavailable = ""
            return self._report(results=results, desired=desired, replayed=replayed, full=full)
        except AgentError as error:
            self.known = None
            return self._report(error=str(error), results=results)

    def _result_callback(self) -> Callable[[OpResult], None] | None:
        if self._on_result is None:
            return None
        callback = self._on_result
        return lambda result: callback(self.node, result)

    def _remember(self, observed: ObservedNode, results: list[OpResult]) -> None:
        """The agent's state after the apply: the observation with the successful operations."""
        applied: list[Op] = [r.op for r in results if r.ok]
        changes: dict[Export, str | None] = {}
        self.dirty = set()  # the observation just listed every interface that was dirty
        for result in results:
            export = result.op.export
            interface_id = getattr(result.op, "interface_id", None)
            if not result.ok:
                if interface_id is not None:
                    self.dirty.add(interface_id)
            elif export is None:
                continue
            elif result.op.is_delete:
                changes[export] = None
            elif result.underlay:
                changes[export] = result.underlay
            elif interface_id is not None:
                # Case: the create found the object already there; list it to learn its address.
                self.dirty.add(interface_id)
        self.known = with_exports(observed, after(observed.state, applied), changes)

    def _report(
        self,
        *,
        results: list[OpResult],
        desired: NodeDesired | None = None,
        error: str = "",
        replayed: bool = False,
        full: bool = False,
    ) -> SyncReport:
        failures: dict[str, str] = {}
        for result in results:
            if result.ok or result.op.owner is None:
                continue
            message = f"{result.op.describe_failure()}: {result.error}"
            if result.skipped:
                message = f"{result.op.describe_failure()}: skipped after an earlier failure: {result.error}"
            failures.setdefault(result.op.owner.uid, message)
        report = SyncReport(
            node=self.node,
            finished=self._clock(),
            uuid=self.uuid or "",
            results=tuple(results),
            owners=desired.owners if desired is not None else frozenset(),
            waiting=desired.waiting if desired is not None else {},
            failures=failures,
            exports=dict(self.known.exports) if self.known is not None else {},
            error=error,
            replayed=replayed,
            full=full,
        )
        if error:
            logger.warning("Sync of node %s failed: %s", self.node, error)
        self.last_report = report
        if self._on_report is not None:
            self._on_report(report)
        return report


def _retrieve(future: asyncio.Future[SyncReport]) -> None:
    """Mark a fire-and-forget sync's exception as seen (it is logged by the worker)."""
    if not future.cancelled():
        future.exception()
