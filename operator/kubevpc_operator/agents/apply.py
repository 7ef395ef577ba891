"""Run a plan against one agent: one RPC per operation, phases in order, chains in order.

Within a phase, operations of different chains (different interfaces, routes, ...) run
concurrently, up to ``concurrency`` calls in flight: the agent serves calls one at a time, but
overlapping them hides the round trips. An operation the agent refuses is recorded and the rest
of its chain is skipped (a prefix is not added to an interface that failed to be created); the
status codes an operation lists as ``done_codes`` count as success. An unreachable or restarted
agent aborts the whole run: nothing after it can succeed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kubevpc_operator.agents.client import AgentClient
from kubevpc_operator.agents.errors import AgentError, AgentNotInitializedError, AgentUnavailableError
from kubevpc_operator.planning.ops import Op


@dataclass(frozen=True)
class OpResult:
    op: Op
    underlay: str = ""  # the address a create returned ("" when none, or when it was already done)
    error: AgentError | None = None
    skipped: bool = False  # not attempted: an earlier operation of its chain failed

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped


class ApplyAbortedError(Exception):
    """The agent became unreachable or lost its state mid-apply; ``results`` holds what ran."""

    def __init__(self, cause: AgentError, results: list[OpResult]) -> None:
        self.cause = cause
        self.results = results
        super().__init__(str(cause))


async def apply_ops(
    client: AgentClient,
    ops: Sequence[Op],
    concurrency: int = 64,
    on_result: Callable[[OpResult], None] | None = None,
) -> list[OpResult]:
    results: list[OpResult] = []
    failed_chains: dict[str, AgentError] = {}
    gate = asyncio.Semaphore(concurrency)

    def record(result: OpResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    async def run_chain(chain: list[Op]) -> None:
        for op in chain:
            cause = failed_chains.get(op.chain)
            if cause is not None:
                record(OpResult(op, error=cause, skipped=True))
                continue
            async with gate:
                try:
                    underlay = await client.execute(op)
                except (AgentUnavailableError, AgentNotInitializedError):
                    raise
                except AgentError as error:
                    failed_chains[op.chain] = error
                    record(OpResult(op, error=error))
                    continue
            record(OpResult(op, underlay=underlay))

    for _, phase_ops in itertools.groupby(ops, key=lambda op: op.phase):
        chains: dict[str, list[Op]] = {}
        for op in phase_ops:
            chains.setdefault(op.chain, []).append(op)
        try:
            async with asyncio.TaskGroup() as group:
                for chain in chains.values():
                    group.create_task(run_chain(chain))
        except* (AgentUnavailableError, AgentNotInitializedError) as aborted:
            cause = aborted.exceptions[0]
            assert isinstance(cause, AgentError)
            raise ApplyAbortedError(cause, results) from None
    return results
