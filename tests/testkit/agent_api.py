"""The agent's gRPC API under test: an in-process server, the real agent process, dpservice's topology.

* :class:`InProcessAgent` runs the real :class:`~kubevpc_agent.api.server.AgentServer` on a
  background event loop over in-memory ports (no root, milliseconds per test);
* :class:`AgentProcess` starts ``python -m kubevpc_agent`` with dpservice-bin's command line
  (``--vdev=net_tapN,iface=...`` creates TAP devices: root) and stops it with SIGTERM;
* :class:`Topology` is dpservice's test topology (``test/local/config.py``) with TAP names unique
  to the run, so parallel test sessions on one machine do not collide;
* :func:`reset_baseline` puts an agent back into ``prepare_ifaces``' state (VM1..VM3 + routes).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.api.server import AgentServer, TlsFiles
from kubevpc_agent.api.servicer import Servicer
from kubevpc_agent.config import AgentConfig, NicType
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.lab.netns import wait_for
from kubevpc_agent.replication import RecordingLink
from kubevpc_agent.tables.state import AgentState

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_UNDERLAY = "fc00:1::1"


@dataclass(frozen=True)
class Vm:
    name: str
    device: str
    vni: int
    ip: str
    ipv6: str


# dpservice test/local/config.py
VM1 = Vm("vm1", "net_tap2", 100, "10.100.1.1", "2000:100:1::1")
VM2 = Vm("vm2", "net_tap3", 100, "10.100.1.2", "2000:100:1::2")
VM3 = Vm("vm3", "net_tap4", 200, "10.200.1.3", "2000:200:1::3")
VM4 = Vm("vm4", "net_tap5", 100, "10.100.1.4", "2000:100:1::4")
VNI1, VNI2, VNI3 = 100, 200, 300
ROUTER_UL = "fc00::ffff"
NEIGH_VNI1_UL = "fc00:2::64:0:1"
VIP_IP = "172.20.0.1"
NAT_IP = "172.21.1.1"
NAT_LOCAL_MIN, NAT_LOCAL_MAX = 100, 102
NAT_NEIGH_MIN, NAT_NEIGH_MAX = 500, 520
LB_NAME, LB_IP = "my_lb", "172.22.2.1"


@dataclass(frozen=True)
class Topology:
    """dpservice's six TAP ports (PF0, PF1, VF0..VF3) under names unique to this run."""

    tag: str = field(default_factory=lambda: secrets.token_hex(2))

    @property
    def pf0(self) -> str:
        return f"kv{self.tag}p0"

    @property
    def pf1(self) -> str:
        return f"kv{self.tag}p1"

    @property
    def vf_pattern(self) -> str:
        return f"kv{self.tag}vf_"

    def ports(self) -> list[tuple[str, str, str, PortKind]]:
        """(device, ifname, mac, kind) in port-id order, as dpservice's dp_service.py declares them."""
        return [
            ("net_tap0", self.pf0, "22:22:22:22:22:00", PortKind.PF),
            ("net_tap1", self.pf1, "22:22:22:22:22:01", PortKind.PF),
            *(
                (f"net_tap{2 + i}", f"{self.vf_pattern}{i}", f"66:66:66:66:66:0{i}", PortKind.VF)
                for i in range(4)
            ),
        ]

    def eal_args(self) -> list[str]:
        vdevs = [
            f"--vdev=net_tap{i},iface={ifname},mac={mac}"
            for i, (_, ifname, mac, _) in enumerate(self.ports())
        ]
        return ["-l", "0,1", "--log-level=user*:8", "--huge-unlink", "--no-pci", *vdevs]

    def dpservice_args(self, grpc_port: int) -> list[str]:
        return [
            f"--pf0={self.pf0}",
            f"--pf1={self.pf1}",
            f"--vf-pattern={self.vf_pattern}",
            "--nic-type=tap",
            f"--ipv6={HOST_UNDERLAY}",
            "--enable-ipv6-overlay",
            "--dhcp-mtu=1337",
            "--dhcp-dns=8.8.4.4",
            "--dhcp-dns=8.8.8.8",
            "--dhcpv6-dns=2001:4860:4860::6464",
            "--dhcpv6-dns=2002:4861:4861::6464",
            f"--grpc-port={grpc_port}",
            "--no-stats",
            "--color=auto",
            "--no-offload",
        ]

    def config(self, listen: str = "127.0.0.1:0", **overrides: Any) -> AgentConfig:
        """The same topology for an in-process agent, over memory ports."""
        ports = tuple(
            PortSpec(i, device, ifname, mac, kind, driver="memory")
            for i, (device, ifname, mac, kind) in enumerate(self.ports())
        )
        values: dict[str, Any] = {
            "ports": ports,
            "pf0": self.pf0,
            "pf1": self.pf1,
            "vf_pattern": self.vf_pattern,
            "underlay_ipv6": IPv6Address(HOST_UNDERLAY),
            "nic_type": NicType.TAP,
            "grpc_listen": listen,
        }
        values.update(overrides)
        return AgentConfig(**values)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status)


# --- agents ------------------------------------------------------------------------------------


