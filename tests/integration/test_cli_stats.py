"""``kubevpc stats`` against a real metrics endpoint (the agent's own exposition code over HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kubevpc_agent.cli.main import run
from kubevpc_agent.dataplane.snapshot import DataplaneSnapshot, NodeRuntime, PortCounters
from kubevpc_agent.metrics import MetricsServer, serve_metrics
from testkit.agent_api import free_port


def port(port_id: int, device: str, ifname: str, rx: int, rx_dropped: int, tx: int) -> PortCounters:
    figures = {"rx_packets": rx, "rx_bytes": 60 * rx, "rx_dropped": rx_dropped, "tx_packets": tx}
    return PortCounters(port_id, device, ifname, "VF", {**figures, "tx_bytes": 60 * tx, "tx_dropped": 0})


SNAP = DataplaneSnapshot(
    ports=(port(1, "net_tap1", "vf1", 50, 2, 40), port(0, "net_tap0", "pf0", 7, 0, 9)),
    node_counters=(
        ("conntrack", "table_full", 4),
        ("ipip_decap", "no_underlay_match", 3),
        ("ipip_decap", "decapsulated", 0),
        ("drop", "dropped", 7),
    ),
    nodes=(
        NodeRuntime("conntrack", 2, 50, 4),
        NodeRuntime("ipip_decap", 1, 3, 3),
        NodeRuntime("tx", 2, 49, 0),
    ),
    worker={"loops": 10, "pool_capacity": 64, "pool_available": 60},
    tables={"flows": (1024, 12), "nat_ports": (64512, 5)},
    interfaces={"nat_used_ports": {"vm1": 5}},
)


@pytest.fixture
def endpoint() -> Iterator[tuple[MetricsServer, list[DataplaneSnapshot | None]]]:
    current: list[DataplaneSnapshot | None] = [SNAP]
    server = serve_metrics("127.0.0.1:0", lambda: current[0])
    yield server, current
    server.stop()


def stats(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["stats", *args])
    return code, capsys.readouterr().out


def test_json_document_condenses_the_exposition(
    endpoint: tuple[MetricsServer, list[DataplaneSnapshot | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = endpoint
    code, out = stats(capsys, f"--metrics-address=127.0.0.1:{server.port}", "-o", "json")
    assert code == 0, out
    status = json.loads(out)["status"]
    assert status["dataplane"] == "up"
    assert status["ports"] == [
        {"port": "net_tap0", "ifname": "pf0", "rxPackets": 7, "rxDropped": 0, "txPackets": 9, "txDropped": 0},
        {
            "port": "net_tap1",
            "ifname": "vf1",
            "rxPackets": 50,
            "rxDropped": 2,
            "txPackets": 40,
            "txDropped": 0,
        },
    ]
    assert status["drops"] == [{"node": "conntrack", "packets": 4}, {"node": "ipip_decap", "packets": 3}]
    assert {"node": "ipip_decap", "counter": "no_underlay_match", "packets": 3} in status["counters"]
    assert all(c["packets"] for c in status["counters"]), "zero counters are left out"
    assert status["tables"] == [
        {"table": "flows", "entries": 12, "capacity": 1024},
        {"table": "nat_ports", "entries": 5, "capacity": 64512},
    ]
    assert status["natPorts"] == [{"interface": "vm1", "used": 5}]


def test_table_output_and_a_dataplane_that_does_not_answer(
    endpoint: tuple[MetricsServer, list[DataplaneSnapshot | None]], capsys: pytest.CaptureFixture[str]
) -> None:
    server, current = endpoint
    code, out = stats(capsys, f"--metrics-address=127.0.0.1:{server.port}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "dataplane: up"
    assert any(line.split()[:6] == ["net_tap1", "vf1", "50", "2", "40", "0"] for line in lines), out
    assert any(line.split() == ["conntrack", "table_full", "4"] for line in lines), out
    assert any(line.split() == ["vm1", "5"] for line in lines), out
    current[0] = None  # the worker did not answer the scrape
    code, out = stats(capsys, f"--metrics-address=127.0.0.1:{server.port}")
    assert code == 0
    assert out.splitlines()[0] == "dataplane: down"
    assert "net_tap1" not in out and "no packets dropped" in out


def test_unreachable_endpoint_and_bad_usage_are_client_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = stats(capsys, f"--metrics-address=127.0.0.1:{free_port()}", "--connect-timeout=1s")
    assert code == 1
    assert out.startswith("client error: cannot read http://127.0.0.1:"), out
    code, out = stats(capsys, "--vni=3")
    assert (code, out) == (1, "client error: unknown flag: --vni\n")
    code, out = stats(capsys, "-o", "name")
    assert code == 1 and "unknown renderer 'name'" in out
