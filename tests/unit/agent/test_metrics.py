"""Prometheus exposition of dataplane counters, read at scrape time from a snapshot."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import generate_latest

from kubevpc_agent.dataplane.snapshot import DataplaneSnapshot, NodeRuntime, PortCounters
from kubevpc_agent.metrics import make_registry, parse_listen, serve_metrics

SNAP = DataplaneSnapshot(
    ports=(
        PortCounters(
            0,
            "net_tap0",
            "dtapvf_0",
            "VF",
            {
                "rx_packets": 5,
                "rx_bytes": 300,
                "rx_dropped": 1,
                "tx_packets": 4,
                "tx_bytes": 256,
                "tx_dropped": 0,
            },
        ),
    ),
    node_counters=(("ipip_decap", "no_underlay_match", 3), ("drop", "dropped", 7)),
    nodes=(NodeRuntime("cls", 2, 9, 1),),
    worker={"loops": 10, "busy_seconds": 0.5, "commands": 2, "pool_capacity": 64, "pool_available": 60},
)


def exposition(snap: DataplaneSnapshot | None) -> str:
    return generate_latest(make_registry(lambda: snap)).decode()


def test_node_and_port_counters_use_prometheus_names() -> None:
    text = exposition(SNAP)
    assert 'kubevpc_node_packets_total{counter="no_underlay_match",node="ipip_decap"} 3.0' in text
    assert 'kubevpc_port_rx_packets_total{ifname="dtapvf_0",port="net_tap0"} 5.0' in text
    assert 'kubevpc_port_tx_bytes_total{ifname="dtapvf_0",port="net_tap0"} 256.0' in text
    assert 'kubevpc_port_rx_dropped_packets_total{ifname="dtapvf_0",port="net_tap0"} 1.0' in text
    assert 'kubevpc_graph_dropped_packets_total{node="cls"} 1.0' in text
    assert "kubevpc_dataplane_busy_seconds_total 0.5" in text
    assert 'kubevpc_dataplane_pool_slots{state="free"} 60.0' in text
    assert "kubevpc_dataplane_up 1.0" in text


def test_an_unanswered_scrape_reports_the_dataplane_down_and_nothing_stale() -> None:
    text = exposition(None)
    assert "kubevpc_dataplane_up 0.0" in text
    assert "kubevpc_port_rx_packets_total" not in text


def test_counters_are_read_at_scrape_time() -> None:
    calls: list[int] = []

    def source() -> DataplaneSnapshot:
        calls.append(1)
        return SNAP

    registry = make_registry(source)
    assert calls == []
    generate_latest(registry)
    generate_latest(registry)
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9064", ("127.0.0.1", 9064)), ("[::1]:1", ("::1", 1)), (":9100", ("0.0.0.0", 9100))],
)
def test_listen_addresses(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


def test_bad_listen_address_is_rejected() -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_listen("localhost")


def test_metrics_endpoint_serves_the_snapshot() -> None:
    server = serve_metrics("127.0.0.1:0", lambda: SNAP)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
        assert 'kubevpc_node_packets_total{counter="dropped",node="drop"} 7.0' in body
    finally:
        server.stop()
