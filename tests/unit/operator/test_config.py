"""Settings from the command line and KUBEVPC_* variables: agents, TLS, peering, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevpc_operator.agents.pool import Endpoint
from kubevpc_operator.config import ConfigError, Settings, parse_labels


def test_defaults_discover_agent_pods_and_run_standalone() -> None:
    settings = Settings.from_args([], env={})
    assert settings.discovery
    assert settings.selector_labels() == {
        "app.kubernetes.io/name": "kubevpc",
        "app.kubernetes.io/component": "agent",
    }
    assert settings.agent_port == 1337
    assert settings.peering is None and settings.priority is None
    assert settings.tls is None
    assert (settings.vni_first, settings.vni_last) == (1, 0xFFFFFF)


def test_static_agents_from_flags_env_and_file(tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text("node-c: {address: '[fd00::3]:1337', labels: {zone: b}}\nnode-d: 10.0.0.4:1337\n")
    settings = Settings.from_args(
        ["--agent", "node-a=127.0.0.1:1337", "--agents-file", str(agents_file)],
        env={"KUBEVPC_AGENTS": "node-b=127.0.0.1:1338"},
    )
    assert not settings.discovery
    assert settings.agents == {
        "node-a": Endpoint("127.0.0.1:1337"),
        "node-b": Endpoint("127.0.0.1:1338"),
        "node-c": Endpoint("[fd00::3]:1337", {"zone": "b"}),
        "node-d": Endpoint("10.0.0.4:1337"),
    }


def test_peering_gets_a_priority_for_leader_election() -> None:
    settings = Settings.from_args(["--peering", "kubevpc"], env={})
    assert settings.peering == "kubevpc"
    assert settings.priority is not None and 1 <= settings.priority <= 32767
    assert Settings.from_args(["--peering", "kubevpc", "--priority", "7"], env={}).priority == 7


def test_tls_needs_all_three_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--tls-ca, --tls-cert and --tls-key together"):
        Settings.from_args(["--tls-ca", "ca.pem"], env={})
    settings = Settings.from_args(
        [], env={"KUBEVPC_TLS_CA": "a", "KUBEVPC_TLS_CERT": "b", "KUBEVPC_TLS_KEY": "c"}
    )
    assert settings.tls is not None and settings.tls.cert == Path("b")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agent", "node-a"], "expected NODE=HOST:PORT"),
        (["--vni-range", "10-5"], "1 <= FIRST <= LAST"),
        (["--agent-selector", "app in (a)"], "only key=value terms"),
    ],
)
def test_bad_settings_are_readable(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings = Settings.from_args(argv, env={})
        parse_labels(settings.agent_selector)
