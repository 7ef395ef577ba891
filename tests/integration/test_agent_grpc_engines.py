"""Both gRPC server engines (the core loop and ``grpc.server``) behave the same on the wire.

The bulk of the API tests run on the default engine; these cases pin what differs between the
two implementations: gRPC status codes and texts, in-band errors, health Check/Watch including
NOT_SERVING on shutdown, unknown methods, undecodable requests, many calls in flight, big replies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.api import core_loop
from testkit.agent_api import VM1, InProcessAgent, Topology, channel_to, create_interface_req, route_req

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(params=["core", "grpc"])
def agent(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessAgent]:
    monkeypatch.setenv("KUBEVPC_GRPC_ENGINE", request.param)
    with InProcessAgent(Topology().config()) as a:
        assert a.server.engine == request.param
        yield a


def test_core_engine_is_available_in_this_grpcio() -> None:
    assert core_loop.available()


def test_status_codes_texts_and_in_band_errors(agent: InProcessAgent) -> None:
    with channel_to(agent.address) as channel:
        stub = pbg.DPDKironcoreStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListInterfaces(pb.ListInterfacesRequest())
        err: Any = info.value
        assert (err.code(), err.details()) == (grpc.StatusCode.ABORTED, "not initialized")
        assert stub.Initialize(pb.InitializeRequest()).status.code == 0
        with pytest.raises(grpc.RpcError) as info:
            stub.CreateInterface(create_interface_req(VM1, interface_id=b""))
        err = info.value
        assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Invalid interface_id")
        reply = stub.GetInterface(pb.GetInterfaceRequest(interface_id=b"nope"))
        assert (reply.status.code, reply.status.message) == (201, "NOT_FOUND")


def test_unknown_method_and_undecodable_request(agent: InProcessAgent) -> None:
    with channel_to(agent.address) as channel:
        unknown = channel.unary_unary("/dpdkironcore.v1.DPDKironcore/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as info:
            unknown(b"")
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
        raw = channel.unary_unary("/dpdkironcore.v1.DPDKironcore/Initialize")
        raw(b"")  # an empty message is a valid InitializeRequest
        garbage = channel.unary_unary("/dpdkironcore.v1.DPDKironcore/GetInterface")
        with pytest.raises(grpc.RpcError) as info:
            garbage(b"\xff\xff\xff")
        assert info.value.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]


def test_health_check_watch_and_not_serving_on_stop(agent: InProcessAgent) -> None:
    with channel_to(agent.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == SERVING
        assert (
            health.Check(health_pb2.HealthCheckRequest(service="x")).status
            == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        )
        with pytest.raises(grpc.RpcError) as info:
            next(health.Watch(health_pb2.HealthCheckRequest(service="x"), timeout=5))
        err: Any = info.value
        assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, "Service not found")
        watches = [health.Watch(health_pb2.HealthCheckRequest(), timeout=10) for _ in range(3)]
        assert all(next(w).status == SERVING for w in watches)
        abandoned = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(abandoned).status == SERVING
        abandoned.cancel()
        agent.server.health.set_status(NOT_SERVING)
        assert all(next(w).status == NOT_SERVING for w in watches)
        agent.server.health.set_status(SERVING)
        assert all(next(w).status == SERVING for w in watches)
        for w in watches:
            w.cancel()


def test_many_calls_in_flight_are_all_answered_in_order(agent: InProcessAgent) -> None:
    with channel_to(agent.address) as channel:
        stub = pbg.DPDKironcoreStub(channel)
        stub.Initialize(pb.InitializeRequest())
        assert stub.CreateInterface(create_interface_req(VM1)).status.code == 0
        futures = [
            stub.CreateRoute.future(route_req(VM1.vni, f"10.{i >> 8}.{i & 255}.0/24", "fc00::1"))
            for i in range(500)
        ]
        assert all(f.result().status.code == 0 for f in futures)
        listed = stub.ListRoutes(pb.ListRoutesRequest(vni=VM1.vni))
        assert len(listed.routes) == 500


NEXTHOP_TEXT = "2001:db8:1234:5678:9abc:def0:1234:5678"  # a long text form makes a big reply


def test_big_replies(agent: InProcessAgent) -> None:
    """A list larger than gRPC's default 4 MB message cap goes out (clients raise their limit)."""
    agent.state.initialized = True
    from ipaddress import IPv4Address, IPv6Address

    from kubevpc_agent.tables import commands as cmd

    NEXTHOP = IPv6Address(NEXTHOP_TEXT)

    agent.state.apply(
        cmd.CreateLoadBalancer("lb", 7, IPv4Address("1.1.1.1"), (), IPv6Address("fc00:1::d000:0:0:1"))
    )
    for i in range(100_000):
        agent.state.apply(cmd.CreateRoute(7, IPv4Address(0x0A000000 + i), 32, NEXTHOP))
    with channel_to(agent.address) as channel:
        listed = pbg.DPDKironcoreStub(channel).ListRoutes(pb.ListRoutesRequest(vni=7), timeout=60)
    assert len(listed.routes) == 100_000
    assert listed.ByteSize() > 4 << 20
