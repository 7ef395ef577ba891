"""Output of the CLI: ``-o json|yaml|table|name`` and the ``Error`` document.

``json`` is one compact document per line (Go's ``json.Encoder``); scripts parse it. ``table`` is
for people; ``name`` prints ``kind/name operation`` (``interface/vm1 deleted``), dpservice-cli's
default after create/delete.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from kubevpc_agent.cli.objects import Obj

FORMATS = ("json", "yaml", "table", "name")


def _name(item: Obj) -> str:
    """``GetName()`` of dpservice-cli's object kinds."""
    kind, meta, spec = item["kind"], item.get("metadata", {}), item.get("spec", {})
    names: dict[str, Callable[[], Any]] = {
        "Interface": lambda: meta.get("id", ""),
        "LoadBalancer": lambda: meta.get("id", ""),
        "Route": lambda: f"{spec.get('prefix', '')}-{spec.get('next_hop', {}).get('vni', 0)}",
        "Prefix": lambda: spec.get("prefix", ""),
        "LoadBalancerPrefix": lambda: spec.get("prefix", ""),
        "VirtualIP": lambda: f"on interface: {meta.get('interface_id', '')}",
        "LoadBalancerTarget": lambda: f"on loadbalancer: {meta.get('loadbalancer_id', '')}",
        "Nat": lambda: meta.get("interface_id", ""),
        "NeighborNat": lambda: meta.get("nat_ip", ""),
        "FirewallRule": lambda: f"{meta.get('interface_id', '')}/{spec.get('id', '')}",
        "Initialized": lambda: "initialized",
        "Vni": lambda: str(meta.get("vni", "")),
        "Version": lambda: f"{meta.get('client_name', '')}-{meta.get('client_protocol', '')}",
    }
    return str(names.get(kind, lambda: "")())


def render_name(document: Obj, operation: str) -> str:
    items = document.get("items", [document])
    lines = []
    for item in items:
        words = [f"{item['kind'].lower()}/{_name(item)}" if item.get("kind") else _name(item)]
        if operation:
            words.append(operation)
        lines.append(" ".join(words))
    return "".join(line + "\n" for line in lines)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "[" + " ".join(_cell(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_table(document: Obj) -> str:
    """Columns from the spec keys of the items (metadata first), aligned, one row per item."""
    items = document.get("items", [document])
    columns: list[tuple[str, str]] = []
    for item in items:
        for section in ("metadata", "spec"):
            for key in item.get(section, {}):
                if (section, key) not in columns:
                    columns.append((section, key))
    header = [key.upper() for _, key in columns]
    rows = [[_cell(item.get(section, {}).get(key, "")) for section, key in columns] for item in items]
    widths = (
        [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        if rows
        else [len(h) for h in header]
    )
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines) + "\n"


def render(document: Obj, output: str, operation: str = "", *, pretty: bool = False) -> str:
    if output == "json":
        return (
            json.dumps(document, indent=2 if pretty else None, separators=None if pretty else (",", ":"))
            + "\n"
        )
    if output == "yaml":
        return str(yaml.safe_dump(document, sort_keys=False))
    if output == "name":
        return render_name(document, operation)
    return render_table(document)


def error_document(source: str, code: int, message: str) -> Obj:
    return {"kind": "Error", "spec": {"source": source}, "status": {"code": code, "message": message}}


def render_error(source: str, code: int, message: str, output: str) -> str:
    """The ``Error`` document in json/yaml; ``<source> error: <text>`` otherwise."""
    document = error_document(source, code, message)
    if output == "json":
        return json.dumps(document, separators=(",", ":")) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(document, sort_keys=False))
    text = f"[error code {code}] {message}" if source == "server" else message
    return f"{source} error: {text}\n"
