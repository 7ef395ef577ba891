"""The k8s test environment itself: a real apiserver that enforces RBAC, serves CRDs, and helm runs.

Every later `k8s` test relies on these properties; if one breaks, these tests say which.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit.k8s_env import ControlPlaneError, KubeControlPlane, find_tool

pytestmark = pytest.mark.k8s

WIDGET_CRD = textwrap.dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.envtest.kubevpc.test
    spec:
      group: envtest.kubevpc.test
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
        - name: v1alpha1
          served: true
          storage: true
          subresources: {status: {}}
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  required: [size]
                  properties:
                    size: {type: integer, minimum: 1}
    """
)


def test_apiserver_answers_version_and_readyz(
    kube: KubeControlPlane, record_property: Callable[[str, object], None]
) -> None:
    record_property("startup_seconds", kube.startup_seconds)
    version = json.loads(kube.kubectl("version", "--output=json").stdout)
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]
    assert kube.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    whoami = json.loads(kube.kubectl("auth", "whoami", "--output=json").stdout)
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]


def test_crd_becomes_established_and_validates(kube: KubeControlPlane) -> None:
    kube.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    kube.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/widgets.envtest.kubevpc.test",
    )
    namespace = kube.create_namespace("crd")
    good = {
        "apiVersion": "envtest.kubevpc.test/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3},
    }
    kube.kubectl("apply", "-f", "-", input=json.dumps(good))
    got = json.loads(kube.kubectl("get", "widget", "w1", "-n", namespace, "-o", "json").stdout)
    assert got["spec"] == {"size": 3}

    bad = {**good, "metadata": {"name": "w2", "namespace": namespace}, "spec": {"size": 0}}
    rejected = kube.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr


def test_service_account_is_held_to_its_role(kube: KubeControlPlane) -> None:
    own, other = kube.create_namespace("rbac-own"), kube.create_namespace("rbac-other")
    for namespace in (own, other):
        kube.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=k=v")
    kube.kubectl("create", "serviceaccount", "reader", "-n", own)
    kube.kubectl(
        "create",
        "role",
        "configmap-getter",
        "-n",
        own,
        "--verb=get",
        "--resource=configmaps",
    )
    kube.kubectl(
        "create",
        "rolebinding",
        "reader-gets-configmaps",
        "-n",
        own,
        "--role=configmap-getter",
        f"--serviceaccount={own}:reader",
    )
    as_reader = kube.service_account_kubeconfig(own, "reader")

    whoami = json.loads(kube.kubectl("auth", "whoami", "-o", "json", kubeconfig=as_reader).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{own}:reader"

    got = kube.kubectl("get", "configmap", "settings", "-n", own, "-o", "json", kubeconfig=as_reader)
    assert json.loads(got.stdout)["data"] == {"k": "v"}

    denied = [
        ("get", "configmaps", "-n", own),  # list
        ("get", "configmap", "settings", "-n", other),  # other namespace
        ("delete", "configmap", "settings", "-n", own),  # other verb
    ]
    for args in denied:
        result = kube.kubectl(*args, kubeconfig=as_reader, check=False)
        assert result.returncode != 0, args
        assert "Forbidden" in result.stderr, (args, result.stderr)

    # The admin still sees what the reader may not: the denials came from RBAC, not a broken setup.
    assert "settings" in kube.kubectl("get", "configmaps", "-n", other).stdout


def test_helm_runs_against_the_apiserver(kube: KubeControlPlane) -> None:
    helm = str(find_tool("helm"))
    version = subprocess.run(
        [helm, "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert version.stdout.startswith("v3.")
    releases = subprocess.run(
        [helm, "list", "--all-namespaces", "--output=json", f"--kubeconfig={kube.kubeconfig}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"HOME": str(kube.workdir), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(releases.stdout) == []


def _our_children() -> set[tuple[int, str]]:
    """(pid, command name) of this process's children, from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, rest = text.split(" (", 1)[1].rsplit(") ", 1)
        if int(rest.split()[1]) == os.getpid():
            children.add((int(stat.parent.name), comm))
    return children


def test_failed_start_leaves_no_process_or_dir(
    kube: KubeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that times out stops etcd and the apiserver and removes its temp dir."""
    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(prefix: str) -> str:
        made.append(Path(real_mkdtemp(prefix=prefix)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    before = _our_children()  # the session's control plane (`kube`) keeps running
    doomed = KubeControlPlane(startup_timeout=0.05, keep_dir=False)
    with pytest.raises(ControlPlaneError, match="not ready in time"):
        doomed.start()
    assert len(made) == 1
    assert not made[0].exists()
    assert _our_children() == before
