"""The kopf wiring: every kind has its handlers, indices and timer; startup sets our conventions."""

from __future__ import annotations

import logging

import kopf
import pytest

from kubevpc_operator import FINALIZER, GROUP, VERSION, config
from kubevpc_operator.agents.fabric import Fabric
from kubevpc_operator.handlers import lifecycle
from testkit.aio import in_loop

PLURALS = ("vpcs", "networkinterfaces", "loadbalancers", "natgateways")


def handlers_for(plural: str) -> dict[str, list[object]]:
    registry = kopf.get_default_registry()
    found: dict[str, list[object]] = {}
    groups = {
        "changing": registry._changing.get_all_handlers(),
        "spawning": registry._spawning.get_all_handlers(),
        "indexing": registry._indexing.get_all_handlers(),
    }
    for group, handlers in groups.items():
        for handler in handlers:
            selector = handler.selector
            ours = selector is not None and (selector.group, selector.version) == (GROUP, VERSION)
            if ours and selector.any_name == plural:
                found.setdefault(group, []).append(handler)
    return found


@pytest.mark.parametrize("plural", PLURALS)
def test_each_kind_reconciles_on_create_update_resume_timer_and_cleans_up_on_delete(plural: str) -> None:
    found = handlers_for(plural)
    changing = found["changing"]
    reasons = {getattr(h, "reason", None) for h in changing}
    assert {"create", "update", "delete"} <= reasons
    assert any(getattr(h, "initial", None) for h in changing)  # resume
    assert len(found["spawning"]) == 1  # the timer
    assert len(found["indexing"]) == 1
    # One function reconciles every trigger (it never reads kopf's diff); another cleans up.
    assert len({h.fn for h in changing if h.reason != "delete"}) == 1
    assert found["spawning"][0].fn is next(h.fn for h in changing if h.reason == "create")


@in_loop
async def test_startup_applies_our_conventions_and_builds_the_fabric() -> None:
    settings = kopf.OperatorSettings()
    ours = config.Settings.from_args(["--agent", "node-a=127.0.0.1:1", "--peering", "kubevpc"], env={})
    memo = kopf.Memo(settings=ours)
    await lifecycle.start(settings=settings, memo=memo, logger=logging.getLogger("test"))
    assert settings.persistence.finalizer == FINALIZER
    assert settings.peering.name == "kubevpc" and settings.peering.mandatory
    assert settings.peering.priority == ours.priority
    assert isinstance(memo.fabric, Fabric)
    assert memo.fabric.pool.nodes() == {"node-a"}
    assert memo.fabric.view().vpcs == ()
    await lifecycle.stop(memo=memo)
