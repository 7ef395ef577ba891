"""Malformed requests: gRPC INVALID_ARGUMENT with dpservice's exact text, and nothing changes.

The texts and the order of the checks are dpservice's (``src/grpc/dp_async_grpc.cpp``,
``FillRequest``): when a request has several faults, the first check in that order wins. Also:
every RPC but Initialize is ABORTED "not initialized" until Initialize was called once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from testkit import agent_fixtures
from testkit.agent_api import (
    VM1,
    VM4,
    InProcessAgent,
    Topology,
    channel_to,
    create_interface_req,
    dpservice_agent,
    ip,
    prefix,
)
from testkit.agent_fixtures import Api, expect_invalid

api = agent_fixtures.api
inprocess_agent = agent_fixtures.inprocess_agent
agent_process = agent_fixtures.agent_process

LONG = b"x" * 64  # one byte more than dpservice's 64-byte buffers hold (63 + NUL)
MAX = b"x" * 63
PREFIX = pb.Prefix(ip=ip("1.2.3.0"), length=24)


def iface(**kw: Any) -> Any:
    return create_interface_req(VM4, **kw)


def tcp(**kw: int) -> Any:
    ports = {"src_port_lower": -1, "src_port_upper": -1, "dst_port_lower": -1, "dst_port_upper": -1}
    ports.update(kw)
    return pb.ProtocolFilter(tcp=pb.TcpFilter(**ports))


def udp(**kw: int) -> Any:
    ports = {"src_port_lower": -1, "src_port_upper": -1, "dst_port_lower": -1, "dst_port_upper": -1}
    ports.update(kw)
    return pb.ProtocolFilter(udp=pb.UdpFilter(**ports))


def fw(rule_id: bytes = b"r", src: Any = None, dst: Any = None, **kw: Any) -> Any:
    rule = pb.FirewallRule(
        id=rule_id,
        direction=kw.pop("direction", pb.INGRESS),
        action=kw.pop("action", pb.ACCEPT),
        priority=kw.pop("priority", 1000),
        source_prefix=src or pb.Prefix(ip=ip("0.0.0.0"), length=0),
        destination_prefix=dst or pb.Prefix(ip=ip("0.0.0.0"), length=0),
        protocol_filter=kw.pop("protocol_filter", pb.ProtocolFilter()),
    )
    return pb.CreateFirewallRuleRequest(interface_id=kw.pop("interface_id", b"vm1"), rule=rule)


def lb(**kw: Any) -> Any:
    fields: dict[str, Any] = {
        "loadbalancer_id": b"lb",
        "vni": 100,
        "loadbalanced_ip": ip("1.1.1.1"),
        "loadbalanced_ports": [pb.LbPort(port=80, protocol=pb.TCP)],
    }
    fields.update(kw)
    return pb.CreateLoadBalancerRequest(**fields)


def nat(**kw: Any) -> Any:
    fields: dict[str, Any] = {
        "interface_id": b"vm1",
        "nat_ip": ip("5.5.5.5"),
        "min_port": 100,
        "max_port": 200,
    }
    fields.update(kw)
    return pb.CreateNatRequest(**fields)


def neigh(method: str = "Create", **kw: Any) -> Any:
    fields: dict[str, Any] = {"nat_ip": ip("5.5.5.5"), "vni": 100, "min_port": 100, "max_port": 200}
    if method == "Create":
        fields["underlay_route"] = b"fc00:2::1"
    fields.update(kw)
    return getattr(pb, f"{method}NeighborNatRequest")(**fields)


def capture(**kw: Any) -> Any:
    fields: dict[str, Any] = {"sink_node_ip": ip("fc00::1"), "udp_src_port": 1, "udp_dst_port": 2}
    fields.update(kw)
    return pb.CaptureStartRequest(capture_config=pb.CaptureConfig(**fields))


CASES: list[tuple[str, str, Any, str]] = [
    # (id, method, request, text)
    (
        "version-proto",
        "GetVersion",
        pb.GetVersionRequest(client_name="n", client_version="v"),
        "Invalid client_protocol",
    ),
    (
        "version-name",
        "GetVersion",
        pb.GetVersionRequest(client_protocol="p", client_version="v"),
        "Invalid client_name",
    ),
    (
        "version-long",
        "GetVersion",
        pb.GetVersionRequest(client_protocol="p", client_name="n", client_version="v" * 64),
        "Invalid client_version",
    ),
    ("iface-chars", "CreateInterface", iface(interface_id=b"vm 4"), "Invalid interface_id"),
    (
        "iface-ipv4",
        "CreateInterface",
        iface(ipv4_config=pb.IpConfig(primary_address=b"1.2.3")),
        "Invalid ipv4_config.primary_address",
    ),
    ("iface-ipv4-missing", "CreateInterface", iface(ipv4_config=None), "Invalid ipv4_config.primary_address"),
    (
        "iface-ipv6",
        "CreateInterface",
        iface(ipv6_config=pb.IpConfig(primary_address=b"1.2.3.4")),
        "Invalid ipv6_config.primary_address",
    ),
    (
        "iface-zero",
        "CreateInterface",
        iface(
            ipv4_config=pb.IpConfig(primary_address=b"0.0.0.0"),
            ipv6_config=pb.IpConfig(primary_address=b"::"),
        ),
        "Invalid ipv4_config.primary_address and ipv6_config.primary_address combination",
    ),
    (
        "iface-pxe-server",
        "CreateInterface",
        iface(pxe_config=pb.PxeConfig(next_server="1.2.3.4", boot_filename="f")),
        "Invalid pxe_config.next_server",
    ),  # IPv6 interface: the server must be IPv6
    (
        "iface-pxe-file",
        "CreateInterface",
        iface(pxe_config=pb.PxeConfig(next_server="::1", boot_filename="f" * 32)),
        "Invalid pxe_config.boot_filename",
    ),
    (
        "iface-pxe-file-empty",
        "CreateInterface",
        iface(pxe_config=pb.PxeConfig(next_server="::1")),
        "Invalid pxe_config.boot_filename",
    ),
    ("iface-device", "CreateInterface", iface(device_name=""), "Invalid device_name"),
    ("iface-device-long", "CreateInterface", iface(device_name="d" * 64), "Invalid device_name"),
    ("iface-id-empty", "CreateInterface", iface(interface_id=b""), "Invalid interface_id"),
    ("iface-id-long", "CreateInterface", iface(interface_id=LONG), "Invalid interface_id"),
    ("iface-hostname", "CreateInterface", iface(hostname="h" * 64), "Invalid hostname"),
    (
        "iface-underlay-bad",
        "CreateInterface",
        iface(preferred_underlay_route=b"nope"),
        "Invalid preferred_underlay_route",
    ),
    (
        "iface-underlay-other-64",
        "CreateInterface",
        iface(preferred_underlay_route=b"fc00:2::8000:0:1"),
        "Invalid preferred_underlay_route",
    ),
    (
        "iface-underlay-not-external",
        "CreateInterface",
        iface(preferred_underlay_route=b"fc00:1::d000:1:0:1"),
        "Invalid preferred_underlay_route",
    ),
    ("iface-order", "CreateInterface", iface(interface_id=b"", device_name=""), "Invalid device_name"),
    ("get-iface", "GetInterface", pb.GetInterfaceRequest(interface_id=LONG), "Invalid interface_id"),
    ("del-iface", "DeleteInterface", pb.DeleteInterfaceRequest(), "Invalid interface_id"),
    ("prefix-iface", "CreatePrefix", pb.CreatePrefixRequest(prefix=PREFIX), "Invalid interface_id"),
    (
        "prefix-ip",
        "CreatePrefix",
        pb.CreatePrefixRequest(interface_id=b"vm1", prefix=pb.Prefix(ip=ip("::1.2"), length=8)),
        "Invalid prefix.ip",
    ),
    (
        "prefix-ipver",
        "CreatePrefix",
        pb.CreatePrefixRequest(
            interface_id=b"vm1", prefix=pb.Prefix(ip=pb.IpAddress(ipver=pb.IPV4, address=b"1::"), length=8)
        ),
        "Invalid prefix.ip",
    ),
    (
        "prefix-length",
        "CreatePrefix",
        pb.CreatePrefixRequest(interface_id=b"vm1", prefix=pb.Prefix(ip=ip("1.2.3.0"), length=256)),
        "Invalid prefix.length",
    ),
    (
        "prefix-underlay",
        "CreatePrefix",
        pb.CreatePrefixRequest(interface_id=b"vm1", prefix=PREFIX, preferred_underlay_route=b"::1"),
        "Invalid preferred_underlay_route",
    ),
    ("del-prefix", "DeletePrefix", pb.DeletePrefixRequest(interface_id=b"vm1"), "Invalid prefix.ip"),
    ("list-prefixes", "ListPrefixes", pb.ListPrefixesRequest(), "Invalid interface_id"),
    (
        "lbprefix-length-family",
        "CreateLoadBalancerPrefix",
        pb.CreateLoadBalancerPrefixRequest(
            interface_id=b"vm1", prefix=pb.Prefix(ip=ip("1.2.3.0"), length=40)
        ),
        "Invalid prefix.length",
    ),  # ours
    (
        "del-lbprefix",
        "DeleteLoadBalancerPrefix",
        pb.DeleteLoadBalancerPrefixRequest(interface_id=LONG, prefix=PREFIX),
        "Invalid interface_id",
    ),
    (
        "list-lbprefixes",
        "ListLoadBalancerPrefixes",
        pb.ListLoadBalancerPrefixesRequest(),
        "Invalid interface_id",
    ),
    (
        "route-length",
        "CreateRoute",
        pb.CreateRouteRequest(vni=100, route=pb.Route(prefix=pb.Prefix(length=256))),
        "Invalid route.prefix.length",
    ),
    (
        "route-ip",
        "CreateRoute",
        pb.CreateRouteRequest(vni=100, route=pb.Route(prefix=pb.Prefix(ip=ip("1.2.3"), length=8))),
        "Invalid route.prefix.ip",
    ),
    (
        "route-nexthop",
        "CreateRoute",
        pb.CreateRouteRequest(vni=100, route=pb.Route(prefix=PREFIX)),
        "Invalid route.nexthop_address",
    ),
    (
        "del-route-length",
        "DeleteRoute",
        pb.DeleteRouteRequest(vni=100, route=pb.Route(prefix=pb.Prefix(length=300))),
        "Invalid route.prefix.length",
    ),
    ("del-route-ip", "DeleteRoute", pb.DeleteRouteRequest(vni=100), "Invalid route.prefix.ip"),
    ("vip-iface", "CreateVip", pb.CreateVipRequest(vip_ip=ip("1.1.1.1")), "Invalid interface_id"),
    ("vip-ip", "CreateVip", pb.CreateVipRequest(interface_id=b"vm1"), "Invalid vip_ip"),
    (
        "vip-underlay",
        "CreateVip",
        pb.CreateVipRequest(interface_id=b"vm1", vip_ip=ip("1.1.1.1"), preferred_underlay_route=b"x"),
        "Invalid preferred_underlay_route",
    ),
    ("get-vip", "GetVip", pb.GetVipRequest(), "Invalid interface_id"),
    ("del-vip", "DeleteVip", pb.DeleteVipRequest(interface_id=LONG), "Invalid interface_id"),
    ("nat-iface", "CreateNat", nat(interface_id=b""), "Invalid interface_id"),
    ("nat-ip", "CreateNat", nat(nat_ip=ip("5.5.5")), "Invalid nat_ip"),
    ("nat-min", "CreateNat", nat(min_port=65536, max_port=65537), "Invalid min_port"),
    ("nat-max", "CreateNat", nat(max_port=65536), "Invalid max_port"),
    ("nat-range", "CreateNat", nat(min_port=200, max_port=200), "Invalid port range"),
    (
        "nat-underlay",
        "CreateNat",
        nat(preferred_underlay_route=b"1.2.3.4"),
        "Invalid preferred_underlay_route",
    ),
    ("get-nat", "GetNat", pb.GetNatRequest(), "Invalid interface_id"),
    ("del-nat", "DeleteNat", pb.DeleteNatRequest(), "Invalid interface_id"),
    ("list-local-nats", "ListLocalNats", pb.ListLocalNatsRequest(), "Invalid nat_ip"),
    ("neigh-ip", "CreateNeighborNat", neigh(nat_ip=ip("x")), "Invalid nat_ip"),
    ("neigh-range", "CreateNeighborNat", neigh(min_port=300), "Invalid port range"),
    ("neigh-underlay", "CreateNeighborNat", neigh(underlay_route=b"1.2.3.4"), "Invalid underlay_route"),
    ("del-neigh-max", "DeleteNeighborNat", neigh("Delete", max_port=70000), "Invalid max_port"),
    (
        "list-neigh",
        "ListNeighborNats",
        pb.ListNeighborNatsRequest(nat_ip=pb.IpAddress(ipver=pb.IPV6, address=b"1.2.3.4")),
        "Invalid nat_ip",
    ),
    ("lb-id", "CreateLoadBalancer", lb(loadbalancer_id=LONG), "Invalid loadbalancer_id"),
    ("lb-vni", "CreateLoadBalancer", lb(vni=0x1000000), "VNI exceeds 24-bit range"),
    ("lb-ip", "CreateLoadBalancer", lb(loadbalanced_ip=ip("1.1.1")), "Invalid loadbalanced_ip"),
    (
        "lb-16-ports",
        "CreateLoadBalancer",
        lb(loadbalanced_ports=[pb.LbPort(port=p, protocol=pb.TCP) for p in range(1, 17)]),
        "Too many loadbalanced_ports",
    ),
    (
        "lb-underlay",
        "CreateLoadBalancer",
        lb(preferred_underlay_route=b"::2"),
        "Invalid preferred_underlay_route",
    ),
    (
        "lb-port",
        "CreateLoadBalancer",
        lb(loadbalanced_ports=[pb.LbPort(port=65536, protocol=pb.UDP)]),
        "Invalid loadbalanced_ports.port",
    ),
    (
        "lb-port-0",
        "CreateLoadBalancer",
        lb(loadbalanced_ports=[pb.LbPort(port=0, protocol=pb.UDP)]),
        "Invalid loadbalanced_ports.port",
    ),  # ours
    (
        "lb-protocol",
        "CreateLoadBalancer",
        lb(loadbalanced_ports=[pb.LbPort(port=22, protocol=pb.ICMP)]),
        "Invalid loadbalanced_ports.protocol",
    ),
    (
        "lb-duplicate",
        "CreateLoadBalancer",
        lb(loadbalanced_ports=[pb.LbPort(port=80, protocol=pb.TCP)] * 2),
        "Duplicate loadbalanced_ports entry",
    ),
    ("get-lb", "GetLoadBalancer", pb.GetLoadBalancerRequest(), "Invalid loadbalancer_id"),
    (
        "del-lb",
        "DeleteLoadBalancer",
        pb.DeleteLoadBalancerRequest(loadbalancer_id=LONG),
        "Invalid loadbalancer_id",
    ),
    (
        "lbtarget-id",
        "CreateLoadBalancerTarget",
        pb.CreateLoadBalancerTargetRequest(target_ip=ip("::1")),
        "Invalid loadbalancer_id",
    ),
    (
        "lbtarget-ip",
        "CreateLoadBalancerTarget",
        pb.CreateLoadBalancerTargetRequest(loadbalancer_id=b"lb"),
        "Invalid target_ip",
    ),
    (
        "del-lbtarget-ip",
        "DeleteLoadBalancerTarget",
        pb.DeleteLoadBalancerTargetRequest(
            loadbalancer_id=b"lb", target_ip=pb.IpAddress(ipver=pb.IPV6, address=b"::1::")
        ),
        "Invalid target_ip",
    ),
    (
        "list-lbtargets",
        "ListLoadBalancerTargets",
        pb.ListLoadBalancerTargetsRequest(loadbalancer_id=LONG),
        "Invalid loadbalancer_id",
    ),
    ("fw-iface", "CreateFirewallRule", fw(interface_id=b""), "Invalid interface_id"),
    ("fw-rule-id", "CreateFirewallRule", fw(rule_id=b""), "Invalid rule id"),
    ("fw-rule-id-long", "CreateFirewallRule", fw(rule_id=LONG), "Invalid rule id"),
    (
        "fw-src-ipver",
        "CreateFirewallRule",
        fw(src=pb.Prefix(ip=pb.IpAddress(ipver=7, address=b"1.2.3.4"))),
        "Invalid source_prefix.ip.ipver",
    ),
    ("fw-src-ip", "CreateFirewallRule", fw(src=pb.Prefix(ip=ip("1.2.3"))), "Invalid source_prefix.ip"),
    (
        "fw-src-len",
        "CreateFirewallRule",
        fw(src=pb.Prefix(ip=ip("1.2.3.4"), length=33)),
        "Invalid source_prefix.length",
    ),
    (
        "fw-src-len6",
        "CreateFirewallRule",
        fw(src=pb.Prefix(ip=ip("::"), length=129)),
        "Invalid ip6 source_prefix.length",
    ),
    (
        "fw-dst-ipver",
        "CreateFirewallRule",
        fw(dst=pb.Prefix(ip=pb.IpAddress(ipver=2, address=b"::"))),
        "Invalid destination_prefix.ip.ipver",
    ),
    ("fw-dst-ip", "CreateFirewallRule", fw(dst=pb.Prefix(ip=ip("::x"))), "Invalid destination_prefix.ip"),
    (
        "fw-dst-len",
        "CreateFirewallRule",
        fw(dst=pb.Prefix(ip=ip("1.2.3.4"), length=64)),
        "Invalid destination_prefix.length",
    ),
    (
        "fw-dst-len6",
        "CreateFirewallRule",
        fw(dst=pb.Prefix(ip=ip("::"), length=200)),
        "Invalid ip6 destination_prefix.length",
    ),
    ("fw-direction", "CreateFirewallRule", fw(direction=5), "Invalid direction"),
    ("fw-action", "CreateFirewallRule", fw(action=9), "Invalid action"),
    ("fw-priority", "CreateFirewallRule", fw(priority=65536), "Invalid priority"),
    (
        "fw-tcp-src-lower",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(src_port_lower=65536)),
        "Invalid tcp.src_port_lower",
    ),
    (
        "fw-tcp-dst-lower",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(dst_port_lower=-2)),
        "Invalid tcp.dst_port_lower",
    ),
    (
        "fw-tcp-src-upper",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(src_port_upper=70000)),
        "Invalid tcp.src_port_upper",
    ),
    (
        "fw-tcp-dst-upper",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(dst_port_upper=-5)),
        "Invalid tcp.dst_port_upper",
    ),
    (
        "fw-tcp-src-range",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(src_port_lower=80, src_port_upper=79)),
        "Invalid tcp.src_port range",
    ),
    (
        "fw-tcp-dst-range",
        "CreateFirewallRule",
        fw(protocol_filter=tcp(dst_port_lower=80, dst_port_upper=0)),
        "Invalid tcp.dst_port range",
    ),
    (
        "fw-udp-src-lower",
        "CreateFirewallRule",
        fw(protocol_filter=udp(src_port_lower=65536)),
        "Invalid udp.src_port_lower",
    ),
    (
        "fw-udp-dst-range",
        "CreateFirewallRule",
        fw(protocol_filter=udp(dst_port_lower=9, dst_port_upper=8)),
        "Invalid udp.dst_port range",
    ),
    (
        "fw-icmp-type",
        "CreateFirewallRule",
        fw(protocol_filter=pb.ProtocolFilter(icmp=pb.IcmpFilter(icmp_type=256))),
        "Invalid icmp.icmp_type",
    ),
    (
        "fw-icmp-code",
        "CreateFirewallRule",
        fw(protocol_filter=pb.ProtocolFilter(icmp=pb.IcmpFilter(icmp_type=-1, icmp_code=-2))),
        "Invalid icmp.icmp_code",
    ),
    ("get-fw-iface", "GetFirewallRule", pb.GetFirewallRuleRequest(rule_id=b"r"), "Invalid interface_id"),
    ("get-fw-rule", "GetFirewallRule", pb.GetFirewallRuleRequest(interface_id=b"vm1"), "Invalid rule_id"),
    (
        "del-fw-rule",
        "DeleteFirewallRule",
        pb.DeleteFirewallRuleRequest(interface_id=b"vm1", rule_id=LONG),
        "Invalid rule_id",
    ),
    ("list-fw", "ListFirewallRules", pb.ListFirewallRulesRequest(interface_id=LONG), "Invalid interface_id"),
    ("vni-type", "CheckVniInUse", pb.CheckVniInUseRequest(vni=100, type=3), "Invalid type"),
    ("reset-vni-type", "ResetVni", pb.ResetVniRequest(vni=100, type=9), "Invalid type"),
    ("capture-src-port", "CaptureStart", capture(udp_src_port=65536), "Invalid udp_src_port"),
    ("capture-dst-port", "CaptureStart", capture(udp_dst_port=65536), "Invalid udp_dst_port"),
    ("capture-sink", "CaptureStart", capture(sink_node_ip=ip("1.2.3.4")), "Invalid sink_node_ip"),
    (
        "capture-17",
        "CaptureStart",
        capture(interfaces=[pb.CapturedInterface(interface_type=pb.SINGLE_PF, pf_index=0)] * 17),
        "Too many interfaces to be captured",
    ),
    (
        "capture-type",
        "CaptureStart",
        capture(interfaces=[pb.CapturedInterface(interface_type=5)]),
        "Invalid interfaces.interface_type",
    ),
    (
        "capture-vf",
        "CaptureStart",
        capture(interfaces=[pb.CapturedInterface(interface_type=pb.SINGLE_VF)]),
        "Invalid interface_id",
    ),
    (
        "capture-pf",
        "CaptureStart",
        capture(interfaces=[pb.CapturedInterface(interface_type=pb.SINGLE_PF, pf_index=256)]),
        "Invalid pf_index",
    ),
]


@pytest.mark.parametrize(("method", "request_", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_argument(api: Api, method: str, request_: Any, text: str) -> None:
    expect_invalid(api.stub, method, request_, text)


def test_limits_that_still_fit_are_accepted(api: Api) -> None:
    """63-character ids and hostnames, 31-character PXE file names, 15 LB ports."""
    req = create_interface_req(
        VM4,
        interface_id=MAX,
        hostname="h" * 63,
        pxe_config=pb.PxeConfig(next_server="2001:db8::1", boot_filename="f" * 31),
    )
    assert api.stub.CreateInterface(req).status.code == 0
    ports = [pb.LbPort(port=p, protocol=pb.UDP) for p in range(1, 16)]
    assert api.stub.CreateLoadBalancer(lb(loadbalancer_id=MAX, loadbalanced_ports=ports)).status.code == 0
    assert api.stub.CreateFirewallRule(fw(rule_id=MAX)).status.code == 0
    ipv4_pxe = create_interface_req(
        VM4,
        interface_id=b"v4pxe",
        device_name="net_tap0",
        ipv6_config=pb.IpConfig(primary_address=b"::"),
        pxe_config=pb.PxeConfig(next_server="10.0.0.1", boot_filename="f"),
    )
    assert api.stub.CreateInterface(ipv4_pxe).status.code == 202  # IPv4 PXE server accepted; net_tap0 is a PF


# --- before Initialize -------------------------------------------------------------------------------

ALL_RPCS = [m.name for m in pb.DESCRIPTOR.services_by_name["DPDKironcore"].methods]


def _empty_request(method: str) -> Any:
    service = pb.DESCRIPTOR.services_by_name["DPDKironcore"]
    return getattr(pb, service.methods_by_name[method].input_type.name)()


@pytest.fixture(params=["inprocess", pytest.param("process", marks=pytest.mark.privileged)])
def fresh(request: pytest.FixtureRequest) -> Iterator[grpc.Channel]:
    """A channel to an agent that was never initialized."""
    topology = Topology()
    agent: Any = (
        InProcessAgent(topology.config()) if request.param == "inprocess" else dpservice_agent(topology)
    )
    with agent, channel_to(agent.address) as channel:
        yield channel


def test_every_rpc_but_initialize_is_aborted_before_initialize(fresh: grpc.Channel) -> None:
    stub = pbg.DPDKironcoreStub(fresh)
    assert len(ALL_RPCS) == 42
    for method in ALL_RPCS:
        if method == "Initialize":
            continue
        # the check comes first: even a malformed request is "not initialized"
        with pytest.raises(grpc.RpcError) as info:
            getattr(stub, method)(_empty_request(method))
        error: Any = info.value
        assert (error.code(), error.details()) == (grpc.StatusCode.ABORTED, "not initialized"), method
    assert stub.Initialize(pb.InitializeRequest()).status.code == 0
    assert stub.CheckInitialized(pb.CheckInitializedRequest()).status.code == 0
    assert stub.CreateInterface(create_interface_req(VM1)).status.code == 0


def test_health_does_not_wait_for_initialize(fresh: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(fresh)
    assert stub.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING


def test_ids_are_opaque_bytes_up_to_63(api: Api) -> None:
    """Only CreateInterface restricts characters; other ids are any 1..63 bytes."""
    assert api.stub.CreateLoadBalancer(lb(loadbalancer_id="lb ü".encode())).status.code == 0
    listed = api.stub.ListLoadBalancers(pb.ListLoadBalancersRequest()).loadbalancers
    assert [x.id for x in listed] == ["lb ü".encode()]
    get = api.stub.GetLoadBalancer(pb.GetLoadBalancerRequest(loadbalancer_id="lb ü".encode()))
    assert get.status.code == 0
    assert (
        api.stub.CreatePrefix(
            pb.CreatePrefixRequest(interface_id=b"vm1", prefix=prefix("9.9.9.0/24"))
        ).status.code
        == 0
    )
