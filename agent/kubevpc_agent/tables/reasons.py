"""Ordered drop reasons for a batch: the first failing check names each dropped packet's counter.

Nodes check the common case with one cheap conjunction and call :func:`first_reason` only for a
batch that has drops, so the per-reason work costs nothing while traffic is clean. A reason is
``counter + 1``; 0 means the packet passed every check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


def first_reason(cases: Sequence[tuple[BoolArray, int | I64]]) -> I64:
    """Per row, the value of the first case whose condition holds, 0 if none does."""
    result = np.zeros(len(cases[0][0]), dtype=np.int64)
    undecided = np.ones(len(result), dtype=bool)
    for condition, value in cases:
        hit = undecided & condition
        if hit.any():
            result[hit] = value[hit] if isinstance(value, np.ndarray) else value
            undecided &= ~hit
    return result


def add_reasons(counters: npt.NDArray[np.uint64], reason: I64) -> None:
    """Add one to ``counters[r - 1]`` for every non-zero reason ``r`` (once per batch)."""
    counters += np.bincount(reason, minlength=len(counters) + 1)[1:].astype(np.uint64)
