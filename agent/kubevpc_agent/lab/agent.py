"""Run a real ``kubevpc-agent`` inside a namespace and talk to it over its gRPC API.

The agent is started with dpservice-bin's command line (``--vdev=net_tapN,iface=...`` for TAPs
it creates, ``--vdev=net_af_packetN,iface=...`` for existing netdevs) and serves gRPC on a unix
socket: unix sockets live in the file system, so a client in any network namespace reaches an
agent inside its node namespace. :class:`LabClient` is a thin typed wrapper over the generated
``dpdkironcore.v1`` stubs for the calls a topology needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path

import grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.lab.netns import Netns, NetnsPool, wait_for


class LabError(RuntimeError):
    """The agent refused a call (in-band status) or did not come up."""


@dataclass(frozen=True)
class PortDecl:
    """One dataplane port on the agent's command line."""

    device: str  # net_tapN / net_af_packetN (the N is the port id)
    ifname: str
    mac: str = ""  # TAP only; "" = random

    def vdev(self) -> str:
        return f"--vdev={self.device},iface={self.ifname}" + (f",mac={self.mac}" if self.mac else "")


def agent_argv(
    ports: Sequence[PortDecl],
    *,
    pf0: str,
    underlay: str,
    vf_pattern: str,
    grpc_listen: str,
    metrics_listen: str = "",
    ipv6_overlay: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """dpservice-bin's command line for our agent (EAL part, ``--``, service part)."""
    argv = ["--no-pci", *(p.vdev() for p in ports), "-l", "0,1", "--"]
    argv += [f"--pf0={pf0}", f"--ipv6={underlay}", f"--vf-pattern={vf_pattern}", "--nic-type=tap"]
    argv += ["--no-stats", "--no-offload", f"--grpc-listen={grpc_listen}"]
    if metrics_listen:
        argv.append(f"--metrics-listen={metrics_listen}")
    if ipv6_overlay:
        argv.append("--enable-ipv6-overlay")
    return [*argv, *extra]


class AgentProcess:
    """``python -m kubevpc_agent`` in ``ns``; its output is kept (last lines) for error messages."""

    def __init__(self, pool: NetnsPool, ns: Netns, argv: Sequence[str], socket_path: Path) -> None:
        self.ns = ns
        self.socket_path = socket_path
        self.output: deque[str] = deque(maxlen=200)
        env = dict(os.environ, DP_CONF="", PYTHONUNBUFFERED="1")
        self.proc = ns.popen(sys.executable, "-m", "kubevpc_agent", *argv, env=env)
        self._pool = pool
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.output)[-lines:])

    def wait_ready(self, timeout: float = 30.0) -> LabClient:
        """Wait until the agent answers gRPC; returns a client bound to it."""

        def exited() -> None:
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise LabError(f"agent exited with {self.proc.returncode}:\n{self.log_tail()}")

        try:
            wait_for(lambda: self.proc.poll() is not None or self.socket_path.exists(), timeout=timeout)
            exited()
            client = LabClient(f"unix:{self.socket_path}")
            wait_for(lambda: self.proc.poll() is not None or client.ready(), timeout=timeout)
            exited()
        except TimeoutError as exc:
            raise LabError(f"agent did not come up:\n{self.log_tail()}") from exc
        return client

    def stop(self) -> int:
        """SIGTERM, then wait (the TAP devices vanish with the process); returns the exit code."""
        self._pool.stop(self.proc)
        self._reader.join(5)
        return self.proc.returncode


def _ip(text: str) -> pb.IpAddress:
    addr = ip_address(text)
    version = pb.IpVersion.IPV4 if addr.version == 4 else pb.IpVersion.IPV6
    return pb.IpAddress(ipver=version, address=str(addr).encode())


class LabClient:
    """The few DPDKironcore calls a topology needs; raises :class:`LabError` on a non-zero status."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = pbg.DPDKironcoreStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def ready(self) -> bool:
        try:
            self.stub.CheckInitialized(pb.CheckInitializedRequest(), timeout=2)
        except grpc.RpcError as exc:
            # ABORTED "not initialized" still proves the server answers
            return exc.code() is not grpc.StatusCode.UNAVAILABLE
        return True

    @staticmethod
    def _check(status: pb.Status, what: str) -> None:
        if status.code != 0:
            raise LabError(f"{what}: [{status.code}] {status.message}")

    def initialize(self) -> None:
        self.stub.Initialize(pb.InitializeRequest(), timeout=10)

    def create_interface(
        self,
        interface_id: str,
        device: str,
        vni: int,
        *,
        ipv4: str | None,
        ipv6: str | None,
        hostname: str = "",
    ) -> IPv6Address:
        """CreateInterface; returns the interface's underlay address."""
        reply = self.stub.CreateInterface(
            pb.CreateInterfaceRequest(
                interface_id=interface_id.encode(),
                device_name=device,
                vni=vni,
                ipv4_config=pb.IpConfig(
                    primary_address=str(IPv4Address(ipv4) if ipv4 else "0.0.0.0").encode()
                ),
                ipv6_config=pb.IpConfig(primary_address=str(IPv6Address(ipv6) if ipv6 else "::").encode()),
                hostname=hostname,
            ),
            timeout=10,
        )
        self._check(reply.status, f"CreateInterface {interface_id}")
        return IPv6Address(reply.underlay_route.decode())

    def create_route(self, vni: int, prefix: str, nexthop_vni: int, nexthop: IPv6Address | str) -> None:
        net = ip_network(prefix)
        route = pb.Route(
            prefix=pb.Prefix(ip=_ip(str(net.network_address)), length=net.prefixlen),
            nexthop_vni=nexthop_vni,
            nexthop_address=_ip(str(nexthop)),
        )
        reply = self.stub.CreateRoute(pb.CreateRouteRequest(vni=vni, route=route), timeout=10)
        self._check(reply.status, f"CreateRoute {prefix} in VNI {vni}")

    def delete_interface(self, interface_id: str) -> None:
        reply = self.stub.DeleteInterface(
            pb.DeleteInterfaceRequest(interface_id=interface_id.encode()), timeout=10
        )
        self._check(reply.status, f"DeleteInterface {interface_id}")


def run_in(ns: Netns, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A command in ``ns`` whose failure is data, not an exception."""
    return ns.try_run(*cmd, timeout=timeout)
