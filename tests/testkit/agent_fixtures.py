"""Fixtures and assertions for the agent gRPC tests (imported by the test modules that use them).

``api`` runs every test twice: against an in-process server (fast, no root) and against the real
agent process started with dpservice-bin's command line (``privileged``: it creates TAP devices).
Both agents live for the whole session; before each test ``reset_baseline`` restores
dpservice's ``prepare_ifaces`` state, so tests are independent.

``expect_error``/``expect_invalid`` also check the rule "an error changes nothing": every list and
get the API offers is taken before and after the failing call and must be identical.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.tables.errors import ErrorCode
from testkit.agent_api import (
    VNI1,
    VNI2,
    VNI3,
    AgentProcess,
    InProcessAgent,
    Topology,
    channel_to,
    dpservice_agent,
    ip,
    reset_baseline,
)


@dataclass
class Api:
    """A client of one agent, plus which kind of agent it is."""

    stub: pbg.DPDKironcoreStub
    channel: grpc.Channel
    backend: str  # "inprocess" or "process"
    address: str
    topology: Topology


@pytest.fixture(scope="session")
def inprocess_agent() -> Iterator[InProcessAgent]:
    topology = Topology()
    with InProcessAgent(topology.config()) as agent:
        agent.topology = topology  # type: ignore[attr-defined]
        yield agent


@pytest.fixture(scope="session")
def agent_process() -> Iterator[AgentProcess]:
    topology = Topology()
    with dpservice_agent(topology) as agent:
        agent.topology = topology  # type: ignore[attr-defined]
        yield agent


@pytest.fixture(params=["inprocess", pytest.param("process", marks=pytest.mark.privileged)])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    agent: Any = request.getfixturevalue(
        "inprocess_agent" if request.param == "inprocess" else "agent_process"
    )
    with channel_to(agent.address) as channel:
        stub = pbg.DPDKironcoreStub(channel)
        reset_baseline(stub)
        yield Api(stub, channel, request.param, agent.address, agent.topology)


# --- assertions --------------------------------------------------------------------------------


def ok(response: Any) -> Any:
    assert response.status.code == 0, (
        f"expected success, got {response.status.code} {response.status.message}"
    )
    assert response.status.message == "Success"
    return response


def snapshot(stub: pbg.DPDKironcoreStub) -> list[bytes]:
    """Everything the API can show, serialized (for "an error changed nothing")."""
    out: list[Any] = []
    ifaces = stub.ListInterfaces(pb.ListInterfacesRequest())
    out.append(ifaces)
    for iface in ifaces.interfaces:
        iid = iface.id
        out.append(stub.ListPrefixes(pb.ListPrefixesRequest(interface_id=iid)))
        out.append(stub.ListLoadBalancerPrefixes(pb.ListLoadBalancerPrefixesRequest(interface_id=iid)))
        out.append(stub.ListFirewallRules(pb.ListFirewallRulesRequest(interface_id=iid)))
        out.append(stub.GetVip(pb.GetVipRequest(interface_id=iid)))
        out.append(stub.GetNat(pb.GetNatRequest(interface_id=iid)))
    out.append(stub.ListRoutes(pb.ListRoutesRequest(vni=0)))
    out.append(stub.ListLoadBalancers(pb.ListLoadBalancersRequest()))
    out.append(stub.ListLoadBalancerTargets(pb.ListLoadBalancerTargetsRequest()))
    out.append(stub.ListLocalNats(pb.ListLocalNatsRequest(nat_ip=ip("0.0.0.0"))))
    out.append(stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=ip("0.0.0.0"))))
    for vni in (VNI1, VNI2, VNI3, 999):
        out.append(stub.CheckVniInUse(pb.CheckVniInUseRequest(vni=vni, type=pb.VNI_IPV4)))
    return [m.SerializeToString(deterministic=True) for m in out]


@contextlib.contextmanager
def unchanged(stub: pbg.DPDKironcoreStub) -> Iterator[None]:
    before = snapshot(stub)
    yield
    assert snapshot(stub) == before, "a failed call changed the agent's state"


def expect_error(stub: pbg.DPDKironcoreStub, method: str, request: Any, code: int) -> Any:
    """The call fails in-band with ``code`` and its name, the reply is otherwise empty, nothing changed."""
    with unchanged(stub):
        response = getattr(stub, method)(request)
    got = (response.status.code, response.status.message)
    assert got == (code, ErrorCode(code).name), f"{method}: expected {code} {ErrorCode(code).name}, got {got}"
    empty = type(response)(status=response.status)
    assert response == empty, f"{method}: an error reply carries data: {response}"
    return response


def expect_invalid(stub: pbg.DPDKironcoreStub, method: str, request: Any, text: str) -> None:
    """The call fails with gRPC INVALID_ARGUMENT and dpservice's exact text, changing nothing."""
    expect_grpc_error(stub, method, request, grpc.StatusCode.INVALID_ARGUMENT, text)


def expect_grpc_error(
    stub: pbg.DPDKironcoreStub, method: str, request: Any, code: grpc.StatusCode, text: str
) -> None:
    with unchanged(stub), pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request)
    error: Any = info.value
    assert (error.code(), error.details()) == (code, text)


__all__ = [
    "VNI1",
    "VNI2",
    "Api",
    "agent_process",
    "api",
    "expect_error",
    "expect_grpc_error",
    "expect_invalid",
    "inprocess_agent",
    "ok",
    "snapshot",
    "unchanged",
]