class InProcessAgent:
    """The agent's gRPC server in this process, over memory ports (no dataplane)."""

    def __init__(self, config: AgentConfig, tls: TlsFiles | None = None) -> None:
        self.state = AgentState(config)
        self.link = RecordingLink()
        self.servicer = Servicer(self.state, self.link)
        self.server = AgentServer(self.servicer, config.grpc_listen, tls)

    @property
    def address(self) -> str:
        host = self.server.listen.rsplit(":", 1)[0]
        return (
            f"{host}:{self.server.port}" if not self.server.listen.startswith("unix:") else self.server.listen
        )

    def __enter__(self) -> InProcessAgent:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(0.5)


class AgentProcess:
    """``python -m kubevpc_agent <args>`` as a child process; SIGTERM on exit."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, address: str = "") -> None:
        self.args = args
        self.address = address
        self.env = {"PATH": os.environ.get("PATH", ""), "DP_CONF": "", "PYTHONUNBUFFERED": "1"}
        self.env["PYTHONPATH"] = os.pathsep.join(os.path.join(REPO, d) for d in ("agent", "proto"))
        if env:
            self.env.update(env)
        self.log = tempfile.NamedTemporaryFile(prefix="kubevpc-agent-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self, wait: bool = True) -> AgentProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubevpc_agent", *self.args],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_serving()
        return self

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_serving(self, timeout: float = 20.0) -> None:
        def serving() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{self.output()}")
            with grpc.insecure_channel(self.address) as channel:
                return health_status(channel) == health_pb2.HealthCheckResponse.SERVING

        wait_for(serving, timeout=timeout, what=f"agent serving on {self.address}")

    def wait(self, timeout: float = 15.0) -> int:
        """The exit code, once the process ended by itself."""
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        return self.returncode

    def close(self) -> None:
        """Stop (if still running) and remove the log file."""
        if self.proc is not None:
            self.stop()
        if not self.log.closed:
            self.log.close()
            os.unlink(self.log.name)

    def __enter__(self) -> AgentProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def dpservice_agent(topology: Topology, port: int | None = None) -> AgentProcess:
    """The agent started exactly as dpservice's test suite starts dpservice-bin (§6.2)."""
    grpc_port = port or free_port()
    args = [*topology.eal_args(), "--", *topology.dpservice_args(grpc_port)]
    return AgentProcess(args, address=f"127.0.0.1:{grpc_port}")


# --- requests ----------------------------------------------------------------------------------


def ip(addr: str) -> Any:
    return pb.IpAddress(ipver=pb.IPV6 if ":" in addr else pb.IPV4, address=addr.encode())


def prefix(text: str) -> Any:
    addr, _, length = text.partition("/")
    return pb.Prefix(ip=ip(addr), length=int(length))


def create_interface_req(vm: Vm, **overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "interface_id": vm.name.encode(),
        "vni": vm.vni,
        "ipv4_config": pb.IpConfig(primary_address=vm.ip.encode()),
        "ipv6_config": pb.IpConfig(primary_address=vm.ipv6.encode()),
        "device_name": vm.device,
    }
    fields.update(overrides)
    return pb.CreateInterfaceRequest(**fields)


def route_req(vni: int, pfx: str, nexthop: str, nexthop_vni: int = 0) -> Any:
    return pb.CreateRouteRequest(
        vni=vni, route=pb.Route(prefix=prefix(pfx), nexthop_vni=nexthop_vni, nexthop_address=ip(nexthop))
    )


def reset_baseline(stub: pbg.DPDKironcoreStub) -> None:
    """dpservice's ``prepare_ifaces``: init, VM1..VM3, and the routes of VNI 100 and 200."""
    try:
        stub.CheckInitialized(pb.CheckInitializedRequest())
    except grpc.RpcError:
        stub.Initialize(pb.InitializeRequest())
    for lb in stub.ListLoadBalancers(pb.ListLoadBalancersRequest()).loadbalancers:
        stub.DeleteLoadBalancer(pb.DeleteLoadBalancerRequest(loadbalancer_id=lb.id))
    for iface in stub.ListInterfaces(pb.ListInterfacesRequest()).interfaces:
        stub.DeleteInterface(pb.DeleteInterfaceRequest(interface_id=iface.id))
    for n in stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=ip("0.0.0.0"))).nat_entries:
        stub.DeleteNeighborNat(
            pb.DeleteNeighborNatRequest(
                nat_ip=n.actual_nat_ip, vni=n.vni, min_port=n.min_port, max_port=n.max_port
            )
        )
    pxe = pb.PxeConfig(next_server="2001:dede::1", boot_filename="ipxe")
    for request in (
        create_interface_req(VM1, pxe_config=pxe, hostname="vm1-host"),
        create_interface_req(VM2, pxe_config=pxe),
        create_interface_req(VM3),
        route_req(VNI1, "10.100.2.0/24", NEIGH_VNI1_UL),
        route_req(VNI1, "2000:100:2::/104", NEIGH_VNI1_UL),
        route_req(VNI1, "0.0.0.0/0", ROUTER_UL, VNI1),
        route_req(VNI1, "::/0", ROUTER_UL, VNI1),
        route_req(VNI2, "0.0.0.0/0", ROUTER_UL, VNI2),
        route_req(VNI2, "::/0", ROUTER_UL, VNI2),
    ):
        method = "CreateInterface" if isinstance(request, pb.CreateInterfaceRequest) else "CreateRoute"
        response = getattr(stub, method)(request)
        assert response.status.code == 0, f"baseline {method}: {response.status}"


@contextlib.contextmanager
def channel_to(address: str) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 256 << 20)])
    try:
        yield channel
    finally:
        channel.close()
