"""The agent as a process: dpservice-bin's command line, TAP devices, config files, listening, TLS, signals.

Tests marked ``privileged`` create network devices (TAPs via ``--vdev=net_tapN``, a veth pair for
``net_af_packetN``); the others run the agent without ports (control plane only).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.version import SERVICE_VERSION
from testkit.agent_api import (
    REPO,
    VM1,
    AgentProcess,
    Topology,
    channel_to,
    create_interface_req,
    dpservice_agent,
    free_port,
    health_status,
)
from testkit.netns import sh, unique_name, wait_for

AGENT = [sys.executable, "-m", "kubevpc_agent"]


def agent_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "DP_CONF": ""}
    env["PYTHONPATH"] = os.pathsep.join(os.path.join(REPO, d) for d in ("agent", "proto"))
    env.update(extra)
    return env


def run_agent(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, *args], env=agent_env(**env), capture_output=True, text=True, timeout=60, check=False
    )


def link_mac(ifname: str) -> str | None:
    path = Path(f"/sys/class/net/{ifname}/address")
    return path.read_text().strip() if path.exists() else None


# --- dpservice's command line with TAP devices --------------------------------------------------------


@pytest.mark.privileged
def test_vdev_taps_exist_with_their_macs_while_the_agent_runs_and_vanish_after() -> None:
    topology = Topology()
    agent = dpservice_agent(topology).start()
    try:
        for _, ifname, mac, _ in topology.ports():
            assert link_mac(ifname) == mac, ifname
            assert Path(f"/sys/class/net/{ifname}/tun_flags").exists(), f"{ifname} is not a TUN/TAP device"
        with channel_to(agent.address) as channel:
            stub = pbg.DPDKironcoreStub(channel)
            stub.Initialize(pb.InitializeRequest())
            reply = stub.CreateInterface(create_interface_req(VM1))
            assert (reply.status.code, reply.vf.name) == (0, f"{topology.vf_pattern}0")
        assert "accepted and ignored" in agent.output()
        assert agent.stop() == 0, agent.output()
    finally:
        agent.close()
    for _, ifname, _, _ in topology.ports():
        assert link_mac(ifname) is None, f"{ifname} outlived the agent"


@pytest.mark.privileged
def test_sigterm_turns_health_not_serving_before_the_server_stops() -> None:
    topology = Topology()
    agent = dpservice_agent(topology).start()
    try:
        with channel_to(agent.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=20)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            assert agent.proc is not None
            agent.proc.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert agent.wait() == 0, agent.output()
        assert "kubevpc-agent stopped" in agent.output()
    finally:
        agent.close()


@pytest.mark.privileged
def test_sigint_stops_the_agent_cleanly() -> None:
    topology = Topology()
    agent = dpservice_agent(topology).start()
    try:
        assert agent.stop(signal.SIGINT) == 0, agent.output()
    finally:
        agent.close()
    assert link_mac(topology.pf0) is None


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    a, b = unique_name("va"), unique_name("vb")
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    try:
        sh("ip", "link", "set", a, "up")
        sh("ip", "link", "set", b, "up")
        yield a, b
    finally:
        sh("ip", "link", "del", a, check=False)


@pytest.mark.privileged
def test_af_packet_vdev_uses_an_existing_netdev_as_vf(veth: tuple[str, str]) -> None:
    vf, _peer = veth
    port = free_port()
    topology = Topology()
    args = [
        "--no-pci",
        f"--vdev=net_tap0,iface={topology.pf0},mac=22:22:22:22:22:00",
        f"--vdev=net_af_packet1,iface={vf}",
        "--",
        f"--pf0={topology.pf0}",
        f"--vf-pattern={vf}",
        "--ipv6=fc00:1::1",
        f"--grpc-port={port}",
    ]
    with AgentProcess(args, address=f"127.0.0.1:{port}") as agent, channel_to(agent.address) as channel:
        stub = pbg.DPDKironcoreStub(channel)
        stub.Initialize(pb.InitializeRequest())
        reply = stub.CreateInterface(create_interface_req(VM1, device_name="net_af_packet1"))
        assert (reply.status.code, reply.vf.name) == (0, vf)
    assert link_mac(vf) is not None, "an existing netdev must survive the agent"


# --- command line without devices ---------------------------------------------------------------------


def test_version_and_help_exit_zero() -> None:
    version = run_agent("--no-pci", "--no-huge", "--", "--version")
    assert (version.returncode, version.stdout) == (0, f"DP Service version {SERVICE_VERSION}\n")
    helptext = run_agent("--no-pci", "--", "--help")
    assert helptext.returncode == 0
    assert "--grpc-port=PORT" in helptext.stdout and "--pf0=IFNAME" in helptext.stdout


BAD_COMMAND_LINES = [
    (["--", "--dhcp-mtu=67"], "Value '67' is out of range (68-1500)\nInvalid argument for '--dhcp-mtu'\n"),
    (["--", "--grpc-port", "x"], "Value 'x' is not an integer\nInvalid argument for '--grpc-port'\n"),
    (["--", "--nic-type=x"], "Invalid choice 'x' (choose from: 'mellanox', 'tap', 'bluefield2')\n"),
    (["--", "--bogus"], "Unknown option '--bogus'\n"),
    (["--", "--pf0"], "Missing argument for '--pf0'\n"),
    (["--", "--ipv6=1.2.3.4"], "Invalid IPv6 address format: '1.2.3.4'\nInvalid argument for '--ipv6'\n"),
    (["--", "--pf0=" + "x" * 16], "Value 'xxxxxxxxxxxxxxxx' is too long (max 15 characters)\n"),
    (["--bogus-eal", "--"], "Unknown EAL option '--bogus-eal'\n"),
]


@pytest.mark.parametrize(("args", "stderr"), BAD_COMMAND_LINES)
def test_bad_command_lines_exit_one_with_dpservices_message(args: list[str], stderr: str) -> None:
    result = run_agent(*args)
    assert result.returncode == 1
    assert result.stderr.startswith(stderr)


def test_dp_conf_file_is_read_before_the_arguments(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "dpservice.conf"
    conf.write_text(f"# dpservice config\nipv6 fc00:5::1\ngrpc-port {port}\nno-stats\n")
    args = ["--", "--nic-type=tap"]
    with AgentProcess(args, env={"DP_CONF": str(conf)}, address=f"127.0.0.1:{port}") as agent:
        with channel_to(agent.address) as channel:
            stub = pbg.DPDKironcoreStub(channel)
            stub.Initialize(pb.InitializeRequest())
            ul = stub.CreateLoadBalancer(
                pb.CreateLoadBalancerRequest(
                    loadbalancer_id=b"lb", vni=1, loadbalanced_ip=pb.IpAddress(address=b"1.1.1.1")
                )
            ).underlay_route.decode()
        assert ipaddress.IPv6Address(ul) in ipaddress.IPv6Network("fc00:5::/64")
    missing = run_agent("--", "--no-stats", DP_CONF=str(tmp_path / "missing.conf"))
    assert missing.returncode == 1
    assert f"Error opening config file '{tmp_path / 'missing.conf'}'" in missing.stderr


def test_yaml_config_and_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "agent.sock"
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"ipv6: fc00:7::1\ngrpc-listen: unix:{sock}\ndhcp-dns: [8.8.8.8, 1.1.1.1]\nno-stats: true\n"
    )
    agent = AgentProcess(["--config", str(config)], address=f"unix:{sock}")
    with agent, channel_to(agent.address) as channel:
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    assert agent.returncode == 0


def test_native_mode_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(f"grpc-port: {port}\n")
    with AgentProcess(["--config", str(config)], address=f"127.0.0.1:{port}"):
        local = listening_addresses(port)
    assert local and all("127.0.0.1" in a for a in local), local


def test_dpservice_mode_listens_on_all_addresses() -> None:
    port = free_port()
    with AgentProcess(["--", f"--grpc-port={port}"], address=f"127.0.0.1:{port}"):
        local = listening_addresses(port)
    assert local in ([f"*:{port}"], [f"[::]:{port}"]), local


def listening_addresses(port: int) -> list[str]:
    """Local address column of ``ss`` for TCP listeners on ``port``."""
    return [line.split()[3] for line in sh("ss", "-Hltn", f"sport = :{port}").splitlines() if line.strip()]


def test_a_taken_port_is_an_error() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_agent("--", f"--grpc-port={port}")
    assert result.returncode != 0


# --- mutual TLS -----------------------------------------------------------------------------------------


def _pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(name: str, key: Any, issuer: Any, issuer_key: Any, ca: bool = False, san: Any = None) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(data)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubevpc-test-ca")])
    ca_cert = cert("kubevpc-test-ca", ca_key, ca_name, ca_key, ca=True)
    write("ca", ca_cert.public_bytes(serialization.Encoding.PEM))
    for role, san in (("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        write(
            f"{role}-cert", cert(role, key, ca_name, ca_key, san=san).public_bytes(serialization.Encoding.PEM)
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write(f"{role}-key", pem)
    return files


def test_mutual_tls_requires_a_client_certificate(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    port = free_port()
    args = [
        "--",
        f"--grpc-listen=127.0.0.1:{port}",
        f"--tls-cert={pki['server-cert']}",
        f"--tls-key={pki['server-key']}",
        f"--tls-ca={pki['ca']}",
    ]
    agent = AgentProcess(args, address=f"127.0.0.1:{port}").start(wait=False)
    try:
        with_cert = grpc.ssl_channel_credentials(
            pki["ca"].read_bytes(), pki["client-key"].read_bytes(), pki["client-cert"].read_bytes()
        )

        def check(creds: Any) -> Any:
            with grpc.secure_channel(f"127.0.0.1:{port}", creds) as channel:
                return pbg.DPDKironcoreStub(channel).Initialize(pb.InitializeRequest(), timeout=3)

        reply = wait_for(lambda: check(with_cert), timeout=20, what="TLS agent")
        assert reply.status.code == 0
        without_cert = grpc.ssl_channel_credentials(pki["ca"].read_bytes())
        with pytest.raises(grpc.RpcError) as info:
            check(without_cert)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError), grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
            pbg.DPDKironcoreStub(plain).Initialize(pb.InitializeRequest(), timeout=3)
        cli = subprocess.run(
            [sys.executable, "-m", "kubevpc_agent.cli.main", f"--address=127.0.0.1:{port}", "-o", "json",
             f"--tls-ca={pki['ca']}", f"--tls-cert={pki['client-cert']}", f"--tls-key={pki['client-key']}",
             "get", "init"],
            env=agent_env(), capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert '"kind":"Initialized"' in cli.stdout, cli.stdout + cli.stderr
    finally:
        agent.close()


@pytest.mark.privileged
def test_metrics_listen_serves_the_dataplane_counters_over_http() -> None:
    topology = Topology()
    grpc_port, metrics_port = free_port(), free_port()
    args = [*topology.eal_args(), "--", *topology.dpservice_args(grpc_port)]
    agent = AgentProcess(
        [*args, f"--metrics-listen=127.0.0.1:{metrics_port}"], address=f"127.0.0.1:{grpc_port}"
    )
    agent.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
        assert "kubevpc_dataplane_up 1.0" in text
        assert f'kubevpc_port_rx_packets_total{{ifname="{topology.pf0}",port="net_tap0"}}' in text
        assert 'kubevpc_node_packets_total{counter="' in text
        # The CLI's view of the same endpoint: the dataplane answers and the uplink is listed.
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "kubevpc_agent.cli.main",
                "stats",
                f"--metrics-address=127.0.0.1:{metrics_port}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert shown.stdout.startswith("dataplane: up\n"), shown.stdout
        assert any(line.split()[:2] == ["net_tap0", topology.pf0] for line in shown.stdout.splitlines())
    finally:
        agent.close()


@pytest.mark.privileged
def test_the_agent_exits_when_its_dataplane_worker_dies() -> None:
    topology = Topology()
    agent = dpservice_agent(topology).start()
    try:
        assert agent.proc is not None
        children = Path(f"/proc/{agent.proc.pid}/task/{agent.proc.pid}/children").read_text().split()
        assert children, "no dataplane worker process"
        os.kill(int(children[0]), signal.SIGKILL)
        assert agent.wait(timeout=20) == 1, agent.output()
        assert "the dataplane worker is gone" in agent.output()
    finally:
        agent.close()
    assert link_mac(topology.pf0) is None
