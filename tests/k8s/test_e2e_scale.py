"""benchmarks/operator_scale.py keeps working: the same measurement with 90 interfaces.

The full run (1,000 interfaces, ~2 minutes of a quiet machine) is `python -m
benchmarks.operator_scale`; here the figures only have to be sane and the replay complete.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from testkit.k8s_env import KubeControlPlane

pytestmark = [pytest.mark.k8s, pytest.mark.privileged, pytest.mark.slow]

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "operator_scale.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("operator_scale_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_interfaces_become_traffic_ready_and_an_agent_restart_is_replayed(kube: KubeControlPlane) -> None:
    figures = load_benchmark().run(90, status_interval=3.0, kube=kube)
    assert figures["routes_per_node"] == {"node-a": 62, "node-b": 62, "node-c": 62}  # 60 remote + 2 default
    assert figures["traffic_ready_s"] < 60
    assert figures["replayed_s"] < 10 and figures["fanned_out_s"] < 20
    assert figures["replayed_objects"] == 30 + 62
    assert figures["underlays_changed"] > 0  # new random underlays, and the other nodes followed them
    assert figures["initialize_calls_node_a"] == 2  # at the start, and once for the new agent
