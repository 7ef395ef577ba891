"""Fixtures of the `k8s` tier: one real kube-apiserver + etcd per test session (BRIEF §5).

Missing tools skip the tier with the command that builds them; under CI the suite-wide
conftest turns that skip into a failure (KUBEVPC_REQUIRE_ALL_TIERS=1).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.k8s_env import KubeControlPlane, ToolsMissingError, find_tool


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeControlPlane]:
    """A started control plane with an admin kubeconfig, shared by the whole session."""
    try:
        for tool in ("etcd", "kube-apiserver", "kubectl", "helm"):
            find_tool(tool)
    except ToolsMissingError as error:
        pytest.skip(str(error))
    with KubeControlPlane() as control_plane:
        yield control_plane
