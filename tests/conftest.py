"""Suite-wide rules: tier markers and the CI guarantee that no privileged or k8s test is skipped.

On a laptop without root a privileged test may skip; in CI (``KUBEVPC_REQUIRE_ALL_TIERS=1``, set
by ``.ci/run``) every skip of a ``privileged`` or ``k8s`` test is turned into a failure, so the tiers
that need the real kernel and the real API server cannot silently stop running.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

REQUIRE_ALL_TIERS = os.environ.get("KUBEVPC_REQUIRE_ALL_TIERS") == "1"
ENFORCED_MARKERS = ("privileged", "k8s")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip root-only tests when not root, unless CI demands every tier."""
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, TAP devices)")
    for item in items:
        if item.get_closest_marker("privileged") is not None:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if REQUIRE_ALL_TIERS and report.skipped:
        enforced = [m for m in ENFORCED_MARKERS if item.get_closest_marker(m) is not None]
        if enforced:
            report.outcome = "failed"
            report.longrepr = (
                f"{item.nodeid}: a {'/'.join(enforced)} test was skipped, and CI "
                f"(KUBEVPC_REQUIRE_ALL_TIERS=1) requires every tier to run: {report.longrepr}"
            )
    return report
