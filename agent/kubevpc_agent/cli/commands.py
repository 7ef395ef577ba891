"""Every ``kubevpc <verb> <object>`` command: its flags, its RPCs, the document it prints.

Verbs, objects, aliases, flags, defaults and client-side behaviour follow dpservice-cli
(DPSERVICE.md §6.4): ``init`` refuses when CheckInitialized succeeds; ``list prefixes``/
``lbprefixes``/``fwrules`` without an interface id walk ListInterfaces; every list is sorted on
the client (stable) by the key dpservice-cli uses, so the server's order only matters for ties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.cli import objects as o
from kubevpc_agent.cli.client import Client, ServerError
from kubevpc_agent.cli.flags import ClientError, Flag, Prefix, go_addr
from kubevpc_agent.tables.model import IPAddress
from kubevpc_agent.version import SERVICE_VERSION

Values = dict[str, Any]
Run = Callable[[Client, Values], tuple[o.Obj, str]]  # -> (document, operation for -o name)

GENERATED_FROM = "kubevpc dpdkironcore.v1"  # client_protocol sent with GetVersion


@dataclass(frozen=True)
class Command:
    verb: str
    name: str  # the object word shown in help
    flags: tuple[Flag, ...]
    run: Run


OBJECT_ALIASES: dict[str, tuple[str, ...]] = {
    "interface": ("interface", "interfaces", "iface", "ifaces"),
    "prefix": ("prefix", "prefixes", "prfx", "prfxs"),
    "route": ("route", "routes", "rt", "rts"),
    "virtualip": ("virtualip", "virtualips", "vip", "vips"),
    "loadbalancer": ("loadbalancer", "loadbalancers", "lbs", "lb"),
    "lbprefix": (
        "lbprefix",
        "lbprefixes",
        "loadbalancer-prefix",
        "loadbalancer-prefixes",
        "lbprfx",
        "lbprfxs",
    ),
    "lbtarget": ("lbtarget", "lbtargets", "loadbalancer-target", "loadbalancer-targets", "lbtrgt", "lbtrgts"),
    "nat": ("nat", "nats", "translation"),
    "neighnat": ("neighbornat", "neighnat", "nnat", "ngbnat"),
    "fwrule": ("firewallrule", "firewallrules", "fwrule", "fwrules", "fw-rule", "fw-rules"),
    "init": ("init",),
    "version": ("version",),
    "vni": ("vni",),
}
VERB_ALIASES = {"create": "create", "add": "create", "get": "get", "list": "list", "delete": "delete",
                "del": "delete", "reset": "reset", "init": "init"}  # fmt: skip

COMMANDS: dict[tuple[str, str], Command] = {}


def command(verb: str, name: str, *flags: Flag) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        COMMANDS[(verb, name)] = Command(verb, name, flags, run)
        return run

    return register


def resolve(verb: str, word: str) -> Command:
    v = VERB_ALIASES.get(verb.lower())
    if v is None:
        raise ClientError(f'unknown command "{verb}" for "kubevpc"')
    obj = next((n for n, aliases in OBJECT_ALIASES.items() if word.lower() in aliases), None)
    cmd = COMMANDS.get((v, obj or ""))
    if cmd is None:
        raise ClientError(f'unknown command "{word}" for "kubevpc {v}"')
    return cmd


# --- helpers ----------------------------------------------------------------------------------


def _ip_msg(addr: IPAddress) -> Any:
    return pb.IpAddress(ipver=pb.IPV4 if addr.version == 4 else pb.IPV6, address=go_addr(addr).encode())


def _prefix_msg(p: Prefix) -> Any:
    return pb.Prefix(ip=_ip_msg(p.ip), length=p.length)


def _underlay_bytes(addr: IPAddress) -> bytes:
    return go_addr(addr).encode()


def _st(response: Any) -> dict[str, Any]:
    return o.status(response.status)


def _sort(items: list[o.Obj], key: Callable[[o.Obj], Any]) -> list[o.Obj]:
    return sorted(items, key=key)  # sorted() is stable, as Go's sort.SliceStable


def _spec(key: str) -> Callable[[o.Obj], Any]:
    return lambda item: item["spec"].get(key, "")


def _by_prefix_string(item: o.Obj) -> str:
    return str(item["spec"]["prefix"])


SORT_BY = Flag("sort-by", "string", "")
ZERO_V6 = IPv6Address(0)


# --- init, version, vni -------------------------------------------------------------------------


@command("init", "init")
def run_init(c: Client, v: Values) -> tuple[o.Obj, str]:
    try:
        res = c.call("CheckInitialized", pb.CheckInitializedRequest())
    except ServerError:
        raise ClientError("error checking initialization") from None
    except Exception as exc:  # gRPC ABORTED "not initialized" is the expected answer
        if "not initialized" not in str(exc):
            raise ClientError("error checking initialization") from None
    else:
        raise ClientError(f"error dp-service already initialized, uuid: {res.uuid}")
    res = c.call("Initialize", pb.InitializeRequest())
    return o.obj("Initialized", {}, {"uuid": res.uuid}, _st(res)), ""


@command("get", "init")
def run_get_init(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("CheckInitialized", pb.CheckInitializedRequest())
    return o.obj("Initialized", {}, {"uuid": res.uuid}, _st(res)), ""


@command("get", "version")
def run_get_version(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.GetVersionRequest(
        client_protocol=GENERATED_FROM, client_name="dpservice-cli", client_version=SERVICE_VERSION
    )
    res = c.call("GetVersion", req)
    meta = {
        "client_protocol": GENERATED_FROM,
        "client_name": "dpservice-cli",
        "client_version": SERVICE_VERSION,
    }
    spec = {"service_protocol": res.service_protocol, "service_version": res.service_version}
    return o.obj("Version", meta, spec, _st(res)), ""


@command("get", "vni", Flag("vni", "uint32", 0, required=True), Flag("vni-type", "uint8", 0, required=True))
def run_get_vni(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("CheckVniInUse", pb.CheckVniInUseRequest(vni=v["vni"], type=v["vni-type"]))
    meta = {"vni": v["vni"], "vni_type": v["vni-type"]}
    return o.obj("Vni", meta, {"in_use": res.in_use}, _st(res)), ""


@command("reset", "vni", Flag("vni", "uint32", 0, required=True), Flag("vni-type", "string", "both"))
def run_reset_vni(c: Client, v: Values) -> tuple[o.Obj, str]:
    types = {"ipv4": 0, "0": 0, "ipv6": 1, "1": 1, "both": 2, "2": 2}
    vni_type: Any = types.get(str(v["vni-type"]).lower())
    if vni_type is None:
        raise ClientError("VNI type can be only: ipv4 = 0/ipv6 = 1/both = 2")
    res = c.call("ResetVni", pb.ResetVniRequest(vni=v["vni"], type=vni_type))
    return o.obj("Vni", {"vni": v["vni"], "vni_type": vni_type}, {"in_use": False}, _st(res)), "reset"


# --- interfaces -------------------------------------------------------------------------------


@command(
    "create",
    "interface",
    Flag("id", "string", "", required=True),
    Flag("vni", "uint32", 0, required=True),
    Flag("ipv4", "ip", None),
    Flag("ipv6", "ip", ZERO_V6),
    Flag("device", "string", "", required=True),
    Flag("underlay", "ip", ZERO_V6),
    Flag("pxe-server", "string", ""),
    Flag("pxe-file-name", "string", ""),
    Flag("total-meter-rate", "uint64", 0),
    Flag("public-meter-rate", "uint64", 0),
    Flag("hostname", "string", ""),
)
def run_create_interface(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.CreateInterfaceRequest(
        interface_type=pb.VIRTUAL,
        interface_id=v["id"].encode(),
        vni=v["vni"],
        ipv6_config=pb.IpConfig(primary_address=go_addr(v["ipv6"]).encode()),
        device_name=v["device"],
        metering_parameters=pb.MeteringParams(
            total_rate=v["total-meter-rate"], public_rate=v["public-meter-rate"]
        ),
        preferred_underlay_route=_underlay_bytes(v["underlay"]),
        hostname=v["hostname"],
    )
    if v["ipv4"] is not None:  # without --ipv4 the request has no ipv4_config (dpservice-cli)
        req.ipv4_config.primary_address = go_addr(v["ipv4"]).encode()
    if v["pxe-server"] and v["pxe-file-name"]:
        req.pxe_config.next_server = v["pxe-server"]
        req.pxe_config.boot_filename = v["pxe-file-name"]
    res = c.call("CreateInterface", req)
    underlay = o.addr_text(res.underlay_route)
    spec: dict[str, Any] = {"vni": v["vni"], "device": v["device"]}
    spec["primary_ipv4"] = go_addr(v["ipv4"]) if v["ipv4"] is not None else ""
    spec["primary_ipv6"] = go_addr(v["ipv6"])
    spec["underlay_route"] = underlay
    spec["virtual_function"] = {"name": res.vf.name}
    pxe: dict[str, str] = {}
    o._put(pxe, "next_server", v["pxe-server"])
    o._put(pxe, "boot_filename", v["pxe-file-name"])
    spec["pxe"] = pxe
    spec["metering"] = o.metering(v["total-meter-rate"], v["public-meter-rate"])
    o._put(spec, "hostname", v["hostname"])
    return o.obj("Interface", {"id": v["id"]}, spec, _st(res)), f"created, underlay route: {underlay}"


@command("get", "interface", Flag("id", "string", ""))
def run_get_interface(c: Client, v: Values) -> tuple[o.Obj, str]:
    if not v["id"]:
        return run_list_interfaces(c, {"sort-by": ""})
    res = c.call("GetInterface", pb.GetInterfaceRequest(interface_id=v["id"].encode()))
    return o.interface_from_proto(res.interface), ""


@command("list", "interface", SORT_BY)
def run_list_interfaces(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("ListInterfaces", pb.ListInterfacesRequest())
    items = [o.interface_from_proto(i) for i in res.interfaces]
    keys: dict[str, Callable[[o.Obj], Any]] = {
        "vni": lambda i: (i["spec"]["vni"], i["spec"]["primary_ipv4"]),
        "device": _spec("device"),
        "ipv4": lambda i: (i["spec"]["primary_ipv4"], i["spec"]["vni"]),
        "ipv6": _spec("primary_ipv6"),
        "underlayroute": _spec("underlay_route"),
    }
    items = _sort(items, keys.get(v["sort-by"].lower(), lambda i: i["metadata"]["id"]))
    return o.obj_list("InterfaceList", {}, items, _st(res)), ""


@command("delete", "interface", Flag("id", "string", "", required=True))
def run_delete_interface(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("DeleteInterface", pb.DeleteInterfaceRequest(interface_id=v["id"].encode()))
    return o.obj("Interface", {"id": v["id"]}, {"vni": 0}, _st(res)), "deleted"


# --- prefixes and LB prefixes -----------------------------------------------------------------


def _create_prefix(c: Client, v: Values, lb: bool) -> tuple[o.Obj, str]:
    method, request = (
        ("CreateLoadBalancerPrefix", pb.CreateLoadBalancerPrefixRequest)
        if lb
        else ("CreatePrefix", pb.CreatePrefixRequest)
    )
    res = c.call(
        method,
        request(
            interface_id=v["interface-id"].encode(),
            prefix=_prefix_msg(v["prefix"]),
            preferred_underlay_route=_underlay_bytes(v["underlay"]),
        ),
    )
    underlay = o.addr_text(res.underlay_route)
    kind = "LoadBalancerPrefix" if lb else "Prefix"
    meta: dict[str, Any] = (
        {"interface_id": v["interface-id"]} if lb else {"interface_id": v["interface-id"], "vni": 0}
    )
    document = o.obj(kind, meta, {"prefix": str(v["prefix"]), "underlay_route": underlay}, _st(res))
    return document, f"created, underlay route: {underlay}"


def _delete_prefix(c: Client, v: Values, lb: bool) -> tuple[o.Obj, str]:
    method, request = (
        ("DeleteLoadBalancerPrefix", pb.DeleteLoadBalancerPrefixRequest)
        if lb
        else ("DeletePrefix", pb.DeletePrefixRequest)
    )
    res = c.call(method, request(interface_id=v["interface-id"].encode(), prefix=_prefix_msg(v["prefix"])))
    kind = "LoadBalancerPrefix" if lb else "Prefix"
    meta: dict[str, Any] = (
        {"interface_id": v["interface-id"]} if lb else {"interface_id": v["interface-id"], "vni": 0}
    )
    return o.obj(kind, meta, {"prefix": str(v["prefix"])}, _st(res)), "deleted"


def _list_prefixes(c: Client, v: Values, lb: bool) -> tuple[o.Obj, str]:
    method, request = (
        ("ListLoadBalancerPrefixes", pb.ListLoadBalancerPrefixesRequest)
        if lb
        else ("ListPrefixes", pb.ListPrefixesRequest)
    )
    kind = "LoadBalancerPrefix" if lb else "Prefix"
    if v["interface-id"]:
        res = c.call(method, request(interface_id=v["interface-id"].encode()))
        iface = c.call(
            "GetInterface", pb.GetInterfaceRequest(interface_id=v["interface-id"].encode())
        ).interface
        ifaces = [(v["interface-id"], iface.vni, res)]
        st = _st(res)
    else:  # every interface's prefixes
        listed = c.call("ListInterfaces", pb.ListInterfacesRequest()).interfaces
        ifaces = [(i.id.decode(), i.vni, c.call(method, request(interface_id=i.id))) for i in listed]
        st = dict(o.STATUS_EMPTY)
    items = [o.prefix_from_proto(kind, iid, vni, p) for iid, vni, res in ifaces for p in res.prefixes]
    key = _spec("underlay_route") if v["sort-by"].lower() == "underlayroute" else _by_prefix_string
    list_kind = "LoadBalancerPrefixList" if lb and v["interface-id"] else "PrefixList"
    return o.obj_list(list_kind, {"interface_id": v["interface-id"]}, _sort(items, key), st), ""


PREFIX_FLAGS = (
    Flag("prefix", "prefix", None, required=True),
    Flag("interface-id", "string", "", required=True),
)
UNDERLAY = Flag("underlay", "ip", ZERO_V6)
LIST_PREFIX_FLAGS = (Flag("interface-id", "string", ""), SORT_BY)

command("create", "prefix", *PREFIX_FLAGS, UNDERLAY)(lambda c, v: _create_prefix(c, v, lb=False))
command("delete", "prefix", *PREFIX_FLAGS)(lambda c, v: _delete_prefix(c, v, lb=False))
command("list", "prefix", *LIST_PREFIX_FLAGS)(lambda c, v: _list_prefixes(c, v, lb=False))
command("get", "prefix", *LIST_PREFIX_FLAGS)(lambda c, v: _list_prefixes(c, v, lb=False))
command("create", "lbprefix", *PREFIX_FLAGS, UNDERLAY)(lambda c, v: _create_prefix(c, v, lb=True))
command("delete", "lbprefix", *PREFIX_FLAGS)(lambda c, v: _delete_prefix(c, v, lb=True))
command("list", "lbprefix", *LIST_PREFIX_FLAGS)(lambda c, v: _list_prefixes(c, v, lb=True))
command("get", "lbprefix", *LIST_PREFIX_FLAGS)(lambda c, v: _list_prefixes(c, v, lb=True))


# --- routes -----------------------------------------------------------------------------------


@command(
    "create",
    "route",
    Flag("prefix", "prefix", None, required=True),
    Flag("next-hop-vni", "uint32", 0, required=True),
    Flag("next-hop-ip", "ip", None, required=True),
    Flag("vni", "uint32", 0, required=True),
)
def run_create_route(c: Client, v: Values) -> tuple[o.Obj, str]:
    route = pb.Route(
        weight=100,
        prefix=_prefix_msg(v["prefix"]),
        nexthop_vni=v["next-hop-vni"],
        nexthop_address=_ip_msg(v["next-hop-ip"]),
    )
    res = c.call("CreateRoute", pb.CreateRouteRequest(vni=v["vni"], route=route))
    document = o.route(v["vni"], str(v["prefix"]), v["next-hop-vni"], go_addr(v["next-hop-ip"]))
    document["status"] = _st(res)
    return document, f"created, Next Hop IP: {go_addr(v['next-hop-ip'])}"


@command(
    "delete", "route", Flag("prefix", "prefix", None, required=True), Flag("vni", "uint32", 0, required=True)
)
def run_delete_route(c: Client, v: Values) -> tuple[o.Obj, str]:
    route = pb.Route(weight=100, prefix=_prefix_msg(v["prefix"]))
    res = c.call("DeleteRoute", pb.DeleteRouteRequest(vni=v["vni"], route=route))
    document = o.route(v["vni"], str(v["prefix"]), 0, None)
    document["status"] = _st(res)
    return document, "deleted"


def run_list_routes(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("ListRoutes", pb.ListRoutesRequest(vni=v["vni"]))
    items = [o.route_from_proto(v["vni"], r) for r in res.routes]
    keys: dict[str, Callable[[o.Obj], Any]] = {
        "nexthopvni": lambda i: i["spec"]["next_hop"]["vni"],
        "nexthopip": lambda i: i["spec"]["next_hop"].get("address", ""),
    }
    items = _sort(items, keys.get(v["sort-by"].lower(), _by_prefix_string))
    return o.obj_list("RouteList", {"vni": v["vni"]}, items, _st(res)), ""


command("list", "route", Flag("vni", "uint32", 0), SORT_BY)(run_list_routes)
command("get", "route", Flag("vni", "uint32", 0), SORT_BY)(run_list_routes)


# --- VIP --------------------------------------------------------------------------------------


def _vip_doc(interface_id: str, vip: str | None, underlay: str | None, st: dict[str, Any]) -> o.Obj:
    spec: dict[str, Any] = {"vip_ip": vip}
    if underlay is not None:
        spec["underlay_route"] = underlay
    return o.obj("VirtualIP", {"interface_id": interface_id}, spec, st)


@command(
    "create",
    "virtualip",
    Flag("vip", "ip", None, required=True),
    Flag("interface-id", "string", "", required=True),
    UNDERLAY,
)
def run_create_vip(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.CreateVipRequest(
        interface_id=v["interface-id"].encode(),
        vip_ip=_ip_msg(v["vip"]),
        preferred_underlay_route=_underlay_bytes(v["underlay"]),
    )
    res = c.call("CreateVip", req)
    underlay = o.addr_text(res.underlay_route)
    document = _vip_doc(v["interface-id"], go_addr(v["vip"]), underlay, _st(res))
    return document, f"created, underlay route: {underlay}"


@command("get", "virtualip", Flag("interface-id", "string", ""))
def run_get_vip(c: Client, v: Values) -> tuple[o.Obj, str]:
    if v["interface-id"]:
        ids = [v["interface-id"]]
    else:  # every interface that has one
        ids = [i.id.decode() for i in c.call("ListInterfaces", pb.ListInterfacesRequest()).interfaces]
        if not ids:
            raise ServerError(205, "NO_VM")
    docs = []
    for iid in ids:
        res = c.call(
            "GetVip", pb.GetVipRequest(interface_id=iid.encode()), ignore=() if v["interface-id"] else (341,)
        )
        if res.status.code == 0:
            docs.append(
                _vip_doc(iid, o.addr_text(res.vip_ip.address), o.addr_text(res.underlay_route), _st(res))
            )
    if v["interface-id"]:
        return docs[0], ""
    return o.obj_list("VirtualIPList", {}, docs, {"code": 0, "message": "Success"}), ""


@command("delete", "virtualip", Flag("interface-id", "string", "", required=True))
def run_delete_vip(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("DeleteVip", pb.DeleteVipRequest(interface_id=v["interface-id"].encode()))
    return _vip_doc(v["interface-id"], None, None, _st(res)), "deleted"


# --- NAT --------------------------------------------------------------------------------------


@command(
    "create",
    "nat",
    Flag("interface-id", "string", "", required=True),
    Flag("minport", "uint32", 0, required=True),
    Flag("maxport", "uint32", 0, required=True),
    Flag("nat-ip", "ip", None, required=True),
    UNDERLAY,
)
def run_create_nat(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.CreateNatRequest(
        interface_id=v["interface-id"].encode(),
        nat_ip=_ip_msg(v["nat-ip"]),
        min_port=v["minport"],
        max_port=v["maxport"],
        preferred_underlay_route=_underlay_bytes(v["underlay"]),
    )
    res = c.call("CreateNat", req)
    underlay = o.addr_text(res.underlay_route)
    spec = o.nat_spec(go_addr(v["nat-ip"]), v["minport"], v["maxport"], underlay=underlay, vni=0)
    return o.obj(
        "Nat", o.nat_metadata(v["interface-id"]), spec, _st(res)
    ), f"created, underlay route: {underlay}"


def _nat_doc(iid: str, res: Any) -> o.Obj:
    underlay = o.addr_text(res.underlay_route)
    spec = o.nat_spec(o.addr_text(res.nat_ip.address), res.min_port, res.max_port, underlay=underlay, vni=0)
    return o.obj("Nat", o.nat_metadata(iid), spec, _st(res))


@command("get", "nat", Flag("interface-id", "string", ""))
def run_get_nat(c: Client, v: Values) -> tuple[o.Obj, str]:
    if v["interface-id"]:
        res = c.call("GetNat", pb.GetNatRequest(interface_id=v["interface-id"].encode()))
        return _nat_doc(v["interface-id"], res), ""
    items = []
    for iface in c.call("ListInterfaces", pb.ListInterfacesRequest()).interfaces:
        res = c.call("GetNat", pb.GetNatRequest(interface_id=iface.id), ignore=(341,))
        if res.status.code == 0:
            items.append(_nat_doc(iface.id.decode(), res))
    return o.obj_list("NatList", {}, items, {"code": 0, "message": "Success"}), ""


@command("delete", "nat", Flag("interface-id", "string", "", required=True))
def run_delete_nat(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("DeleteNat", pb.DeleteNatRequest(interface_id=v["interface-id"].encode()))
    return o.obj(
        "Nat", o.nat_metadata(v["interface-id"]), o.nat_spec(None, 0, 0, underlay=None, vni=0), _st(res)
    ), "deleted"


@command("list", "nat", Flag("nat-ip", "ip", IPv4Address(0)), Flag("nat-type", "string", "0"), SORT_BY)
def run_list_nats(c: Client, v: Values) -> tuple[o.Obj, str]:
    types = {"local": 1, "1": 1, "neigh": 2, "2": 2, "neighbor": 2, "any": 0, "0": 0, "": 0}
    nat_type = types.get(str(v["nat-type"]).lower())
    if nat_type is None:
        raise ClientError("nat type can be only: Any = 0/Local = 1/Neigh(bor) = 2")
    nat_ip = _ip_msg(v["nat-ip"])
    entries: list[Any] = []
    st = dict(o.STATUS_EMPTY)
    if nat_type == 0:  # both kinds; dpservice-cli ignores their statuses here
        entries.extend(c.stub.ListLocalNats(pb.ListLocalNatsRequest(nat_ip=nat_ip)).nat_entries)
        entries.extend(c.stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=nat_ip)).nat_entries)
    else:
        method, request = (
            ("ListLocalNats", pb.ListLocalNatsRequest)
            if nat_type == 1
            else ("ListNeighborNats", pb.ListNeighborNatsRequest)
        )
        res = c.call(method, request(nat_ip=nat_ip))
        entries.extend(res.nat_entries)
        st = _st(res)
    items = []
    for e in entries:
        if e.underlay_route:  # a neighbour's slice: no local ("natted") address
            spec = o.nat_spec(None, e.min_port, e.max_port, underlay=o.addr_text(e.underlay_route), vni=e.vni)
            kind = "NeighborNat"
        else:
            spec = o.nat_spec(o.addr_text(e.nat_ip.address), e.min_port, e.max_port, underlay=None, vni=e.vni)
            kind = "Nat"
        if e.HasField("actual_nat_ip"):
            spec["actual_nat_ip"] = o.addr_text(e.actual_nat_ip.address)
        items.append(o.obj(kind, {}, spec))
    keys: dict[str, Callable[[o.Obj], Any]] = {
        "ip": _spec("nat_ip"),
        "minport": _spec("min_port"),
        "maxport": _spec("max_port"),
        "underlayroute": _spec("underlay_route"),
    }
    items = _sort(items, keys.get(v["sort-by"].lower(), _spec("vni")))
    meta: dict[str, Any] = {"nat_ip": go_addr(v["nat-ip"])}
    o._put(meta, "nat_type", v["nat-type"])
    return o.obj_list("NatList", meta, items, st), ""


NEIGHNAT_KEY = (
    Flag("nat-ip", "ip", None, required=True),
    Flag("vni", "uint32", 0, required=True),
    Flag("minport", "uint32", 0, required=True),
    Flag("maxport", "uint32", 0, required=True),
)


@command("create", "neighnat", *NEIGHNAT_KEY, Flag("underlayroute", "ip", None, required=True))
def run_create_neighnat(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.CreateNeighborNatRequest(
        nat_ip=_ip_msg(v["nat-ip"]),
        vni=v["vni"],
        min_port=v["minport"],
        max_port=v["maxport"],
        underlay_route=go_addr(v["underlayroute"]).encode(),
    )
    res = c.call("CreateNeighborNat", req)
    underlay = go_addr(v["underlayroute"])
    spec = {"vni": v["vni"], "min_port": v["minport"], "max_port": v["maxport"], "underlay_route": underlay}
    return o.obj(
        "NeighborNat", {"nat_ip": go_addr(v["nat-ip"])}, spec, _st(res)
    ), f"created, underlay route: {underlay}"


@command("delete", "neighnat", *NEIGHNAT_KEY)
def run_delete_neighnat(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.DeleteNeighborNatRequest(
        nat_ip=_ip_msg(v["nat-ip"]), vni=v["vni"], min_port=v["minport"], max_port=v["maxport"]
    )
    res = c.call("DeleteNeighborNat", req)
    spec = {"vni": v["vni"], "min_port": v["minport"], "max_port": v["maxport"]}
    return o.obj("NeighborNat", {"nat_ip": go_addr(v["nat-ip"])}, spec, _st(res)), "deleted"


# --- load balancers ---------------------------------------------------------------------------

_LB_PROTOCOLS: dict[str, Any] = {
    "icmp": pb.ICMP,
    "tcp": pb.TCP,
    "udp": pb.UDP,
    "sctp": pb.SCTP,
    "icmpv6": pb.ICMPV6,
}


def _lb_port(spec: str) -> tuple[Any, int]:
    """``tcp/80`` -> (6, 80), as dpservice-cli (which lets the server reject icmp/sctp)."""
    proto_text, _, port_text = spec.partition("/")
    proto = _LB_PROTOCOLS.get(proto_text.lower())
    if proto is None:
        raise ClientError("error converting port: unsupported protocol")
    try:
        port = int(port_text)
    except ValueError:
        detail = f'strconv.Atoi: parsing "{port_text}": invalid syntax'
        raise ClientError(f"error converting port: error parsing port number: {detail}") from None
    return proto, port & 0xFFFFFFFF


@command(
    "create",
    "loadbalancer",
    Flag("id", "string", "", required=True),
    Flag("vni", "uint32", 0, required=True),
    Flag("vip", "ip", None, required=True),
    Flag("lbports", "strings", [], required=True),
    UNDERLAY,
)
def run_create_lb(c: Client, v: Values) -> tuple[o.Obj, str]:
    ports = [_lb_port(p) for p in v["lbports"]]
    req = pb.CreateLoadBalancerRequest(
        loadbalancer_id=v["id"].encode(),
        vni=v["vni"],
        loadbalanced_ip=_ip_msg(v["vip"]),
        loadbalanced_ports=[pb.LbPort(port=port, protocol=proto) for proto, port in ports],
        preferred_underlay_route=_underlay_bytes(v["underlay"]),
    )
    res = c.call("CreateLoadBalancer", req)
    underlay = o.addr_text(res.underlay_route)
    spec = o.lb_spec(v["vni"], go_addr(v["vip"]), ports, underlay)
    return o.obj("LoadBalancer", {"id": v["id"]}, spec, _st(res)), f"created, underlay route: {underlay}"


def _lb_doc(lb_id: str, vni: int, ip: Any, ports: Any, underlay: bytes, *, st: dict[str, Any]) -> o.Obj:
    spec = o.lb_spec(
        vni, o.addr_text(ip.address), [(p.protocol, p.port) for p in ports], o.addr_text(underlay)
    )
    return o.obj("LoadBalancer", {"id": lb_id}, spec, st)


@command("get", "loadbalancer", Flag("id", "string", ""))
def run_get_lb(c: Client, v: Values) -> tuple[o.Obj, str]:
    if not v["id"]:
        return run_list_lbs(c, {"sort-by": ""})
    res = c.call("GetLoadBalancer", pb.GetLoadBalancerRequest(loadbalancer_id=v["id"].encode()))
    document = _lb_doc(
        v["id"], res.vni, res.loadbalanced_ip, res.loadbalanced_ports, res.underlay_route, st=_st(res)
    )
    return document, ""


@command("list", "loadbalancer", SORT_BY)
def run_list_lbs(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("ListLoadBalancers", pb.ListLoadBalancersRequest())
    items = [
        _lb_doc(lb.id.decode(), lb.vni, lb.ip, lb.ports, lb.underlay_route, st=dict(o.STATUS_EMPTY))
        for lb in res.loadbalancers
    ]
    keys: dict[str, Callable[[o.Obj], Any]] = {
        "vni": lambda i: (i["spec"]["vni"], i["spec"]["loadbalanced_ip"]),
        "ip": lambda i: (i["spec"]["loadbalanced_ip"], i["spec"]["vni"]),
        "underlayroute": _spec("underlay_route"),
    }
    items = _sort(items, keys.get(v["sort-by"].lower(), lambda i: i["metadata"]["id"]))
    return o.obj_list("LoadBalancerList", {}, items, _st(res)), ""


@command("delete", "loadbalancer", Flag("id", "string", "", required=True))
def run_delete_lb(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call("DeleteLoadBalancer", pb.DeleteLoadBalancerRequest(loadbalancer_id=v["id"].encode()))
    return o.obj("LoadBalancer", {"id": v["id"]}, {"vni": 0}, _st(res)), "deleted"


LBTARGET_FLAGS = (Flag("target-ip", "ip", None, required=True), Flag("lb-id", "string", "", required=True))


def _lbtarget_doc(lb_id: str, target: str | None, st: dict[str, Any]) -> o.Obj:
    spec = {} if target is None else {"target_ip": target}
    return o.obj("LoadBalancerTarget", {"loadbalancer_id": lb_id}, spec, st)


@command("create", "lbtarget", *LBTARGET_FLAGS)
def run_create_lbtarget(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.CreateLoadBalancerTargetRequest(
        loadbalancer_id=v["lb-id"].encode(), target_ip=_ip_msg(v["target-ip"])
    )
    res = c.call("CreateLoadBalancerTarget", req)
    return _lbtarget_doc(v["lb-id"], go_addr(v["target-ip"]), _st(res)), "created"


@command("delete", "lbtarget", *LBTARGET_FLAGS)
def run_delete_lbtarget(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.DeleteLoadBalancerTargetRequest(
        loadbalancer_id=v["lb-id"].encode(), target_ip=_ip_msg(v["target-ip"])
    )
    res = c.call("DeleteLoadBalancerTarget", req)
    return _lbtarget_doc(v["lb-id"], None, _st(res)), "deleted"


def run_list_lbtargets(c: Client, v: Values) -> tuple[o.Obj, str]:
    res = c.call(
        "ListLoadBalancerTargets", pb.ListLoadBalancerTargetsRequest(loadbalancer_id=v["lb-id"].encode())
    )
    items = [_lbtarget_doc(v["lb-id"], o.addr_text(t.address), dict(o.STATUS_EMPTY)) for t in res.target_ips]
    items = _sort(items, _spec("target_ip"))
    return o.obj_list("LoadBalancerTargetList", {"loadbalancer_id": v["lb-id"]}, items, _st(res)), ""


command("list", "lbtarget", Flag("lb-id", "string", ""), SORT_BY)(run_list_lbtargets)
command("get", "lbtarget", Flag("lb-id", "string", ""), SORT_BY)(run_list_lbtargets)


# --- firewall rules ---------------------------------------------------------------------------


def _fw_ports_ok(*ports: int) -> bool:
    return all(p == -1 or 0 < p <= 65535 for p in ports)


@command(
    "create",
    "fwrule",
    Flag("interface-id", "string", "", required=True),
    Flag("rule-id", "string", "", required=True),
    Flag("direction", "string", "", required=True),
    Flag("action", "string", "", required=True),
    Flag("priority", "uint32", 1000),
    Flag("src", "prefix", None, required=True),
    Flag("dst", "prefix", None, required=True),
    Flag("protocol", "string", ""),
    Flag("src-port-min", "int32", -1),
    Flag("src-port-max", "int32", -1),
    Flag("dst-port-min", "int32", -1),
    Flag("dst-port-max", "int32", -1),
    Flag("icmp-type", "int32", -1),
    Flag("icmp-code", "int32", -1),
)
def run_create_fwrule(c: Client, v: Values) -> tuple[o.Obj, str]:
    pf = pb.ProtocolFilter()
    proto = v["protocol"]
    ports = (v["src-port-min"], v["src-port-max"], v["dst-port-min"], v["dst-port-max"])
    if proto in ("icmp", "1"):
        pf.icmp.icmp_type, pf.icmp.icmp_code = v["icmp-type"], v["icmp-code"]
        pf.icmp.SetInParent()
    elif proto in ("tcp", "6", "udp", "17"):
        if not _fw_ports_ok(*ports):
            raise ClientError("ports can only be -1 or <1,65535>")
        if ports[0] > ports[1] or ports[2] > ports[3]:
            raise ClientError("min port must be lower or equal to max port")
        target = pf.tcp if proto in ("tcp", "6") else pf.udp
        target.src_port_lower, target.src_port_upper, target.dst_port_lower, target.dst_port_upper = ports
        target.SetInParent()
    elif proto != "":
        raise ClientError("protocol can be only: icmp = 1/tcp = 6/udp = 17")
    if v["priority"] > 65536:
        raise ClientError("priority can be only: <0,65536")
    accept: tuple[str, Any] = ("Accept", pb.ACCEPT)
    drop: tuple[str, Any] = ("Drop", pb.DROP)
    actions = {"accept": accept, "allow": accept, "1": accept, "drop": drop, "deny": drop, "0": drop}
    directions: dict[str, tuple[str, Any]] = {
        "ingress": ("Ingress", 0),
        "0": ("Ingress", 0),
        "egress": ("Egress", 1),
        "1": ("Egress", 1),
    }
    action = actions.get(v["action"].lower())
    if action is None:
        raise ClientError("firewall action can be only: drop/deny/0|accept/allow/1")
    direction = directions.get(v["direction"].lower())
    if direction is None:
        raise ClientError("traffic direction can be only: Ingress = 0/Egress = 1")
    rule = pb.FirewallRule(
        id=v["rule-id"].encode(),
        direction=direction[1],
        action=action[1],
        priority=v["priority"],
        source_prefix=_prefix_msg(v["src"]),
        destination_prefix=_prefix_msg(v["dst"]),
        protocol_filter=pf,
    )
    res = c.call(
        "CreateFirewallRule", pb.CreateFirewallRuleRequest(interface_id=v["interface-id"].encode(), rule=rule)
    )
    document = o.firewall_rule(
        v["interface-id"],
        v["rule-id"],
        direction=direction[0],
        action=action[0],
        priority=v["priority"],
        src=str(v["src"]),
        dst=str(v["dst"]),
        protocol_filter=o.protocol_filter_from_proto(pf),
        st=_st(res),
    )
    return document, "created"


@command("get", "fwrule", Flag("rule-id", "string", ""), Flag("interface-id", "string", "", required=True))
def run_get_fwrule(c: Client, v: Values) -> tuple[o.Obj, str]:
    if not v["rule-id"]:
        return run_list_fwrules(c, {"interface-id": v["interface-id"], "sort-by": ""})
    req = pb.GetFirewallRuleRequest(interface_id=v["interface-id"].encode(), rule_id=v["rule-id"].encode())
    res = c.call("GetFirewallRule", req)
    return o.firewall_rule_from_proto(v["interface-id"], res.rule), ""


@command(
    "delete",
    "fwrule",
    Flag("rule-id", "string", "", required=True),
    Flag("interface-id", "string", "", required=True),
)
def run_delete_fwrule(c: Client, v: Values) -> tuple[o.Obj, str]:
    req = pb.DeleteFirewallRuleRequest(interface_id=v["interface-id"].encode(), rule_id=v["rule-id"].encode())
    res = c.call("DeleteFirewallRule", req)
    spec = {"id": v["rule-id"], "priority": 0}
    document = o.obj("FirewallRule", {"interface_id": v["interface-id"]}, spec, _st(res))
    return document, "deleted"


@command("list", "fwrule", Flag("interface-id", "string", ""), SORT_BY)
def run_list_fwrules(c: Client, v: Values) -> tuple[o.Obj, str]:
    if v["interface-id"]:
        ids = [v["interface-id"].encode()]
    else:
        ids = [i.id for i in c.call("ListInterfaces", pb.ListInterfacesRequest()).interfaces]
    items: list[o.Obj] = []
    st = dict(o.STATUS_EMPTY)
    for iid in ids:
        res = c.call("ListFirewallRules", pb.ListFirewallRulesRequest(interface_id=iid))
        items.extend(o.firewall_rule_from_proto(iid.decode(), r) for r in res.rules)
        st = _st(res)
    keys: dict[str, Callable[[o.Obj], Any]] = {
        "direction": _spec("direction"),
        "src": _spec("source_prefix"),
        "source": _spec("source_prefix"),
        "dst": _spec("destination_prefix"),
        "destination": _spec("destination_prefix"),
        "action": _spec("action"),
        "protocol": lambda i: str(i["spec"].get("protocol_filter")),
        "priority": _spec("priority"),
    }
    items = _sort(items, keys.get(v["sort-by"].lower(), _spec("id")))
    return o.obj_list("FirewallRuleList", {"interface_id": v["interface-id"]}, items, st), ""
