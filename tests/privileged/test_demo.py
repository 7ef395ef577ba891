"""``python -m kubevpc_agent.demo --check``: the README's first command passes and cleans up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubevpc_agent.lab.netns import leftover_namespaces

pytestmark = [pytest.mark.privileged, pytest.mark.slow]


def test_demo_check_passes_and_leaves_nothing_behind() -> None:
    before = set(leftover_namespaces())
    result = subprocess.run(
        [sys.executable, "-m", "kubevpc_agent.demo", "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "18/18 checks passed" in result.stdout
    assert "[FAIL]" not in result.stdout
    assert set(leftover_namespaces()) <= before
