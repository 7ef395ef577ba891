"""Pure builders for status conditions (Ready, Progressing, Degraded) and churn-free status patches.

Conventions (Kubernetes API conventions, kubebuilder's good practices): every condition carries
``observedGeneration``; ``lastTransitionTime`` changes only when the condition's status changes,
so reconciling an unchanged object writes nothing. ``status_patch`` returns only the status keys
that differ from what the object already has: an empty dict means "do not patch".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CONDITION_TYPES = (READY, PROGRESSING, DEGRADED)


@dataclass(frozen=True)
class Outcome:
    """The result of one reconcile, as the three conditions report it."""

    ready: bool
    progressing: bool
    degraded: bool
    reason: str  # CamelCase, e.g. Programmed, WaitingForVPC, InvalidSpec
    message: str


def programmed(message: str = "Programmed on every node") -> Outcome:
    return Outcome(ready=True, progressing=False, degraded=False, reason="Programmed", message=message)


def pending(reason: str, message: str) -> Outcome:
    """Not done yet, nothing wrong: waiting for another object, an agent or an address."""
    return Outcome(ready=False, progressing=True, degraded=False, reason=reason, message=message)


def failed(reason: str, message: str, *, ready: bool = False) -> Outcome:
    """Something went wrong and is being retried (agent unreachable, an RPC was rejected, ...)."""
    return Outcome(ready=ready, progressing=True, degraded=True, reason=reason, message=message)


def impaired(reason: str, message: str) -> Outcome:
    """Working, but not fully as asked, until something changes elsewhere (NAT ports exhausted)."""
    return Outcome(ready=True, progressing=False, degraded=True, reason=reason, message=message)


def blocked(reason: str, message: str) -> Outcome:
    """Cannot proceed until the user changes something (a clash with an older object, ...)."""
    return Outcome(ready=False, progressing=False, degraded=True, reason=reason, message=message)


def invalid(message: str) -> Outcome:
    """The spec cannot be programmed as written; nothing changes until the user fixes it."""
    return Outcome(ready=False, progressing=False, degraded=True, reason="InvalidSpec", message=message)


def state_of(outcome: Outcome) -> str:
    """The programming state for ``status.state``: Programmed, Pending or Failed."""
    if outcome.ready:
        return "Programmed"
    return "Failed" if outcome.degraded else "Pending"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_conditions(
    previous: Sequence[Mapping[str, Any]] | None, generation: int, outcome: Outcome, now: str
) -> list[dict[str, Any]]:
    """The three conditions for ``outcome``; transition times are kept where status is unchanged."""
    by_type = {c.get("type"): c for c in previous or () if isinstance(c, Mapping)}
    wanted = {READY: outcome.ready, PROGRESSING: outcome.progressing, DEGRADED: outcome.degraded}
    conditions = []
    for kind in CONDITION_TYPES:
        status = "True" if wanted[kind] else "False"
        before = by_type.get(kind)
        since = before.get("lastTransitionTime") if before and before.get("status") == status else None
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": outcome.reason,
                "message": _message_for(kind, wanted[kind], outcome),
                "observedGeneration": generation,
                "lastTransitionTime": since or now,
            }
        )
    return conditions


def _message_for(kind: str, status: bool, outcome: Outcome) -> str:
    if kind == DEGRADED and not status:
        return "No problems"
    if kind == PROGRESSING and not status and outcome.ready:
        return "Up to date"
    return outcome.message


def build_status(
    previous_status: Mapping[str, Any] | None,
    generation: int,
    outcome: Outcome,
    fields: Mapping[str, Any] | None = None,
    now: str | None = None,
) -> dict[str, Any]:
    """A full status: the kind-specific ``fields``, conditions and observedGeneration."""
    previous_status = previous_status or {}
    status = dict(fields or {})
    status["conditions"] = build_conditions(
        previous_status.get("conditions"), generation, outcome, now or now_rfc3339()
    )
    status["observedGeneration"] = generation
    return status


def status_patch(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386, what kopf sends) from ``current`` to ``desired``.

    Only keys whose value changes appear; a key that is None in ``desired`` is removed. Nested
    objects are patched key by key, so a key that disappeared from one (an underlay address no
    longer known) is removed too, instead of surviving the merge; lists are replaced whole.
    """
    current = current or {}
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        before = current.get(key)
        if value is None:
            if before is not None:
                patch[key] = None
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = status_patch(before, {**{k: None for k in before if k not in value}, **value})
            if nested:
                patch[key] = nested
        elif _plain(before) != _plain(value):
            patch[key] = _plain(value)
    return patch


def merge(current: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` after a JSON merge patch (RFC 7386): what the API server stores."""
    result = dict(_plain(current or {}))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            result[key] = merge(result.get(key) if isinstance(result.get(key), Mapping) else {}, value)
        else:
            result[key] = _plain(value)
    return result


def is_ready(status: Mapping[str, Any] | None) -> bool:
    for condition in (status or {}).get("conditions") or ():
        if condition.get("type") == READY:
            return bool(condition.get("status") == "True")
    return False


def _plain(value: Any) -> Any:
    """Compare kopf's read-only views and plain containers alike."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
