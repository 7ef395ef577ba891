"""Run a coroutine test on a private event loop, outside pytest-asyncio.

Why: pytest-asyncio's session-wide ``event_loop_policy`` fixture is autouse, and the looptime
plugin asks that policy for its loop during every *sync* test, which creates a default loop that
nothing closes. The first pytest-asyncio test afterwards replaces it, and the orphan's
ResourceWarning fails that test (``filterwarnings = error``). A private loop that is never set as
the policy's current loop sidesteps all of it and closes cleanly.

Usage: decorate an ``async def test_...`` with ``@in_loop``; arguments that have an async
``close()`` (harnesses, fabrics) are closed on the same loop afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any


def run(coroutine: Awaitable[Any], timeout: float = 120.0) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def in_loop(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        async def body() -> None:
            try:
                await test(*args, **kwargs)
            finally:
                for value in (*args, *kwargs.values()):
                    close = getattr(value, "close", None)
                    if close is not None and inspect.iscoroutinefunction(close):
                        await close()

        run(body())

    return wrapper
