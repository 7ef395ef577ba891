"""Prometheus metrics, read from the dataplane worker at scrape time.

The worker keeps every counter (per node, per port, its own loop) and never calls a metrics
library; at each scrape this process asks it for a :class:`DataplaneSnapshot` over the link
(client_python's "custom collector" pattern) and turns it into samples. Names follow Prometheus
conventions: ``kubevpc_`` prefix, base units, ``_total`` on counters.

* ``kubevpc_node_packets_total{node,counter}``: the counters each graph node declares
  (``ipip_decap`` / ``no_underlay_match`` ...), including every drop reason;
* ``kubevpc_graph_packets_total{node}``, ``kubevpc_graph_calls_total{node}``,
  ``kubevpc_graph_dropped_packets_total{node}``: what the runtime saw per node;
* ``kubevpc_port_{rx,tx}_{packets,bytes}_total{port,ifname}`` and
  ``kubevpc_port_{rx,tx}_dropped_packets_total{port,ifname}``;
* ``kubevpc_table_capacity{table}``, ``kubevpc_table_entries{table}``: dataplane tables
  (``conntrack_table``, ``nat_portmap_table``, ``nat_portoverload_table``), dpservice's saturation;
* ``kubevpc_firewall_rules{interface}``: firewall rules per interface (dpservice's
  ``/dp_service/firewall/rule_count``);
* ``kubevpc_nat_used_ports{interface}``: NAT ports in use per interface (dpservice's
  ``/dp_service/nat/used_port_count``, one per NATed flow);
* ``kubevpc_dataplane_up``, ``kubevpc_dataplane_loops_total``, ``kubevpc_dataplane_busy_seconds_total``,
  ``kubevpc_dataplane_commands_total``, ``kubevpc_dataplane_pool_slots{state}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from kubevpc_agent.dataplane.snapshot import DataplaneSnapshot

SnapshotSource = Callable[[], DataplaneSnapshot | None]

PORT_COUNTERS = (
    ("rx_packets", "kubevpc_port_rx_packets", "Frames received on the port"),
    ("rx_bytes", "kubevpc_port_rx_bytes", "Bytes received on the port"),
    ("rx_dropped", "kubevpc_port_rx_dropped_packets", "Frames the port received but could not deliver"),
    ("tx_packets", "kubevpc_port_tx_packets", "Frames transmitted on the port"),
    ("tx_bytes", "kubevpc_port_tx_bytes", "Bytes transmitted on the port"),
    ("tx_dropped", "kubevpc_port_tx_dropped_packets", "Frames the port could not transmit"),
)


class DataplaneCollector(Collector):
    """Turns one worker snapshot per scrape into metric families."""

    def __init__(self, source: SnapshotSource) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # families depend on the graph; describe nothing so registration never scrapes

    def collect(self) -> Iterator[Metric]:
        snap = self.source()
        up = GaugeMetricFamily("kubevpc_dataplane_up", "1 if the dataplane worker answered this scrape")
        up.add_metric([], 0 if snap is None else 1)
        yield up
        if snap is None:
            return
        yield from self._ports(snap)
        yield from self._nodes(snap)
        yield from self._worker(snap)
        yield from self._tables(snap)

    @staticmethod
    def _ports(snap: DataplaneSnapshot) -> Iterator[Metric]:
        for key, name, doc in PORT_COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["port", "ifname"])
            for port in snap.ports:
                if key in port.counters:
                    family.add_metric([port.device, port.ifname], port.counters[key])
            yield family

    @staticmethod
    def _nodes(snap: DataplaneSnapshot) -> Iterator[Metric]:
        counters = CounterMetricFamily(
            "kubevpc_node_packets", "Packets counted by a graph node, by counter", labels=["node", "counter"]
        )
        for node, counter, value in snap.node_counters:
            counters.add_metric([node, counter], value)
        yield counters
        packets = CounterMetricFamily("kubevpc_graph_packets", "Packets a node processed", labels=["node"])
        calls = CounterMetricFamily("kubevpc_graph_calls", "Batches a node processed", labels=["node"])
        drops = CounterMetricFamily(
            "kubevpc_graph_dropped_packets", "Packets a node sent to drop", labels=["node"]
        )
        for n in snap.nodes:
            packets.add_metric([n.node], n.packets)
            calls.add_metric([n.node], n.calls)
            drops.add_metric([n.node], n.drops)
        yield from (packets, calls, drops)

    @staticmethod
    def _tables(snap: DataplaneSnapshot) -> Iterator[Metric]:
        capacity = GaugeMetricFamily(
            "kubevpc_table_capacity", "Entries a dataplane table can hold", labels=["table"]
        )
        entries = GaugeMetricFamily("kubevpc_table_entries", "Entries in a dataplane table", labels=["table"])
        for table, (cap, used) in sorted(snap.tables.items()):
            capacity.add_metric([table], cap)
            entries.add_metric([table], used)
        yield from (capacity, entries)
        nat = GaugeMetricFamily(
            "kubevpc_nat_used_ports", "NAT gateway ports in use by an interface's flows", labels=["interface"]
        )
        for iface, value in sorted(snap.interfaces.get("nat_used_ports", {}).items()):
            nat.add_metric([iface], value)
        yield nat
        rules = GaugeMetricFamily(
            "kubevpc_firewall_rules", "Firewall rules of an interface (both directions)", labels=["interface"]
        )
        for iface, value in sorted(snap.interfaces.get("firewall_rules", {}).items()):
            rules.add_metric([iface], value)
        yield rules

    @staticmethod
    def _worker(snap: DataplaneSnapshot) -> Iterator[Metric]:
        w = snap.worker
        for key, name, doc in (
            ("loops", "kubevpc_dataplane_loops", "Turns of the dataplane loop"),
            ("busy_seconds", "kubevpc_dataplane_busy_seconds", "Time spent processing received frames"),
            ("commands", "kubevpc_dataplane_commands", "Table commands applied by the dataplane"),
            ("rx_batches", "kubevpc_dataplane_rx_batches", "Loop turns that received frames"),
        ):
            family = CounterMetricFamily(name, doc)
            family.add_metric([], w.get(key, 0))
            yield family
        slots = GaugeMetricFamily("kubevpc_dataplane_pool_slots", "Packet pool slots", labels=["state"])
        slots.add_metric(["total"], w.get("pool_capacity", 0))
        slots.add_metric(["free"], w.get("pool_available", 0))
        yield slots


def make_registry(source: SnapshotSource) -> CollectorRegistry:
    """A registry holding the dataplane collector (the control plane may add its own metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DataplaneCollector(source))
    return registry


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` / ``:port`` → (address, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"metrics listen address must be host:port, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class MetricsServer:
    """``/metrics`` served from a background thread (prometheus_client's WSGI server)."""

    def __init__(self, listen: str, registry: CollectorRegistry) -> None:
        host, port = parse_listen(listen)
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = self._server.server_port  # the bound port (``:0`` picks a free one)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_metrics(listen: str, source: SnapshotSource) -> MetricsServer:
    """Serve the dataplane metrics (``source`` is typically ``DataplaneProcess.stats``) on ``listen``."""
    return MetricsServer(listen, make_registry(source))
