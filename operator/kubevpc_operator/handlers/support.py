"""What the kind handlers share: the triggers every kind reconciles on, index entries, the cluster
view built from the indices, status writes without churn, retries, and Kubernetes events for objects
(no handler is registered here).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from kubevpc_operator import GROUP, VERSION, conditions, config
from kubevpc_operator.agents.fabric import Fabric
from kubevpc_operator.agents.syncer import SyncReport
from kubevpc_operator.conditions import Outcome
from kubevpc_operator.models import VPC, LoadBalancer, NATGateway, NetworkInterface, SpecError
from kubevpc_operator.models.cluster import ClusterView, Node
from kubevpc_operator.models.common import ObjectKey
from kubevpc_operator.planning.report import recorded_exports
from kubevpc_operator.planning.state import Export, Owner


class Trigger(enum.Enum):
    """Why a reconcile function runs (kopf's ``param=``): a change of the object, or its timer."""

    CHANGE = "change"
    TIMER = "timer"


Reconcile = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Reconciling:
    """What a kind's reconcile step is given besides its model: why it runs and where to act."""

    fabric: Fabric
    settings: config.Settings
    trigger: Trigger
    logger: Any


Status = tuple[dict[str, Any], Outcome]
Step = Callable[[Reconciling, Any], Awaitable[Status]]


def reconciles(
    plural: str,
    kind: str,
    interval: float,
    before: Callable[[Reconciling], Awaitable[None]] | None = None,
) -> Callable[[Step], Reconcile]:
    """Make one step reconcile a kind on every trigger: create, update and resume (a change), and a
    timer every ``interval`` seconds. It reads the whole object, never kopf's diff.

    The step gets the parsed model (an invalid spec never reaches it: :func:`parse` records that)
    and returns the status fields and outcome, which are written without churn and settled into
    kopf's retries here. ``before`` runs first on every trigger, whether the spec is valid or not.
    The handler keeps the step's name, so kopf's handler ids stay what they were.
    """

    def register(step: Step) -> Reconcile:
        @functools.wraps(step)
        async def reconcile(
            *,
            body: kopf.Body,
            patch: kopf.Patch,
            memo: kopf.Memo,
            logger: Any,
            param: Trigger = Trigger.CHANGE,
            retry: int = 0,
            **_: Any,
        ) -> None:
            fabric, settings = from_memo(memo)
            context = Reconciling(fabric, settings, param, logger)
            if before is not None:
                await before(context)
            model = parse(kind, body, patch, param, logger)
            if model is None:
                return
            fields, outcome = await step(context, model)
            write_status(patch, body, fields, outcome)
            settle(outcome, param, settings.retry_delay, retry)

        kopf.timer(GROUP, VERSION, plural, interval=interval, param=Trigger.TIMER)(reconcile)
        kopf.on.resume(GROUP, VERSION, plural, param=Trigger.CHANGE)(reconcile)
        kopf.on.update(GROUP, VERSION, plural, param=Trigger.CHANGE)(reconcile)
        kopf.on.create(GROUP, VERSION, plural, param=Trigger.CHANGE)(reconcile)
        return reconcile

    return register


def from_memo(memo: kopf.Memo) -> tuple[Fabric, config.Settings]:
    """The fabric and our settings; marks the fabric ready (kopf runs resource handlers only once
    every index is filled)."""
    fabric: Fabric = memo.fabric
    fabric.mark_ready()
    return fabric, memo.settings


@dataclass(frozen=True)
class Indexed:
    """One object as the indices keep it: its model (None when invalid) and recorded addresses."""

    kind: str
    uid: str
    key: ObjectKey
    model: Any = None
    error: str = ""
    deleting: bool = False
    recorded: Mapping[tuple[str, Export], str] = field(default_factory=dict)
    fingerprint: tuple[Any, ...] = ()  # changes when anything planning reads changes (not on status)


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "VPC": VPC.from_body,
    "NetworkInterface": NetworkInterface.from_body,
    "LoadBalancer": LoadBalancer.from_body,
    "NATGateway": NATGateway.from_body,
}


