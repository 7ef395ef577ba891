"""The JSON documents dpservice-cli prints (``go/dpservice-go/api/types.go``), built as dicts.

Every object is ``{"kind", "metadata", "spec", "status"}`` and every list ``{"kind", "metadata",
"status", "items"}``, with Go's field order and ``omitempty`` rules, because scripts (dpservice's
own test suite among them) read these documents key by key. Addresses are Go ``netip`` strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address
from typing import Any

from kubevpc_agent.cli.flags import Prefix, go_addr

Obj = dict[str, Any]

STATUS_EMPTY = {"code": 0, "message": ""}  # what Go leaves in objects built from list entries


def status(msg: Any) -> dict[str, Any]:
    """A proto ``Status`` as Go's ``api.Status``."""
    return {"code": int(msg.code), "message": str(msg.message)}


def addr_text(raw: bytes | str) -> str:
    """A server address (ASCII bytes) re-printed as Go would after ``netip.ParseAddr``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    if not text:
        return ""
    try:
        return go_addr(ip_address(text))
    except ValueError:
        return text


def obj(kind: str, metadata: dict[str, Any], spec: dict[str, Any], st: dict[str, Any] | None = None) -> Obj:
    return {"kind": kind, "metadata": metadata, "spec": spec, "status": st or dict(STATUS_EMPTY)}


def obj_list(kind: str, metadata: dict[str, Any], items: Sequence[Obj], st: dict[str, Any]) -> Obj:
    return {"kind": kind, "metadata": metadata, "status": st, "items": list(items)}


def _put(spec: dict[str, Any], key: str, value: Any) -> None:
    """Go ``omitempty``: leave out empty strings, zero numbers, empty collections and None."""
    if value not in (None, "", 0, [], {}):
        spec[key] = value


# --- per kind ---------------------------------------------------------------------------------


def metering(total: int, public: int) -> dict[str, int]:
    m: dict[str, int] = {}
    _put(m, "total_rate", total)
    _put(m, "public_rate", public)
    return m


def interface_from_proto(iface: Any) -> Obj:
    """GetInterface / ListInterfaces entry."""
    spec: dict[str, Any] = {"vni": iface.vni}
    _put(spec, "device", iface.pci_name)
    spec["primary_ipv4"] = addr_text(iface.primary_ipv4)
    spec["primary_ipv6"] = addr_text(iface.primary_ipv6)
    spec["underlay_route"] = addr_text(iface.underlay_route)
    spec["metering"] = metering(iface.meteringParams.total_rate, iface.meteringParams.public_rate)
    _put(spec, "hostname", iface.hostname)
    return obj("Interface", {"id": iface.id.decode()}, spec)


def prefix(kind: str, interface_id: str, vni: int, pfx: str, underlay: str | None) -> Obj:
    spec: dict[str, Any] = {"prefix": pfx}
    if underlay is not None:
        spec["underlay_route"] = underlay
    return obj(kind, {"interface_id": interface_id, "vni": vni}, spec)


def prefix_from_proto(kind: str, interface_id: str, vni: int, p: Any) -> Obj:
    pfx = f"{addr_text(p.ip.address)}/{p.length}"
    return prefix(kind, interface_id, vni, pfx, addr_text(p.underlay_route))


def route(vni: int, pfx: str, nexthop_vni: int, nexthop: str | None) -> Obj:
    next_hop: dict[str, Any] = {"vni": nexthop_vni}
    if nexthop is not None:
        next_hop["address"] = nexthop
    return obj("Route", {"vni": vni}, {"prefix": pfx, "next_hop": next_hop})


def route_from_proto(vni: int, r: Any) -> Obj:
    pfx = f"{addr_text(r.prefix.ip.address)}/{r.prefix.length}"
    return route(vni, pfx, r.nexthop_vni, addr_text(r.nexthop_address.address))


def lb_spec(vni: int, ip: str, ports: Sequence[tuple[int, int]], underlay: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"vni": vni, "loadbalanced_ip": ip}
    _put(spec, "loadbalanced_ports", [{"protocol": proto, "port": port} for proto, port in ports])
    spec["underlay_route"] = underlay
    return spec


def nat_spec(
    nat_ip: str | None,
    min_port: int,
    max_port: int,
    *,
    underlay: str | None,
    vni: int,
    actual: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if nat_ip is not None:
        spec["nat_ip"] = nat_ip
    spec["min_port"] = min_port
    spec["max_port"] = max_port
    if underlay is not None:
        spec["underlay_route"] = underlay
    spec["vni"] = vni
    if actual is not None:
        spec["actual_nat_ip"] = actual
    return spec


def nat_metadata(interface_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    _put(meta, "interface_id", interface_id)
    return meta


def protocol_filter_from_proto(pf: Any) -> dict[str, Any]:
    """Go's JSON of the generated ``ProtocolFilter``: oneof wrapper names, zero ints omitted."""
    which = pf.WhichOneof("filter")
    if which is None:
        return {}
    inner = getattr(pf, which)
    fields: dict[str, Any] = {}
    names = ("icmp_type", "icmp_code") if which == "icmp" else (
        "src_port_lower", "src_port_upper", "dst_port_lower", "dst_port_upper"
    )  # fmt: skip
    for name in names:
        _put(fields, name, getattr(inner, name))
    return {"Filter": {which.capitalize(): fields}}


def firewall_rule(
    interface_id: str,
    rule_id: str,
    *,
    direction: str,
    action: str,
    priority: int,
    src: str,
    dst: str,
    protocol_filter: dict[str, Any] | None,
    st: dict[str, Any] | None = None,
) -> Obj:
    spec: dict[str, Any] = {"id": rule_id}
    _put(spec, "direction", direction)
    _put(spec, "action", action)
    spec["priority"] = priority
    spec["source_prefix"] = src
    spec["destination_prefix"] = dst
    if protocol_filter is not None:
        spec["protocol_filter"] = protocol_filter
    return obj("FirewallRule", {"interface_id": interface_id}, spec, st)


def firewall_rule_from_proto(interface_id: str, r: Any) -> Obj:
    return firewall_rule(
        interface_id,
        r.id.decode(),
        direction="Ingress" if r.direction == 0 else "Egress",
        action="Drop" if r.action == 0 else "Accept",
        priority=r.priority,
        src=f"{addr_text(r.source_prefix.ip.address)}/{r.source_prefix.length}",
        dst=f"{addr_text(r.destination_prefix.ip.address)}/{r.destination_prefix.length}",
        protocol_filter=protocol_filter_from_proto(r.protocol_filter),
    )


def prefix_text(p: Prefix) -> str:
    return str(p)
