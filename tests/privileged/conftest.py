"""Fixtures for the real-device tier: a pool of namespaces that is always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.netns import NetnsPool, leftover_namespaces


@pytest.fixture
def netns() -> Iterator[NetnsPool]:
    """Creates namespaces/veths for one test and deletes all of them afterwards, pass or fail."""
    pool = NetnsPool()
    try:
        yield pool
    finally:
        names = [ns.name for ns in pool.namespaces]
        pool.close()
        assert leftover_namespaces(names) == [], "namespaces survived the test"