def index_entry(kind: str, body: Mapping[str, Any]) -> dict[str, Indexed]:
    """The index value for one object, keyed by uid."""
    meta = body.get("metadata", {})
    uid = str(meta.get("uid", ""))
    key = ObjectKey(str(meta.get("namespace", "default")), str(meta.get("name", "")))
    deleting = bool(meta.get("deletionTimestamp"))
    try:
        model, error = _PARSERS[kind](body), ""
    except SpecError as problem:
        model, error = None, str(problem)
    # What planning reads: the spec (generation), labels, deletion, and for a VPC its recorded VNI.
    fingerprint = (
        meta.get("generation"),
        tuple(sorted((meta.get("labels") or {}).items())),
        deleting,
        (body.get("status") or {}).get("vni") if kind == "VPC" else None,
        error,
    )
    return {uid: Indexed(kind, uid, key, model, error, deleting, recorded_exports(kind, body), fingerprint)}


def entries(index: Mapping[Any, Iterable[Indexed]] | None) -> list[Indexed]:
    if index is None:
        return []
    return [entry for store in index.values() for entry in store]


class ViewBuilder:
    """Builds the ClusterView from the kopf indices (live mappings) on every call.

    An object whose current spec is invalid keeps its last valid model (seen by this process), so
    a bad edit leaves its dataplane state as it was; without one it is *frozen* (its state is not
    touched). Objects being deleted are left out, so their state goes. A VNI just allocated for a
    VPC is visible before its status records it.
    """

    def __init__(  # noqa: PLR0917
        self,
        fabric: Fabric,
        vpcs: Mapping[Any, Iterable[Indexed]] | None,
        interfaces: Mapping[Any, Iterable[Indexed]] | None,
        load_balancers: Mapping[Any, Iterable[Indexed]] | None,
        nat_gateways: Mapping[Any, Iterable[Indexed]] | None,
        node_labels: Mapping[Any, Iterable[Mapping[str, str]]] | None = None,
    ) -> None:
        self._fabric = fabric
        self._indices = (vpcs, interfaces, load_balancers, nat_gateways)
        self._node_labels = node_labels
        self._last_valid: dict[str, Any] = {}
        self._cached: tuple[tuple[Any, ...], ClusterView] | None = None

    def __call__(self) -> ClusterView:
        """The view; the same object as last time when nothing planning reads has changed.

        Status patches (most events) leave the fingerprints alone, so the fabric's topology, keyed
        by the view's identity, is not recomputed for them.
        """
        key = self._key()
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        view = self._build()
        self._cached = (key, view)
        return view

    def _key(self) -> tuple[Any, ...]:
        fingerprints = frozenset(
            (entry.uid, entry.fingerprint) for index in self._indices for entry in entries(index)
        )  # a set: kopf's indices do not keep an order
        endpoints = tuple(
            sorted((n, tuple(sorted(e.labels.items()))) for n, e in self._fabric.pool.endpoints().items())
        )
        labels = tuple(
            (name, tuple(sorted(found.items())))
            for name, store in sorted((self._node_labels or {}).items())
            for found in store
        )
        return fingerprints, endpoints, labels, self._fabric.reservations()

    def _build(self) -> ClusterView:
        vpcs_index, interfaces_index, lbs_index, gateways_index = self._indices
        frozen: set[str] = set()
        frozen_vpcs: set[ObjectKey] = set()
        live: set[str] = set()

        def pick(entry: Indexed) -> Any:
            live.add(entry.uid)
            if entry.model is not None:
                self._last_valid[entry.uid] = entry.model
                return entry.model
            model = self._last_valid.get(entry.uid)
            if model is None:
                frozen.add(entry.uid)
            return model

        vpcs: list[VPC] = []
        for entry in entries(vpcs_index):
            vpc = pick(entry)  # a VPC being deleted stays: its dependents still need its VNI
            if vpc is None:
                frozen_vpcs.add(entry.key)
                continue
            reserved = self._fabric.reserved_vni(entry.uid)
            if vpc.effective_vni is None and reserved is not None:
                vpc = dataclasses.replace(vpc, status_vni=reserved)
            vpcs.append(vpc)
        kinds: list[list[Any]] = [[], [], []]
        for bucket, index in zip(kinds, (interfaces_index, lbs_index, gateways_index), strict=True):
            for entry in entries(index):
                if entry.deleting:
                    continue
                model = pick(entry)
                if model is not None:
                    bucket.append(model)
        for uid in set(self._last_valid) - live:
            del self._last_valid[uid]
        return ClusterView(
            vpcs=tuple(vpcs),
            interfaces=tuple(kinds[0]),
            load_balancers=tuple(kinds[1]),
            nat_gateways=tuple(kinds[2]),
            nodes=self._nodes(),
            frozen=frozenset(frozen),
            frozen_vpcs=frozenset(frozen_vpcs),
        )

    def _nodes(self) -> tuple[Node, ...]:
        nodes = []
        for name, endpoint in sorted(self._fabric.pool.endpoints().items()):
            labels = dict(endpoint.labels)
            if self._node_labels is not None:
                for found in self._node_labels.get(name, ()):
                    labels.update(found)
            nodes.append(Node(name, labels))
        return tuple(nodes)

    def recorded(self) -> dict[tuple[str, Export], str]:
        _, interfaces_index, lbs_index, _ = self._indices
        result: dict[tuple[str, Export], str] = {}
        for entry in entries(interfaces_index) + entries(lbs_index):
            result.update(entry.recorded)
        return result


