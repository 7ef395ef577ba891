"""Conditions: three types, observedGeneration, no churn; status patches are minimal merge patches."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_operator import conditions
from kubevpc_operator.conditions import (
    build_conditions,
    build_status,
    merge,
    pending,
    programmed,
    state_of,
    status_patch,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def by_type(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in items}


def test_three_conditions_with_generation_reason_and_message() -> None:
    built = by_type(build_conditions(None, 3, pending("WaitingForAgent", "no agent serves node x"), T0))
    assert set(built) == {"Ready", "Progressing", "Degraded"}
    assert built["Ready"]["status"] == "False"
    assert built["Progressing"]["status"] == "True"
    assert built["Degraded"]["status"] == "False"
    assert all(c["observedGeneration"] == 3 and c["reason"] == "WaitingForAgent" for c in built.values())
    assert built["Ready"]["message"] == "no agent serves node x"
    assert all(c["lastTransitionTime"] == T0 for c in built.values())


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = build_conditions(None, 1, pending("Pending", "a"), T0)
    same = build_conditions(first, 2, pending("Pending", "b"), T1)
    assert [c["lastTransitionTime"] for c in same] == [T0, T0, T0]
    ready = by_type(build_conditions(first, 2, programmed(), T1))
    assert ready["Ready"]["lastTransitionTime"] == T1  # False -> True
    assert ready["Progressing"]["lastTransitionTime"] == T1  # True -> False
    assert ready["Degraded"]["lastTransitionTime"] == T0  # False -> False


def test_reconciling_an_unchanged_object_patches_nothing() -> None:
    status = build_status({}, 4, programmed(), {"vni": 7, "nodes": ["a"]}, now=T0)
    again = build_status(status, 4, programmed(), {"vni": 7, "nodes": ["a"]}, now=T1)
    assert status_patch(status, again) == {}


def test_a_new_generation_patches_only_what_changed() -> None:
    status = build_status({}, 4, programmed(), {"vni": 7}, now=T0)
    newer = build_status(status, 5, programmed(), {"vni": 7}, now=T1)
    patch = status_patch(status, newer)
    assert set(patch) == {"conditions", "observedGeneration"}
    assert all(c["lastTransitionTime"] == T0 for c in patch["conditions"])


def test_nested_keys_that_disappear_are_removed_not_left_behind() -> None:
    current = {"nat": {"ip": "203.0.113.1", "underlayRoute": "fc00::1"}, "vni": 1}
    desired = {"nat": {"ip": "203.0.113.1"}, "vni": None}
    patch = status_patch(current, desired)
    assert patch == {"nat": {"underlayRoute": None}, "vni": None}
    assert merge(current, patch) == {"nat": {"ip": "203.0.113.1"}}


def test_state_of_matches_the_crd_enum() -> None:
    assert state_of(programmed()) == "Programmed"
    assert state_of(pending("Pending", "")) == "Pending"
    assert state_of(conditions.failed("AgentRejected", "")) == "Failed"
    assert state_of(conditions.invalid("bad")) == "Failed"
    assert state_of(conditions.impaired("NoFreePortSlice", "")) == "Programmed"
    assert conditions.is_ready(build_status({}, 1, programmed()))


JSON = st.recursive(
    st.none() | st.integers(-3, 3) | st.sampled_from(["a", "b"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("xyz"), children, max_size=3)
    ),
    max_leaves=10,
)
STATUS = st.dictionaries(st.sampled_from("abcd"), JSON, max_size=4)


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value


@settings(max_examples=300, deadline=None)
@given(current=STATUS, desired=STATUS)
def test_the_patch_takes_the_stored_status_to_the_desired_one(current: dict, desired: dict) -> None:
    current = without_none(current)
    patched = merge(current, status_patch(current, desired))
    for key, value in desired.items():
        assert patched.get(key) == without_none(value)
    assert status_patch(patched, desired) == {}  # and then nothing is left to patch
