"""``kubevpc stats``: what the dataplane is doing, from the agent's Prometheus endpoint.

The gRPC API (dpservice's) has no counters, so this reads the agent's ``--metrics-listen``
endpoint and condenses it for a person: is the dataplane answering, traffic and drops per port,
packets each graph node dropped, every non-zero node counter (the drop reasons among them),
table occupancy, NAT ports in use per interface.

    kubevpc stats [--metrics-address=HOST:PORT] [-o table|json|yaml]
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubevpc_agent.cli.flags import ClientError

DEFAULT_METRICS_ADDRESS = "localhost:9464"  # the chart's agent.metrics.port

PORT_FIELDS = {  # metric family -> document field, in the table's column order
    "kubevpc_port_rx_packets": "rxPackets",
    "kubevpc_port_rx_dropped_packets": "rxDropped",
    "kubevpc_port_tx_packets": "txPackets",
    "kubevpc_port_tx_dropped_packets": "txDropped",
}


def fetch(address: str, timeout: float) -> str:
    """The exposition text of ``http://address/metrics``."""
    url = f"http://{address}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return str(reply.read().decode())
    except (urllib.error.URLError, OSError) as error:
        raise ClientError(f"cannot read {url}: {getattr(error, 'reason', error)}") from None


def summarize(text: str) -> dict[str, Any]:
    """The ``Stats`` document of one exposition."""
    ports: dict[str, dict[str, Any]] = {}
    drops: list[dict[str, Any]] = []
    counters: list[dict[str, Any]] = []
    tables: dict[str, dict[str, int]] = {}
    nat: dict[str, int] = {}
    up = False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, int(sample.value)
            if sample.name == "kubevpc_dataplane_up":
                up = value == 1
            elif family.name in PORT_FIELDS and sample.name.endswith("_total"):
                row = ports.setdefault(labels["port"], {"port": labels["port"], "ifname": labels["ifname"]})
                row[PORT_FIELDS[family.name]] = value
            elif sample.name == "kubevpc_graph_dropped_packets_total" and value:
                drops.append({"node": labels["node"], "packets": value})
            elif sample.name == "kubevpc_node_packets_total" and value:
                counters.append({"node": labels["node"], "counter": labels["counter"], "packets": value})
            elif sample.name in ("kubevpc_table_entries", "kubevpc_table_capacity"):
                key = "entries" if sample.name.endswith("entries") else "capacity"
                tables.setdefault(labels["table"], {})[key] = value
            elif sample.name == "kubevpc_nat_used_ports":
                nat[labels["interface"]] = value
    return {
        "kind": "Stats",
        "status": {
            "dataplane": "up" if up else "down",
            "ports": [ports[p] for p in sorted(ports)],
            "drops": sorted(drops, key=lambda d: (-d["packets"], d["node"])),
            "counters": sorted(counters, key=lambda c: (c["node"], c["counter"])),
            "tables": [{"table": t, **tables[t]} for t in sorted(tables)],
            "natPorts": [{"interface": i, "used": nat[i]} for i in sorted(nat)],
        },
    }


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def render(document: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(document, separators=(",", ":")) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(document, sort_keys=False))
    status = document["status"]
    lines = [f"dataplane: {status['dataplane']}", ""]
    port_rows = [
        [p["port"], p["ifname"], *(p.get(f, 0) for f in PORT_FIELDS.values())] for p in status["ports"]
    ]
    lines += _table(["PORT", "IFNAME", "RX", "RX DROPPED", "TX", "TX DROPPED"], port_rows)
    drop_rows = [[d["node"], d["packets"]] for d in status["drops"]]
    lines += ["", *(_table(["NODE", "DROPPED"], drop_rows) if drop_rows else ["no packets dropped"])]
    counter_rows = [[c["node"], c["counter"], c["packets"]] for c in status["counters"]]
    if counter_rows:
        lines += ["", *_table(["NODE", "COUNTER", "PACKETS"], counter_rows)]
    table_rows = [[t["table"], t.get("entries", 0), t.get("capacity", 0)] for t in status["tables"]]
    if table_rows:
        lines += ["", *_table(["TABLE", "ENTRIES", "CAPACITY"], table_rows)]
    nat_rows = [[n["interface"], n["used"]] for n in status["natPorts"]]
    if nat_rows:
        lines += ["", *_table(["INTERFACE", "NAT PORTS IN USE"], nat_rows)]
    return "\n".join(lines) + "\n"
