"""Every DPDKironcore RPC against the agent: success paths and every service error code.

Runs against the in-process server and against the real agent process (dpservice-bin's command
line, TAP devices). Most cases are dpservice's ``test/local/test_zzz_grpc.py`` expectations, made
exact (whole replies instead of single fields); the others cover codes that suite never reaches.
Each failing call is also checked to leave every list and get unchanged (``expect_error``).
Deliberate differences from dpservice are marked "ours:" and listed in docs/agent.md.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.tables.errors import ErrorCode as E
from testkit import agent_fixtures
from testkit.agent_api import (
    HOST_UNDERLAY,
    LB_IP,
    LB_NAME,
    NAT_IP,
    NAT_LOCAL_MAX,
    NAT_LOCAL_MIN,
    NAT_NEIGH_MAX,
    NAT_NEIGH_MIN,
    NEIGH_VNI1_UL,
    ROUTER_UL,
    VIP_IP,
    VM1,
    VM2,
    VM3,
    VM4,
    VNI1,
    VNI2,
    VNI3,
    create_interface_req,
    ip,
    prefix,
    route_req,
)
from testkit.agent_fixtures import Api, expect_error, ok

api = agent_fixtures.api
inprocess_agent = agent_fixtures.inprocess_agent
agent_process = agent_fixtures.agent_process

UNDERLAY_RE = re.compile(r"^fc00:1::d000:[0-9a-f]{1,4}:0:[0-9a-f]{1,4}$")  # our /64, type 0xd0, generated


def underlay(response: Any) -> str:
    text = response.underlay_route.decode()
    assert UNDERLAY_RE.match(text), text
    return str(text)


def iface_id(vm: Any) -> bytes:
    return str(vm.name).encode()


# --- helpers per object --------------------------------------------------------------------------


def add_interface(api: Api, vm: Any, **kw: Any) -> str:
    return underlay(ok(api.stub.CreateInterface(create_interface_req(vm, **kw))))


def del_interface(api: Api, name: str) -> Any:
    return api.stub.DeleteInterface(pb.DeleteInterfaceRequest(interface_id=name.encode()))


def add_route(api: Api, vni: int, pfx: str, nexthop: str = NEIGH_VNI1_UL, nexthop_vni: int = 0) -> Any:
    return api.stub.CreateRoute(route_req(vni, pfx, nexthop, nexthop_vni))


def del_route_req(vni: int, pfx: str) -> Any:
    return pb.DeleteRouteRequest(vni=vni, route=pb.Route(prefix=prefix(pfx)))


def list_routes(api: Api, vni: int) -> list[tuple[str, int, str]]:
    res = ok(api.stub.ListRoutes(pb.ListRoutesRequest(vni=vni)))
    return [
        (
            f"{r.prefix.ip.address.decode()}/{r.prefix.length}",
            r.nexthop_vni,
            r.nexthop_address.address.decode(),
        )
        for r in res.routes
    ]


def prefix_req(kind: str, name: str, pfx: str, ul: str = "") -> Any:
    req = getattr(pb, f"Create{kind}Request")(interface_id=name.encode(), prefix=prefix(pfx))
    if ul:
        req.preferred_underlay_route = ul.encode()
    return req


def list_prefixes(api: Api, kind: str, name: str) -> list[tuple[str, str]]:
    method = "ListPrefixes" if kind == "Prefix" else "ListLoadBalancerPrefixes"
    req = getattr(pb, f"{method}Request")(interface_id=name.encode())
    res = ok(getattr(api.stub, method)(req))
    return [(f"{p.ip.address.decode()}/{p.length}", p.underlay_route.decode()) for p in res.prefixes]


def vip_req(name: str, vip: str, ul: str = "") -> Any:
    return pb.CreateVipRequest(
        interface_id=name.encode(), vip_ip=ip(vip), preferred_underlay_route=ul.encode()
    )


def nat_req(name: str, nat_ip: str, lo: int, hi: int, ul: str = "") -> Any:
    return pb.CreateNatRequest(
        interface_id=name.encode(),
        nat_ip=ip(nat_ip),
        min_port=lo,
        max_port=hi,
        preferred_underlay_route=ul.encode(),
    )


def neighnat_req(nat_ip: str, vni: int, lo: int, hi: int, ul: str = NEIGH_VNI1_UL) -> Any:
    return pb.CreateNeighborNatRequest(
        nat_ip=ip(nat_ip), vni=vni, min_port=lo, max_port=hi, underlay_route=ul.encode()
    )


def del_neighnat_req(nat_ip: str, vni: int, lo: int, hi: int) -> Any:
    return pb.DeleteNeighborNatRequest(nat_ip=ip(nat_ip), vni=vni, min_port=lo, max_port=hi)


def lb_req(lb_id: str, vni: int, vip: str, ports: list[tuple[int, int]], ul: str = "") -> Any:
    return pb.CreateLoadBalancerRequest(
        loadbalancer_id=lb_id.encode(),
        vni=vni,
        loadbalanced_ip=ip(vip),
        loadbalanced_ports=[pb.LbPort(protocol=proto, port=port) for proto, port in ports],
        preferred_underlay_route=ul.encode(),
    )


def target_req(kind: str, lb_id: str, target: str) -> Any:
    return getattr(pb, f"{kind}LoadBalancerTargetRequest")(
        loadbalancer_id=lb_id.encode(), target_ip=ip(target)
    )


def list_targets(api: Api, lb_id: str) -> list[str]:
    res = ok(
        api.stub.ListLoadBalancerTargets(pb.ListLoadBalancerTargetsRequest(loadbalancer_id=lb_id.encode()))
    )
    return [t.address.decode() for t in res.target_ips]


def fw_req(name: str, rule_id: str, src: str = "1.2.3.4/16", dst: str = "0.0.0.0/0", **kw: Any) -> Any:
    pf = kw.pop(
        "protocol_filter",
        pb.ProtocolFilter(
            tcp=pb.TcpFilter(src_port_lower=-1, src_port_upper=-1, dst_port_lower=-1, dst_port_upper=-1)
        ),
    )
    rule = pb.FirewallRule(
        id=rule_id.encode(),
        direction=kw.pop("direction", pb.INGRESS),
        action=kw.pop("action", pb.ACCEPT),
        priority=kw.pop("priority", 1000),
        source_prefix=prefix(src),
        destination_prefix=prefix(dst),
        protocol_filter=pf,
    )
    assert not kw
    return pb.CreateFirewallRuleRequest(interface_id=name.encode(), rule=rule)


def fw_id(name: str, rule_id: str, kind: str = "Get") -> Any:
    return getattr(pb, f"{kind}FirewallRuleRequest")(interface_id=name.encode(), rule_id=rule_id.encode())


# --- initialization, version, health ---------------------------------------------------------------


def test_check_initialized_returns_uppercase_uuid_of_this_process(api: Api) -> None:
    first = ok(api.stub.CheckInitialized(pb.CheckInitializedRequest())).uuid
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}", first)
    assert ok(api.stub.Initialize(pb.InitializeRequest())).uuid == first  # Initialize again: same UUID


def test_get_version_reports_equal_protocol_and_version(api: Api) -> None:
    res = ok(
        api.stub.GetVersion(pb.GetVersionRequest(client_protocol="p", client_name="n", client_version="v"))
    )
    assert res.service_protocol == res.service_version
    assert res.service_version.startswith("v")


def test_initialize_drops_neighbor_nats_and_created_routes_keeps_interfaces(api: Api) -> None:
    ok(api.stub.CreateNeighborNat(neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MIN, NAT_NEIGH_MAX)))
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.0/24")))
    assert list_routes(api, VNI1)
    ok(api.stub.Initialize(pb.InitializeRequest()))
    nats = api.stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=ip("0.0.0.0")))
    assert list(nats.nat_entries) == []
    assert list_routes(api, 0) == []
    # the interfaces and their own routes stay: their addresses still clash
    assert len(ok(api.stub.ListInterfaces(pb.ListInterfacesRequest())).interfaces) == 3
    expect_error(api.stub, "CreateRoute", route_req(VNI1, f"{VM1.ip}/32", NEIGH_VNI1_UL), E.ROUTE_EXISTS)
    # ours: alias prefixes survive (their route and their underlay stay together)
    expect_error(api.stub, "CreatePrefix", prefix_req("Prefix", VM2.name, "1.2.3.0/24"), E.ROUTE_EXISTS)
    # the neighbour NAT's DNAT key went with it: the IP can become a VIP
    ok(api.stub.CreateVip(vip_req(VM1.name, NAT_IP)))


def test_health_is_serving_for_the_server_and_our_service_only(api: Api) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(api.channel)
    assert (
        stub.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
    )
    named = stub.Check(health_pb2.HealthCheckRequest(service="dpdkironcore.v1.DPDKironcore"))
    assert named.status == health_pb2.HealthCheckResponse.SERVING
    unknown = stub.Check(health_pb2.HealthCheckRequest(service="grpc.other.Service"))
    assert unknown.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    with pytest.raises(grpc.RpcError) as info:
        next(stub.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=5))
    err: Any = info.value
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "Service not found")


# --- interfaces ------------------------------------------------------------------------------------


def test_interface_lifecycle(api: Api) -> None:
    """test_grpc_interface: spec; re-add 202; after delete get/del 201; re-create."""
    ul = add_interface(api, VM4)
    res = ok(api.stub.GetInterface(pb.GetInterfaceRequest(interface_id=iface_id(VM4))))
    assert res.interface == pb.Interface(
        id=b"vm4",
        vni=VM4.vni,
        primary_ipv4=VM4.ip.encode(),
        primary_ipv6=VM4.ipv6.encode(),
        underlay_route=ul.encode(),
        pci_name=VM4.device,
        meteringParams=pb.MeteringParams(),
    )
    expect_error(api.stub, "CreateInterface", create_interface_req(VM4), E.ALREADY_EXISTS)
    ok(del_interface(api, "vm4"))
    expect_error(api.stub, "GetInterface", pb.GetInterfaceRequest(interface_id=b"vm4"), E.NOT_FOUND)
    expect_error(api.stub, "DeleteInterface", pb.DeleteInterfaceRequest(interface_id=b"vm4"), E.NOT_FOUND)
    add_interface(api, VM4)
    ok(del_interface(api, "vm4"))


def test_create_interface_reply_names_the_vf_netdev(api: Api) -> None:
    res = ok(api.stub.CreateInterface(create_interface_req(VM4)))
    assert res.vf.name == f"{api.topology.vf_pattern}3"
    assert (res.vf.domain, res.vf.bus, res.vf.slot, res.vf.function) == (0, 0, 0, 0)


def test_interface_list_is_in_port_order(api: Api) -> None:
    """test_grpc_interface_list: list = old + new, removal restores."""
    old = list(ok(api.stub.ListInterfaces(pb.ListInterfacesRequest())).interfaces)
    assert [i.id for i in old] == [b"vm1", b"vm2", b"vm3"]
    assert old[0].hostname == "vm1-host"
    add_interface(api, VM4)
    spec = ok(api.stub.GetInterface(pb.GetInterfaceRequest(interface_id=b"vm4"))).interface
    assert list(ok(api.stub.ListInterfaces(pb.ListInterfacesRequest())).interfaces) == [*old, spec]
    ok(del_interface(api, "vm4"))
    assert list(ok(api.stub.ListInterfaces(pb.ListInterfacesRequest())).interfaces) == old


def test_interface_errors_and_rollback(api: Api) -> None:
    """test_grpc_interface_errors: bad device 201; IP clash 301 (v4 or v6) with rollback; other VNI ok."""
    expect_error(api.stub, "CreateInterface", create_interface_req(VM4, device_name="invalid"), E.NOT_FOUND)
    clash6 = create_interface_req(
        VM4,
        ipv4_config=pb.IpConfig(primary_address=b"1.2.3.4"),
        ipv6_config=pb.IpConfig(primary_address=VM1.ipv6.encode()),
    )
    expect_error(api.stub, "CreateInterface", clash6, E.ROUTE_EXISTS)
    clash4 = create_interface_req(
        VM4,
        ipv4_config=pb.IpConfig(primary_address=VM1.ip.encode()),
        ipv6_config=pb.IpConfig(primary_address=b"1234::"),
    )
    expect_error(api.stub, "CreateInterface", clash4, E.ROUTE_EXISTS)
    # nothing leaked: the same id, device and addresses work now
    fine = create_interface_req(
        VM4,
        ipv4_config=pb.IpConfig(primary_address=b"1.2.3.4"),
        ipv6_config=pb.IpConfig(primary_address=b"1234::"),
    )
    ok(api.stub.CreateInterface(fine))
    ok(del_interface(api, "vm4"))
    other_vni = create_interface_req(
        VM4,
        vni=VM1.vni + 1,
        ipv4_config=pb.IpConfig(primary_address=VM1.ip.encode()),
        ipv6_config=pb.IpConfig(primary_address=VM1.ipv6.encode()),
    )
    ok(api.stub.CreateInterface(other_vni))


def test_interface_device_in_use_and_id_taken(api: Api) -> None:
    # the device of VM1 (202 before the id check, as in dpservice), a PF (allocated from the start)
    expect_error(
        api.stub, "CreateInterface", create_interface_req(VM4, device_name=VM1.device), E.ALREADY_EXISTS
    )
    expect_error(
        api.stub, "CreateInterface", create_interface_req(VM4, device_name="net_tap0"), E.ALREADY_EXISTS
    )
    # a free device, but VM1's id
    expect_error(api.stub, "CreateInterface", create_interface_req(VM4, interface_id=b"vm1"), E.VM_HANDLE)


def test_interface_device_by_kernel_netdev_name(api: Api) -> None:
    """ours: a device may also be named by its kernel netdev (what Kubernetes objects carry)."""
    netdev = f"{api.topology.vf_pattern}3"  # VM4's port, net_tap5
    ok(api.stub.CreateInterface(create_interface_req(VM4, device_name=netdev)))
    got = ok(api.stub.GetInterface(pb.GetInterfaceRequest(interface_id=b"vm4"))).interface
    assert got.pci_name == netdev
    # the same port by its DPDK name is taken now; an uplink by its netdev name never is free
    expect_error(api.stub, "CreateInterface", create_interface_req(VM4, interface_id=b"x"), E.ALREADY_EXISTS)
    expect_error(
        api.stub, "CreateInterface", create_interface_req(VM4, device_name=api.topology.pf0), E.ALREADY_EXISTS
    )
    ok(del_interface(api, "vm4"))


def test_interface_with_one_family_reports_zero_address_for_the_other(api: Api) -> None:
    req = create_interface_req(VM4, ipv6_config=pb.IpConfig(primary_address=b"::"))
    ok(api.stub.CreateInterface(req))
    got = ok(api.stub.GetInterface(pb.GetInterfaceRequest(interface_id=b"vm4"))).interface
    assert (got.primary_ipv4, got.primary_ipv6) == (VM4.ip.encode(), b"::")
    # no ::/128 route was added for the disabled family: another IPv6-less interface fits
    ok(del_interface(api, "vm4"))


def test_delete_interface_takes_its_vip_nat_prefixes_and_rules_along(api: Api) -> None:
    """ours: dpservice leaves VIP/NAT/prefix state behind; we remove it (no orphaned underlays)."""
    add_interface(api, VM4)
    ok(api.stub.CreateVip(vip_req("vm4", VIP_IP)))
    ok(api.stub.CreateNat(nat_req("vm4", NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.CreatePrefix(prefix_req("Prefix", "vm4", "1.2.3.0/24")))
    ok(api.stub.CreateLoadBalancerPrefix(prefix_req("LoadBalancerPrefix", "vm4", "1.2.4.0/24")))
    ok(api.stub.CreateFirewallRule(fw_req("vm4", "fw0")))
    ok(del_interface(api, "vm4"))
    add_interface(api, VM4)  # same IP and VNI: no VIP/NAT comes back
    expect_error(api.stub, "GetVip", pb.GetVipRequest(interface_id=b"vm4"), E.SNAT_NO_DATA)
    expect_error(api.stub, "GetNat", pb.GetNatRequest(interface_id=b"vm4"), E.SNAT_NO_DATA)
    assert list_prefixes(api, "Prefix", "vm4") == []
    assert list_prefixes(api, "LoadBalancerPrefix", "vm4") == []
    assert list(ok(api.stub.ListFirewallRules(pb.ListFirewallRulesRequest(interface_id=b"vm4"))).rules) == []
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.0/24")))  # the route is free again
    ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))  # and the VIP's DNAT key


def test_preferred_underlays_are_honoured_and_collisions_rejected(api: Api) -> None:
    """test_grpc_external_underlays."""
    iface_ul, other_ul = "fc00:1::8000:0:1", "fc00:1::c000:0:2"
    res = ok(api.stub.CreateInterface(create_interface_req(VM4, preferred_underlay_route=iface_ul.encode())))
    assert res.underlay_route == iface_ul.encode()
    assert (
        ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)], other_ul))).underlay_route
        == other_ul.encode()
    )
    ok(api.stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=LB_NAME.encode())))
    for kind, method in (("Prefix", "Prefix"), ("LoadBalancerPrefix", "LoadBalancerPrefix")):
        res = ok(getattr(api.stub, f"Create{method}")(prefix_req(kind, "vm4", "1.2.3.0/24", other_ul)))
        assert res.underlay_route == other_ul.encode()
        delete = getattr(pb, f"Delete{method}Request")(interface_id=b"vm4", prefix=prefix("1.2.3.0/24"))
        ok(getattr(api.stub, f"Delete{method}")(delete))
    assert ok(api.stub.CreateVip(vip_req("vm4", VIP_IP, other_ul))).underlay_route == other_ul.encode()
    ok(api.stub.DeleteVip(pb.DeleteVipRequest(interface_id=b"vm4")))
    res = ok(api.stub.CreateNat(nat_req("vm4", NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX, other_ul)))
    assert res.underlay_route == other_ul.encode()
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm4")))
    # the interface's own underlay for a VIP: already registered
    expect_error(api.stub, "CreateVip", vip_req("vm4", VIP_IP, iface_ul), E.VNF_INSERT)


def test_generated_underlays_are_unique_and_in_the_host_prefix(api: Api) -> None:
    seen = {
        add_interface(api, VM4),
        underlay(ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))),
        underlay(ok(api.stub.CreateNat(nat_req(VM2.name, NAT_IP, 1000, 2000)))),
        underlay(ok(api.stub.CreatePrefix(prefix_req("Prefix", VM3.name, "1.2.3.0/24")))),
        underlay(ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))),
    }
    assert len(seen) == 5
    assert all(s.startswith(HOST_UNDERLAY.split("::")[0] + "::d000:") for s in seen)


# --- routes ----------------------------------------------------------------------------------------


def test_route_lifecycle(api: Api) -> None:
    """test_grpc_route: add; duplicate (also 1.2.3.255/24) 301; /25 ok; del; del again 302; re-add."""
    add_interface(api, VM4, vni=999)
    ok(add_route(api, 999, "1.2.3.4/24", NEIGH_VNI1_UL, VNI1))
    expect_error(api.stub, "CreateRoute", route_req(999, "1.2.3.4/24", NEIGH_VNI1_UL, VNI1), E.ROUTE_EXISTS)
    expect_error(api.stub, "CreateRoute", route_req(999, "1.2.3.255/24", NEIGH_VNI1_UL, VNI1), E.ROUTE_EXISTS)
    ok(add_route(api, 999, "1.2.3.4/25", NEIGH_VNI1_UL, VNI1))
    ok(api.stub.DeleteRoute(del_route_req(999, "1.2.3.4/25")))
    ok(api.stub.DeleteRoute(del_route_req(999, "1.2.3.4/24")))
    expect_error(api.stub, "DeleteRoute", del_route_req(999, "1.2.3.4/24"), E.ROUTE_NOT_FOUND)
    ok(add_route(api, 999, "1.2.3.4/24", NEIGH_VNI1_UL, VNI1))
    assert list_routes(api, 999) == [
        ("1.2.3.0/24", VNI1, NEIGH_VNI1_UL)
    ]  # listed masked, as rte_rib stores it
    ok(api.stub.DeleteRoute(del_route_req(999, "1.2.3.4/24")))


def test_route_list_includes_ipv6_and_keeps_order(api: Api) -> None:
    """test_grpc_route_list; ours: IPv6 routes are listed too (dpservice never iterates its IPv6 RIB)."""
    expected = [
        ("0.0.0.0/0", VNI1, ROUTER_UL),
        ("10.100.2.0/24", 0, NEIGH_VNI1_UL),
        ("::/0", VNI1, ROUTER_UL),
        ("2000:100:2::/104", 0, NEIGH_VNI1_UL),
    ]
    assert list_routes(api, VNI1) == expected
    ok(api.stub.DeleteRoute(del_route_req(VNI1, "0.0.0.0/0")))
    assert list_routes(api, VNI1) == expected[1:]
    ok(add_route(api, VNI1, "0.0.0.0/0", ROUTER_UL, VNI1))
    assert list_routes(api, VNI1) == expected


def test_route_errors(api: Api) -> None:
    """test_grpc_route_errors: unknown VNI 206 (add, list, del); IPv4 next hop 204."""
    expect_error(api.stub, "CreateRoute", route_req(VNI3, "0.0.0.0/0", "1234::"), E.NO_VNI)
    expect_error(api.stub, "ListRoutes", pb.ListRoutesRequest(vni=VNI3), E.NO_VNI)
    expect_error(api.stub, "DeleteRoute", del_route_req(VNI3, "0.0.0.0/0"), E.NO_VNI)
    expect_error(api.stub, "CreateRoute", route_req(VNI1, "4.5.6.7/32", "1.2.3.4"), E.BAD_IPVER)
    # 204 comes before 206, as in dpservice
    expect_error(api.stub, "CreateRoute", route_req(VNI3, "4.5.6.7/32", "1.2.3.4"), E.BAD_IPVER)


def test_routes_of_interfaces_are_not_deletable_or_listed(api: Api) -> None:
    expect_error(api.stub, "DeleteRoute", del_route_req(VNI1, f"{VM1.ip}/32"), E.ROUTE_BAD_PORT)
    expect_error(api.stub, "DeleteRoute", del_route_req(VNI1, f"{VM1.ipv6}/128"), E.ROUTE_BAD_PORT)
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.0/24")))
    expect_error(api.stub, "DeleteRoute", del_route_req(VNI1, "1.2.3.0/24"), E.ROUTE_BAD_PORT)
    assert all(p not in ("1.2.3.0/24", f"{VM1.ip}/32") for p, _, _ in list_routes(api, VNI1))


def test_route_prefix_longer_than_the_family_is_route_insert(api: Api) -> None:
    expect_error(api.stub, "CreateRoute", route_req(VNI1, "1.2.3.4/33", NEIGH_VNI1_UL), E.ROUTE_INSERT)
    expect_error(api.stub, "CreateRoute", route_req(VNI1, "1234::/129", NEIGH_VNI1_UL), E.ROUTE_INSERT)
    expect_error(api.stub, "DeleteRoute", del_route_req(VNI1, "1.2.3.4/33"), E.ROUTE_NOT_FOUND)


def test_list_routes_of_every_vni(api: Api) -> None:
    """test_grpc_global_list_routes: VNI 0 = the union."""
    assert sorted(list_routes(api, 0)) == sorted(list_routes(api, VNI1) + list_routes(api, VNI2))


def test_many_routes_are_all_listed(api: Api) -> None:
    """test_grpc_multireply: 64 extra routes (dpservice chunks replies; gRPC has no such limit here)."""
    for subnet in range(30, 94):
        ok(add_route(api, VNI1, f"192.168.{subnet}.0/32"))
    assert len(list_routes(api, VNI1)) == 64 + 4  # ours: + the 2 IPv6 routes dpservice does not list
    for subnet in range(30, 94):
        ok(api.stub.DeleteRoute(del_route_req(VNI1, f"192.168.{subnet}.0/32")))


# --- prefixes and load-balancer prefixes ------------------------------------------------------------


@pytest.mark.parametrize("pfx", ["1.2.3.0/24", "1234::/64"])
def test_prefix_lifecycle(api: Api, pfx: str) -> None:
    """test_grpc_prefix / _ipv6: add; dup 301; del; del again 302; re-add."""
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, pfx)))
    expect_error(api.stub, "CreatePrefix", prefix_req("Prefix", VM1.name, pfx), E.ROUTE_EXISTS)
    delete = pb.DeletePrefixRequest(interface_id=b"vm1", prefix=prefix(pfx))
    ok(api.stub.DeletePrefix(delete))
    expect_error(api.stub, "DeletePrefix", delete, E.ROUTE_NOT_FOUND)
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, pfx)))
    ok(api.stub.DeletePrefix(delete))


@pytest.mark.parametrize(
    ("kind", "p1", "p2"),
    [
        ("Prefix", "1.2.3.0/24", "1.2.4.0/24"),
        ("Prefix", "1234:1::/64", "1234:2::/64"),
        ("LoadBalancerPrefix", "1.2.3.0/24", "1.2.4.0/24"),
        ("LoadBalancerPrefix", "1234:1::/64", "1234:2::/64"),
    ],
)
def test_prefix_list(api: Api, kind: str, p1: str, p2: str) -> None:
    """test_grpc_prefix_list / lbprefix_list: specs in order, removals."""
    ul1 = underlay(ok(getattr(api.stub, f"Create{kind}")(prefix_req(kind, VM1.name, p1))))
    ul2 = underlay(ok(getattr(api.stub, f"Create{kind}")(prefix_req(kind, VM1.name, p2))))
    assert list_prefixes(api, kind, VM1.name) == [(p1, ul1), (p2, ul2)]
    delete = getattr(pb, f"Delete{kind}Request")
    ok(getattr(api.stub, f"Delete{kind}")(delete(interface_id=b"vm1", prefix=prefix(p1))))
    assert list_prefixes(api, kind, VM1.name) == [(p2, ul2)]
    ok(getattr(api.stub, f"Delete{kind}")(delete(interface_id=b"vm1", prefix=prefix(p2))))
    assert list_prefixes(api, kind, VM1.name) == []


def test_prefix_is_listed_as_given(api: Api) -> None:
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.4/24")))
    assert [p for p, _ in list_prefixes(api, "Prefix", VM1.name)] == ["1.2.3.4/24"]
    # ours: deleting by any address inside the prefix deletes it whole (dpservice would keep the underlay)
    ok(api.stub.DeletePrefix(pb.DeletePrefixRequest(interface_id=b"vm1", prefix=prefix("1.2.3.5/24"))))
    assert list_prefixes(api, "Prefix", VM1.name) == []


def test_prefix_errors(api: Api) -> None:
    """test_grpc_prefix_errors / lbprefix_errors: unknown interface 205; prefix of another owner 304."""
    for kind in ("Prefix", "LoadBalancerPrefix"):
        plural = "Prefixes" if kind == "Prefix" else "LoadBalancerPrefixes"
        expect_error(api.stub, f"Create{kind}", prefix_req(kind, "invalid_name", "1.2.3.4/24"), E.NO_VM)
        expect_error(
            api.stub,
            f"List{plural}",
            getattr(pb, f"List{plural}Request")(interface_id=b"invalid_name"),
            E.NO_VM,
        )
        delete = getattr(pb, f"Delete{kind}Request")(
            interface_id=b"invalid_name", prefix=prefix("1.2.3.4/24")
        )
        expect_error(api.stub, f"Delete{kind}", delete, E.NO_VM)
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.0/24")))
    other = pb.DeletePrefixRequest(interface_id=b"vm2", prefix=prefix("1.2.3.0/24"))
    expect_error(api.stub, "DeletePrefix", other, E.ROUTE_BAD_PORT)
    # the interface's own address is not an alias prefix
    own = pb.DeletePrefixRequest(interface_id=b"vm1", prefix=prefix(f"{VM1.ip}/32"))
    expect_error(api.stub, "DeletePrefix", own, E.NOT_FOUND)
    expect_error(api.stub, "CreatePrefix", prefix_req("Prefix", VM1.name, "1.2.3.4/33"), E.ROUTE_INSERT)


@pytest.mark.parametrize("pfx", ["1.2.3.0/24", "1234::/64"])
def test_lbprefix_lifecycle(api: Api, pfx: str) -> None:
    """test_grpc_lbprefix / _ipv6: dup 202; del again 201."""
    create = prefix_req("LoadBalancerPrefix", VM1.name, pfx)
    ok(api.stub.CreateLoadBalancerPrefix(create))
    expect_error(api.stub, "CreateLoadBalancerPrefix", create, E.ALREADY_EXISTS)
    delete = pb.DeleteLoadBalancerPrefixRequest(interface_id=b"vm1", prefix=prefix(pfx))
    ok(api.stub.DeleteLoadBalancerPrefix(delete))
    expect_error(api.stub, "DeleteLoadBalancerPrefix", delete, E.NOT_FOUND)
    ok(api.stub.CreateLoadBalancerPrefix(create))
    ok(api.stub.DeleteLoadBalancerPrefix(delete))
    # an LB prefix adds no route: the same prefix can still be an alias prefix
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, pfx)))


# --- VIP ------------------------------------------------------------------------------------------


def test_vip_lifecycle(api: Api) -> None:
    """test_grpc_vip: spec; dup 343; after delete get/del 341; re-add."""
    ul = underlay(ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP))))
    res = ok(api.stub.GetVip(pb.GetVipRequest(interface_id=b"vm1")))
    assert (res.vip_ip, res.underlay_route) == (ip(VIP_IP), ul.encode())
    expect_error(api.stub, "CreateVip", vip_req(VM1.name, VIP_IP), E.SNAT_EXISTS)
    ok(api.stub.DeleteVip(pb.DeleteVipRequest(interface_id=b"vm1")))
    expect_error(api.stub, "GetVip", pb.GetVipRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)
    expect_error(api.stub, "DeleteVip", pb.DeleteVipRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)
    ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))
    ok(api.stub.DeleteVip(pb.DeleteVipRequest(interface_id=b"vm1")))


def test_vip_errors(api: Api) -> None:
    """test_grpc_vip_errors: 205 x3; IPv6 VIP 204; a VIP already used in the VNI 323."""
    expect_error(api.stub, "CreateVip", vip_req("invalid_name", VIP_IP), E.NO_VM)
    expect_error(api.stub, "GetVip", pb.GetVipRequest(interface_id=b"invalid_name"), E.NO_VM)
    expect_error(api.stub, "DeleteVip", pb.DeleteVipRequest(interface_id=b"invalid_name"), E.NO_VM)
    expect_error(api.stub, "CreateVip", vip_req(VM1.name, "1234::1"), E.BAD_IPVER)
    expect_error(api.stub, "CreateVip", vip_req("invalid_name", "1234::1"), E.NO_VM)  # 205 before 204
    ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))
    expect_error(api.stub, "CreateVip", vip_req(VM2.name, VIP_IP), E.DNAT_EXISTS)
    ok(api.stub.CreateVip(vip_req(VM3.name, VIP_IP)))  # another VNI: fine


# --- NAT ------------------------------------------------------------------------------------------


def test_nat_lifecycle(api: Api) -> None:
    """test_grpc_nat: spec; dup 343; after delete 341; re-add."""
    ul = underlay(ok(api.stub.CreateNat(nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX))))
    res = ok(api.stub.GetNat(pb.GetNatRequest(interface_id=b"vm1")))
    assert res == pb.GetNatResponse(
        status=res.status,
        nat_ip=ip(NAT_IP),
        min_port=NAT_LOCAL_MIN,
        max_port=NAT_LOCAL_MAX,
        underlay_route=ul.encode(),
    )
    expect_error(
        api.stub, "CreateNat", nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX), E.SNAT_EXISTS
    )
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm1")))
    expect_error(api.stub, "GetNat", pb.GetNatRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)
    expect_error(api.stub, "DeleteNat", pb.DeleteNatRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)
    ok(api.stub.CreateNat(nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm1")))


def local_nats(api: Api, nat_ip: str) -> list[tuple[str, int, int, int, str]]:
    res = ok(api.stub.ListLocalNats(pb.ListLocalNatsRequest(nat_ip=ip(nat_ip))))
    assert all(not e.underlay_route for e in res.nat_entries)
    return [
        (e.nat_ip.address.decode(), e.min_port, e.max_port, e.vni, e.actual_nat_ip.address.decode())
        for e in res.nat_entries
    ]


def test_nat_list_and_sharing(api: Api) -> None:
    """test_grpc_nat_list / nat_share: two VMs share a NAT IP with disjoint slices."""
    ok(api.stub.CreateNat(nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    expect_error(
        api.stub, "CreateNat", nat_req(VM1.name, NAT_IP, NAT_LOCAL_MAX, NAT_LOCAL_MAX + 1), E.SNAT_EXISTS
    )
    ok(api.stub.CreateNat(nat_req(VM2.name, NAT_IP, NAT_LOCAL_MAX, NAT_LOCAL_MAX + 1)))
    nat1 = (VM1.ip, NAT_LOCAL_MIN, NAT_LOCAL_MAX, VM1.vni, NAT_IP)
    nat2 = (VM2.ip, NAT_LOCAL_MAX, NAT_LOCAL_MAX + 1, VM1.vni, NAT_IP)
    assert local_nats(api, NAT_IP) == [nat2, nat1]  # newest first, the order dpservice's suite expects
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm2")))
    assert local_nats(api, NAT_IP) == [nat1]
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm1")))
    assert local_nats(api, NAT_IP) == []


def test_nat_errors(api: Api) -> None:
    """test_grpc_nat_errors: empty list; 205 x3; IPv6 204 (add, list)."""
    assert local_nats(api, NAT_IP) == []
    expect_error(
        api.stub, "CreateNat", nat_req("invalid_name", NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX), E.NO_VM
    )
    expect_error(api.stub, "GetNat", pb.GetNatRequest(interface_id=b"invalid_name"), E.NO_VM)
    expect_error(api.stub, "DeleteNat", pb.DeleteNatRequest(interface_id=b"invalid_name"), E.NO_VM)
    expect_error(api.stub, "CreateNat", nat_req(VM1.name, "1234::1", 1024, 2048), E.BAD_IPVER)
    expect_error(api.stub, "ListLocalNats", pb.ListLocalNatsRequest(nat_ip=ip("1234::1")), E.BAD_IPVER)
    # ours: a NAT IP cannot be a VIP of the same VNI (dpservice would let the VIP's DNAT take its traffic)
    ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))
    expect_error(api.stub, "CreateNat", nat_req(VM2.name, VIP_IP, 1024, 2048), E.DNAT_EXISTS)


def test_nat_and_vip_with_the_same_ip_leave_nothing_behind(api: Api) -> None:
    """test_grpc_nat_vip_same_ip."""
    ok(api.stub.CreateNat(nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm1")))
    ok(api.stub.CreateVip(vip_req(VM1.name, NAT_IP)))
    ok(api.stub.DeleteVip(pb.DeleteVipRequest(interface_id=b"vm1")))
    expect_error(api.stub, "GetVip", pb.GetVipRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)
    expect_error(api.stub, "GetNat", pb.GetNatRequest(interface_id=b"vm1"), E.SNAT_NO_DATA)


def test_vip_and_nat_coexist_on_one_interface(api: Api) -> None:
    ok(api.stub.CreateVip(vip_req(VM1.name, VIP_IP)))
    ok(api.stub.CreateNat(nat_req(VM1.name, NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.DeleteVip(pb.DeleteVipRequest(interface_id=b"vm1")))
    assert ok(api.stub.GetNat(pb.GetNatRequest(interface_id=b"vm1"))).nat_ip == ip(NAT_IP)
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm1")))


def test_global_list_nats(api: Api) -> None:
    """test_grpc_global_list_nats: 0.0.0.0 = the union."""
    ok(api.stub.CreateNat(nat_req(VM1.name, "1.2.3.4", NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.CreateNat(nat_req(VM2.name, "1.2.3.5", NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    assert sorted(local_nats(api, "0.0.0.0")) == sorted(
        local_nats(api, "1.2.3.4") + local_nats(api, "1.2.3.5")
    )


# --- neighbour NAT ----------------------------------------------------------------------------------


def neigh_nats(api: Api, nat_ip: str = NAT_IP) -> list[tuple[int, int, str, int, str]]:
    res = ok(api.stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=ip(nat_ip))))
    assert all(not e.HasField("nat_ip") for e in res.nat_entries)
    return [
        (e.min_port, e.max_port, e.underlay_route.decode(), e.vni, e.actual_nat_ip.address.decode())
        for e in res.nat_entries
    ]


def test_neighnat_lifecycle_and_list(api: Api) -> None:
    """test_grpc_neighnat / neighnat_list: dup 202; del again 201; insertion order."""
    create = neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MIN, NAT_NEIGH_MAX)
    ok(api.stub.CreateNeighborNat(create))
    expect_error(api.stub, "CreateNeighborNat", create, E.ALREADY_EXISTS)
    ok(api.stub.CreateNeighborNat(neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MAX, NAT_NEIGH_MAX + 1)))
    n1 = (NAT_NEIGH_MIN, NAT_NEIGH_MAX, NEIGH_VNI1_UL, VNI1, NAT_IP)
    n2 = (NAT_NEIGH_MAX, NAT_NEIGH_MAX + 1, NEIGH_VNI1_UL, VNI1, NAT_IP)
    assert neigh_nats(api) == [n1, n2]
    delete = del_neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MIN, NAT_NEIGH_MAX)
    ok(api.stub.DeleteNeighborNat(delete))
    assert neigh_nats(api) == [n2]
    expect_error(api.stub, "DeleteNeighborNat", delete, E.NOT_FOUND)
    ok(api.stub.DeleteNeighborNat(del_neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MAX, NAT_NEIGH_MAX + 1)))
    assert neigh_nats(api) == []


def test_neighnat_errors(api: Api) -> None:
    """test_grpc_neighnat_errors: same range other VNI 202; overlap 202; IPv6 204 (add/del/list)."""
    assert neigh_nats(api) == []
    ok(api.stub.CreateNeighborNat(neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MIN, NAT_NEIGH_MAX)))
    expect_error(
        api.stub,
        "CreateNeighborNat",
        neighnat_req(NAT_IP, VNI2, NAT_NEIGH_MIN, NAT_NEIGH_MAX),
        E.ALREADY_EXISTS,
    )
    overlap = neighnat_req(NAT_IP, VNI2, NAT_NEIGH_MIN + 1, NAT_NEIGH_MAX + 1)
    expect_error(api.stub, "CreateNeighborNat", overlap, E.ALREADY_EXISTS)
    ok(api.stub.DeleteNeighborNat(del_neighnat_req(NAT_IP, VNI1, NAT_NEIGH_MIN, NAT_NEIGH_MAX)))
    expect_error(api.stub, "CreateNeighborNat", neighnat_req("1234::1", VNI1, 500, 520), E.BAD_IPVER)
    expect_error(api.stub, "DeleteNeighborNat", del_neighnat_req("1234::1", VNI1, 500, 520), E.BAD_IPVER)
    expect_error(api.stub, "ListNeighborNats", pb.ListNeighborNatsRequest(nat_ip=ip("1234::1")), E.BAD_IPVER)


def test_neighnats_live_and_die_with_their_vni(api: Api) -> None:
    """test_vni_neighnats / test_vni_dnat_reset."""
    add_interface(api, VM4, vni=999)
    ok(api.stub.CreateNat(nat_req("vm4", NAT_IP, NAT_LOCAL_MIN, NAT_LOCAL_MAX)))
    ok(api.stub.CreateNeighborNat(neighnat_req(NAT_IP, 999, NAT_NEIGH_MIN, NAT_NEIGH_MAX)))
    ok(api.stub.DeleteNat(pb.DeleteNatRequest(interface_id=b"vm4")))
    assert len(neigh_nats(api)) == 1  # survives the local NAT's deletion
    ok(del_interface(api, "vm4"))  # the last user of VNI 999
    assert neigh_nats(api) == []
    expect_error(
        api.stub,
        "DeleteNeighborNat",
        del_neighnat_req(NAT_IP, 999, NAT_NEIGH_MIN, NAT_NEIGH_MAX),
        E.NOT_FOUND,
    )
    add_interface(api, VM4, vni=999)
    ok(api.stub.CreateVip(vip_req("vm4", NAT_IP)))  # the DNAT key went with the VNI


# --- load balancers --------------------------------------------------------------------------------


def test_lb_lifecycle(api: Api) -> None:
    """test_grpc_lb: spec; dup 202; after delete get/del 201; re-add."""
    ul = underlay(ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)]))))
    res = ok(api.stub.GetLoadBalancer(pb.GetLoadBalancerRequest(loadbalancer_id=LB_NAME.encode())))
    assert res == pb.GetLoadBalancerResponse(
        status=res.status,
        loadbalanced_ip=ip(LB_IP),
        vni=VNI1,
        loadbalanced_ports=[pb.LbPort(port=80, protocol=pb.TCP)],
        underlay_route=ul.encode(),
    )
    expect_error(
        api.stub, "CreateLoadBalancer", lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)]), E.ALREADY_EXISTS
    )
    ok(api.stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=LB_NAME.encode())))
    expect_error(
        api.stub, "GetLoadBalancer", pb.GetLoadBalancerRequest(loadbalancer_id=LB_NAME.encode()), E.NOT_FOUND
    )
    expect_error(
        api.stub,
        "DeleteLoadBalancer",
        pb.DeleteLoadBalancerRequest(loadbalancer_id=LB_NAME.encode()),
        E.NOT_FOUND,
    )
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))


def test_lb_same_id_or_same_address_is_taken(api: Api) -> None:
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))
    expect_error(
        api.stub, "CreateLoadBalancer", lb_req("other", VNI1, LB_IP, [(pb.UDP, 53)]), E.ALREADY_EXISTS
    )
    # ours: dpservice would silently re-point the id to the new address
    expect_error(
        api.stub, "CreateLoadBalancer", lb_req(LB_NAME, VNI1, "1.1.1.1", [(pb.TCP, 80)]), E.ALREADY_EXISTS
    )
    ok(api.stub.CreateLoadBalancer(lb_req("other", VNI2, LB_IP, [(pb.UDP, 53)])))  # another VNI


def test_lb_list(api: Api) -> None:
    """test_grpc_lb_list: v4 with tcp+udp/80 and v6 listed; removals."""
    ok(api.stub.CreateLoadBalancer(lb_req("lb1", VNI1, "1.2.3.4", [(pb.TCP, 80), (pb.UDP, 80)])))
    ok(api.stub.CreateLoadBalancer(lb_req("lb2", VNI1, "1234::1", [(pb.TCP, 80)])))

    def listed() -> list[tuple[bytes, int, bytes, list[tuple[int, int]]]]:
        res = ok(api.stub.ListLoadBalancers(pb.ListLoadBalancersRequest()))
        return [
            (lb.id, lb.vni, lb.ip.address, [(p.protocol, p.port) for p in lb.ports])
            for lb in res.loadbalancers
        ]

    lb1 = (b"lb1", VNI1, b"1.2.3.4", [(pb.TCP, 80), (pb.UDP, 80)])
    lb2 = (b"lb2", VNI1, b"1234::1", [(pb.TCP, 80)])
    assert listed() == [lb1, lb2]
    ok(api.stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=b"lb1")))
    assert listed() == [lb2]
    ok(api.stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=b"lb2")))
    assert listed() == []


def test_lb_keeps_its_vni_in_use(api: Api) -> None:
    """test_vni_existence: VNI 300 in use while an LB exists, free after."""
    check = pb.CheckVniInUseRequest(vni=VNI3, type=pb.VNI_IPV4)
    assert not ok(api.stub.CheckVniInUse(check)).in_use
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI3, LB_IP, [(pb.TCP, 80)])))
    assert ok(api.stub.CheckVniInUse(check)).in_use
    assert ok(api.stub.CheckVniInUse(pb.CheckVniInUseRequest(vni=VNI3, type=pb.VNI_IPV6))).in_use
    ok(add_route(api, VNI3, "1.0.0.0/8"))  # an LB's VNI has route tables
    ok(api.stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=LB_NAME.encode())))
    assert not ok(api.stub.CheckVniInUse(check)).in_use


def test_lb_15_ports_fit(api: Api) -> None:
    ports = [(pb.TCP, 1000 + i) for i in range(15)]
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, ports)))
    res = ok(api.stub.GetLoadBalancer(pb.GetLoadBalancerRequest(loadbalancer_id=LB_NAME.encode())))
    assert [(p.protocol, p.port) for p in res.loadbalanced_ports] == ports


def test_lb_targets_lifecycle_and_list(api: Api) -> None:
    """test_grpc_lbtarget / lbtarget_list: dup 202; del again 201; sorted list."""
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))
    ok(api.stub.CreateLoadBalancerTarget(target_req("Create", LB_NAME, "1234::2")))
    ok(api.stub.CreateLoadBalancerTarget(target_req("Create", LB_NAME, "1234::1")))
    expect_error(
        api.stub, "CreateLoadBalancerTarget", target_req("Create", LB_NAME, "1234::1"), E.ALREADY_EXISTS
    )
    assert list_targets(api, LB_NAME) == ["1234::1", "1234::2"]
    ok(api.stub.DeleteLoadBalancerTarget(target_req("Delete", LB_NAME, "1234::1")))
    assert list_targets(api, LB_NAME) == ["1234::2"]
    expect_error(api.stub, "DeleteLoadBalancerTarget", target_req("Delete", LB_NAME, "1234::1"), E.NOT_FOUND)
    ok(api.stub.DeleteLoadBalancerTarget(target_req("Delete", LB_NAME, "1234::2")))
    assert list_targets(api, LB_NAME) == []


def test_lb_target_errors(api: Api) -> None:
    """test_grpc_lbtarget_errors: unknown LB 422 (add/del/list); IPv4 target 204 (before 422)."""
    expect_error(api.stub, "CreateLoadBalancerTarget", target_req("Create", "nonexisting", "::"), E.NO_LB)
    expect_error(api.stub, "DeleteLoadBalancerTarget", target_req("Delete", "nonexisting", "::"), E.NO_LB)
    listing = pb.ListLoadBalancerTargetsRequest(loadbalancer_id=b"nonexisting")
    expect_error(api.stub, "ListLoadBalancerTargets", listing, E.NO_LB)
    expect_error(
        api.stub, "CreateLoadBalancerTarget", target_req("Create", "nonexisting", "1.2.3.4"), E.BAD_IPVER
    )
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))
    expect_error(api.stub, "CreateLoadBalancerTarget", target_req("Create", LB_NAME, "1.2.3.4"), E.BAD_IPVER)
    expect_error(api.stub, "DeleteLoadBalancerTarget", target_req("Delete", LB_NAME, "1.2.3.4"), E.BAD_IPVER)


def test_lb_64_targets_fit_the_65th_is_backip_add(api: Api) -> None:
    ok(api.stub.CreateLoadBalancer(lb_req(LB_NAME, VNI1, LB_IP, [(pb.TCP, 80)])))
    for i in range(64):
        ok(api.stub.CreateLoadBalancerTarget(target_req("Create", LB_NAME, f"2001:db8::{i + 1:x}")))
    expect_error(
        api.stub, "CreateLoadBalancerTarget", target_req("Create", LB_NAME, "2001:db8::ffff"), E.BACKIP_ADD
    )
    assert len(list_targets(api, LB_NAME)) == 64


def test_global_list_lb_targets(api: Api) -> None:
    """test_grpc_global_list_lbtargets: empty id = the union."""
    for lb, vip, targets in (
        ("lb1", "1.2.3.4", ("1234::1", "1234::2")),
        ("lb2", "1.2.3.5", ("1235::1", "1235::2")),
    ):
        ok(api.stub.CreateLoadBalancer(lb_req(lb, VNI1, vip, [(pb.TCP, 80)])))
        for t in targets:
            ok(api.stub.CreateLoadBalancerTarget(target_req("Create", lb, t)))
    assert sorted(list_targets(api, "")) == sorted(list_targets(api, "lb1") + list_targets(api, "lb2"))


def test_global_list_prefixes(api: Api) -> None:
    """test_grpc_global_list_prefixes / _lbprefixes: the per-interface lists are disjoint and complete."""
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM1.name, "1.2.3.4/32")))
    ok(api.stub.CreatePrefix(prefix_req("Prefix", VM2.name, "1.2.3.5/32")))
    assert [p for p, _ in list_prefixes(api, "Prefix", VM1.name)] == ["1.2.3.4/32"]
    assert [p for p, _ in list_prefixes(api, "Prefix", VM2.name)] == ["1.2.3.5/32"]


# --- firewall ----------------------------------------------------------------------------------------


def test_firewall_rule_lifecycle(api: Api) -> None:
    """test_grpc_fwallrule: exact spec; dup 202; after delete get 201, del 201."""
    created = ok(api.stub.CreateFirewallRule(fw_req(VM1.name, "fw0-vm1")))
    assert created.rule_id == b"fw0-vm1"  # ours: the real id (dpservice returns 64 bytes of junk)
    rule = ok(api.stub.GetFirewallRule(fw_id(VM1.name, "fw0-vm1"))).rule
    assert rule == fw_req(VM1.name, "fw0-vm1").rule  # 1.2.3.4/16 echoed as given
    expect_error(api.stub, "CreateFirewallRule", fw_req(VM1.name, "fw0-vm1"), E.ALREADY_EXISTS)
    ok(api.stub.DeleteFirewallRule(fw_id(VM1.name, "fw0-vm1", "Delete")))
    expect_error(api.stub, "GetFirewallRule", fw_id(VM1.name, "fw0-vm1"), E.NOT_FOUND)
    expect_error(api.stub, "DeleteFirewallRule", fw_id(VM1.name, "fw0-vm1", "Delete"), E.NOT_FOUND)
    ok(api.stub.CreateFirewallRule(fw_req(VM1.name, "fw0-vm1")))


def test_firewall_rule_list_in_insertion_order(api: Api) -> None:
    """test_grpc_fwallrule_list."""
    r0 = fw_req(VM1.name, "fw0-vm1").rule
    udp = pb.ProtocolFilter(
        udp=pb.UdpFilter(src_port_lower=-1, src_port_upper=-1, dst_port_lower=53, dst_port_upper=53)
    )
    r1 = fw_req(VM1.name, "fw1-vm1", src="4.5.6.7/16", direction=pb.EGRESS, protocol_filter=udp).rule
    ok(api.stub.CreateFirewallRule(pb.CreateFirewallRuleRequest(interface_id=b"vm1", rule=r0)))
    ok(api.stub.CreateFirewallRule(pb.CreateFirewallRuleRequest(interface_id=b"vm1", rule=r1)))

    def listed() -> list[Any]:
        return list(ok(api.stub.ListFirewallRules(pb.ListFirewallRulesRequest(interface_id=b"vm1"))).rules)

    assert listed() == [r0, r1]
    ok(api.stub.DeleteFirewallRule(fw_id(VM1.name, "fw0-vm1", "Delete")))
    assert listed() == [r1]
    ok(api.stub.DeleteFirewallRule(fw_id(VM1.name, "fw1-vm1", "Delete")))
    assert listed() == []


def test_firewall_rule_echoes_icmp_any_protocol_and_ipv6_lengths(api: Api) -> None:
    icmp = pb.ProtocolFilter(icmp=pb.IcmpFilter(icmp_type=8, icmp_code=-1))
    rules = [
        fw_req(VM1.name, "icmp", protocol_filter=icmp).rule,
        fw_req(VM1.name, "any", protocol_filter=pb.ProtocolFilter()).rule,
        # ours: the real /64 (dpservice reports /32 for any IPv6 prefix longer than 32)
        fw_req(VM1.name, "v6", src="2001:db8::1/64", dst="::/0", priority=7).rule,
    ]
    for rule in rules:
        ok(api.stub.CreateFirewallRule(pb.CreateFirewallRuleRequest(interface_id=b"vm1", rule=rule)))
        assert ok(api.stub.GetFirewallRule(fw_id(VM1.name, rule.id.decode()))).rule == rule


def test_firewall_rule_errors(api: Api) -> None:
    """test_grpc_fwallrule_errors: 205 (add/get/list/del)."""
    expect_error(api.stub, "CreateFirewallRule", fw_req("invalid", "fw0-vm1"), E.NO_VM)
    expect_error(api.stub, "GetFirewallRule", fw_id("invalid", "fw0-vm1"), E.NO_VM)
    expect_error(api.stub, "DeleteFirewallRule", fw_id("invalid", "fw0-vm1", "Delete"), E.NO_VM)
    expect_error(api.stub, "ListFirewallRules", pb.ListFirewallRulesRequest(interface_id=b"invalid"), E.NO_VM)


def test_firewall_drop_rules_are_accepted(api: Api) -> None:
    """ours: DROP rules are stored (dpservice answers 441; ``--fw-drop-compat`` restores that)."""
    ok(api.stub.CreateFirewallRule(fw_req(VM1.name, "deny", action=pb.DROP)))
    assert ok(api.stub.GetFirewallRule(fw_id(VM1.name, "deny"))).rule.action == pb.DROP


# --- VNI -----------------------------------------------------------------------------------------------


def test_vni_in_use(api: Api) -> None:
    """test_grpc_vni: VNI 100 in use, 999 not; VNI_BOTH is the wrong type."""
    assert ok(api.stub.CheckVniInUse(pb.CheckVniInUseRequest(vni=VNI1, type=pb.VNI_IPV4))).in_use
    assert ok(api.stub.CheckVniInUse(pb.CheckVniInUseRequest(vni=VNI1, type=pb.VNI_IPV6))).in_use
    assert not ok(api.stub.CheckVniInUse(pb.CheckVniInUseRequest(vni=999, type=pb.VNI_IPV4))).in_use
    expect_error(api.stub, "CheckVniInUse", pb.CheckVniInUseRequest(vni=VNI1, type=pb.VNI_BOTH), E.WRONG_TYPE)


def test_vni_reset(api: Api) -> None:
    """test_grpc_vni_reset / test_vni_reset: routes copied into VNI 999 go with a reset; unknown VNI ok."""
    ok(api.stub.ResetVni(pb.ResetVniRequest(vni=999, type=pb.VNI_BOTH)))
    add_interface(api, VM4, vni=999)
    for pfx, nh_vni, nh in list_routes(api, VNI1):
        ok(add_route(api, 999, pfx, nh, nh_vni))
    assert len(list_routes(api, 999)) == len(list_routes(api, VNI1))
    ok(api.stub.CreatePrefix(prefix_req("Prefix", "vm4", "1.2.3.0/24")))
    ok(api.stub.ResetVni(pb.ResetVniRequest(vni=999, type=pb.VNI_BOTH)))
    assert list_routes(api, 999) == []
    assert len(list_routes(api, VNI1)) == 4  # other VNIs untouched
    # the interface's address and (ours) its alias prefix are still routed
    expect_error(api.stub, "CreateRoute", route_req(999, f"{VM4.ip}/32", NEIGH_VNI1_UL), E.ROUTE_EXISTS)
    expect_error(api.stub, "CreateRoute", route_req(999, "1.2.3.0/24", NEIGH_VNI1_UL), E.ROUTE_EXISTS)
    for wrong in (pb.VNI_IPV4, pb.VNI_IPV6):
        expect_error(api.stub, "ResetVni", pb.ResetVniRequest(vni=999, type=wrong), E.WRONG_TYPE)


# --- capture (hardware offload only) ------------------------------------------------------------------


def test_capture_answers_as_dpservice_without_offload(api: Api) -> None:
    config = pb.CaptureConfig(
        sink_node_ip=ip("fc00::1"),
        udp_src_port=1,
        udp_dst_port=2,
        interfaces=[pb.CapturedInterface(interface_type=pb.SINGLE_VF, vf_name=b"vm1")],
    )
    expect_error(api.stub, "CaptureStart", pb.CaptureStartRequest(capture_config=config), E.NOT_ACTIVE)
    expect_error(api.stub, "CaptureStop", pb.CaptureStopRequest(), E.NOT_ACTIVE)
    status = ok(api.stub.CaptureStatus(pb.CaptureStatusRequest()))
    assert not status.is_active and not status.HasField("capture_config")