def write_status(
    patch: kopf.Patch,
    body: Mapping[str, Any],
    fields: Mapping[str, Any],
    outcome: Outcome,
) -> bool:
    """Put the status keys that change into ``patch``; False when nothing changes."""
    current = body.get("status") or {}
    generation = int(body.get("metadata", {}).get("generation") or 0)
    desired = conditions.build_status(current, generation, outcome, fields)
    changes = conditions.status_patch(current, desired)
    for key, value in changes.items():
        patch.status[key] = value
    return bool(changes)


def parse(
    kind: str, body: Mapping[str, Any], patch: kopf.Patch, trigger: Trigger, logger: Any = None
) -> Any | None:
    """The object's model; an invalid spec gets a Degraded status and, on a change, PermanentError."""
    try:
        return _PARSERS[kind](body)
    except SpecError as problem:
        message = f"Invalid spec: {problem}"
        fields = {"state": "Failed"} if kind == "NetworkInterface" else {}  # only NICs have status.state
        if write_status(patch, body, fields, conditions.invalid(message)) and logger is not None:
            logger.warning("Rejected %s: %s", kind, message)
        if trigger is Trigger.CHANGE:
            raise kopf.PermanentError(message) from None
        return None


MAX_RETRY_DELAY = 60.0  # seconds: a failing agent call is retried at least this often


def settle(outcome: Outcome, trigger: Trigger, retry_delay: float, retry: int = 0) -> None:
    """Raise so kopf retries a change handler until the object is ready (timers just report).

    Waiting (for a VPC, an agent, another node's address) retries at ``retry_delay``; failures
    back off exponentially up to a minute; a clash that only the user can resolve is permanent.
    """
    if trigger is Trigger.TIMER or not outcome.progressing:
        if trigger is Trigger.CHANGE and not outcome.ready:
            raise kopf.PermanentError(outcome.message)  # blocked until the user changes something
        return
    delay = retry_delay
    if outcome.degraded:
        delay = min(retry_delay * 2 ** min(retry, 10), MAX_RETRY_DELAY)
    raise kopf.TemporaryError(outcome.message, delay=delay)


def raise_unless_removed(uid: str, reports: Mapping[str, SyncReport], retry_delay: float) -> None:
    """TemporaryError while any node could not remove the object's state."""
    problems = [
        f"{node}: {report.error or report.failures[uid]}"
        for node, report in sorted(reports.items())
        if report.error or uid in report.failures
    ]
    if problems:
        raise kopf.TemporaryError("Removing dataplane state: " + "; ".join(problems), delay=retry_delay)


def object_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": owner.kind.value,
        "metadata": {"name": owner.name, "namespace": owner.namespace, "uid": owner.uid},
    }


def post_event(owner: Owner, type_: str, reason: str, message: str) -> None:
    """A Kubernetes event on the object (posted in the background by kopf)."""
    body = kopf.Body(object_reference(owner))  # type: ignore[arg-type]  # a plain reference is enough
    kopf.event(body, type=type_, reason=reason, message=message[:1000])
