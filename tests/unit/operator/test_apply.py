"""apply_ops: phases in order, chains in order, a refused operation skips its chain, an
unreachable agent aborts the run, "already so" counts as done."""

from __future__ import annotations

import pytest

from kubevpc_operator.agents.apply import ApplyAbortedError, apply_ops
from kubevpc_operator.agents.errors import AgentUnavailableError
from kubevpc_operator.planning import ops
from kubevpc_operator.planning.state import FirewallRuleState
from testkit.aio import in_loop
from testkit.fake_agent import FakeAgent

RULE_A = FirewallRuleState("a", "ingress", 1, "0.0.0.0/0", "0.0.0.0/0")
RULE_B = FirewallRuleState("b", "ingress", 2, "0.0.0.0/0", "0.0.0.0/0")
PLAN = ops.ordered(
    [
        ops.CreateRoute(7, "10.9.0.0/16", 7, "fc00:2::1"),
        ops.CreateFirewallRule("if-1", RULE_A),
        ops.CreateFirewallRule("if-1", RULE_B),
        ops.CreatePrefix("if-1", "10.1.0.0/24"),
        ops.CreateInterface("if-1", 7, "tap1", "10.0.0.1", ""),
        ops.CreateInterface("if-2", 7, "tap2", "10.0.0.2", ""),
        ops.CreatePrefix("if-2", "10.2.0.0/24"),
    ]
)


async def ready_agent() -> FakeAgent:
    agent = FakeAgent("n")
    await agent.initialize()
    return agent


@in_loop
async def test_parents_before_children_and_rules_in_order() -> None:
    agent = await ready_agent()
    results = await apply_ops(agent, PLAN, concurrency=4)
    assert all(r.ok for r in results)
    order = [type(op).__name__ for _, op in agent.mutations()]
    assert order.index("CreateRoute") > max(i for i, n in enumerate(order) if n == "CreateInterface")
    assert [r.id for r in agent.interfaces["if-1"].rules] == ["a", "b"]
    assert results[0].underlay.startswith("fc00:")  # a create returns its underlay


@in_loop
async def test_a_refused_operation_skips_the_rest_of_its_chain_only() -> None:
    agent = await ready_agent()
    agent.devices = {"tap2"}  # tap1 does not exist on this node
    results = {r.op: r for r in await apply_ops(agent, PLAN)}
    assert results[PLAN[0]].error is not None and not results[PLAN[0]].skipped  # CreateInterface if-1
    skipped = [op for op, r in results.items() if r.skipped]
    assert {getattr(op, "interface_id", "") for op in skipped} == {"if-1"}
    assert "if-2" in agent.interfaces and agent.interfaces["if-2"].prefixes


@in_loop
async def test_already_so_counts_as_done() -> None:
    agent = await ready_agent()
    await apply_ops(agent, PLAN)
    again = await apply_ops(agent, [ops.CreatePrefix("if-2", "10.2.0.0/24"), ops.DeleteVip("if-1")])
    assert all(r.ok and r.underlay == "" for r in again)


@in_loop
async def test_an_unreachable_agent_aborts_with_what_ran() -> None:
    agent = await ready_agent()
    original = agent.execute

    async def flaky(op: ops.Op) -> str:
        if isinstance(op, ops.CreatePrefix):
            agent.unavailable = True
        return await original(op)

    agent.execute = flaky  # type: ignore[method-assign]
    with pytest.raises(ApplyAbortedError) as aborted:
        await apply_ops(agent, PLAN)
    assert isinstance(aborted.value.cause, AgentUnavailableError)
    ran = {type(r.op).__name__ for r in aborted.value.results}
    assert "CreateInterface" in ran and "CreateRoute" not in ran  # the next phase never started
