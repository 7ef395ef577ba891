"""The ``kubevpc`` CLI with dpservice-cli's contract (DPSERVICE.md §6.4), as dpservice's suite drives it.

:class:`Cli` is dpservice's ``test/local/grpc_client.py`` in miniature: run with ``-o json``, read
one JSON document, turn ``Error`` documents into Client/gRPC/Service errors. Most tests talk to an
in-process agent (fast); ``test_cli_end_to_end_against_the_agent_process`` runs the real agent
with TAP devices and the CLI as a separate process (create, list as JSON, delete).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from kubevpc_agent.cli.main import run
from kubevpc_agent.version import SERVICE_VERSION
from testkit.agent_api import (
    LB_IP,
    LB_NAME,
    NAT_IP,
    NAT_LOCAL_MAX,
    NAT_LOCAL_MIN,
    NAT_NEIGH_MAX,
    NAT_NEIGH_MIN,
    NEIGH_VNI1_UL,
    REPO,
    VIP_IP,
    VM1,
    VM2,
    VM4,
    VNI1,
    InProcessAgent,
    Topology,
    channel_to,
    dpservice_agent,
    reset_baseline,
)


class CliError(Exception):
    def __init__(self, source: str, code: int, message: str) -> None:
        super().__init__(f"{source} error #{code}: {message}")
        self.source, self.code, self.message = source, code, message


class Cli:
    """Runs ``kubevpc --address=... -o json <args>``; in this process or as a subprocess."""

    def __init__(self, address: str, subprocess_mode: bool = False) -> None:
        self.address = address
        self.subprocess_mode = subprocess_mode
        self.last_exit = 0

    def raw(self, *args: str) -> tuple[int, str]:
        argv = [f"--address={self.address}", "-o", "json", *args]
        if self.subprocess_mode:
            env = {"PATH": os.environ.get("PATH", "")}
            env["PYTHONPATH"] = os.pathsep.join(os.path.join(REPO, d) for d in ("agent", "proto"))
            proc = subprocess.run(
                [sys.executable, "-m", "kubevpc_agent.cli.main", *argv],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            return proc.returncode, proc.stdout
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run(argv)
        return code, out.getvalue()

    def __call__(self, *args: str) -> Any:
        self.last_exit, output = self.raw(*args)
        lines = output.strip().splitlines()
        assert len(lines) == 1, f"expected one JSON document, got: {output!r}"
        doc = json.loads(lines[0])
        if doc["kind"] == "Error":
            raise CliError(doc["spec"]["source"], doc["status"]["code"], doc["status"]["message"])
        return doc

    def spec(self, *args: str) -> Any:
        return self(*args)["spec"]

    def specs(self, *args: str) -> list[Any]:
        return [item["spec"] for item in self(*args)["items"]]

    def error(self, *args: str) -> CliError:
        with pytest.raises(CliError) as info:
            self(*args)
        return info.value


@pytest.fixture(scope="module")
def agent() -> Iterator[InProcessAgent]:
    with InProcessAgent(Topology().config()) as a:
        yield a


@pytest.fixture
def cli(agent: InProcessAgent) -> Cli:
    from dpdkironcore.v1 import dpdk_pb2_grpc as pbg

    with channel_to(agent.address) as channel:
        reset_baseline(pbg.DPDKironcoreStub(channel))
    return Cli(agent.address)


def add_interface(cli: Cli, vm: Any, *extra: str) -> str:
    spec = cli.spec(
        "add",
        "interface",
        f"--id={vm.name}",
        f"--device={vm.device}",
        f"--vni={vm.vni}",
        f"--ipv4={vm.ip}",
        f"--ipv6={vm.ipv6}",
        *extra,
    )
    return str(spec["underlay_route"])


def test_version_flag_matches_the_service() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run(["-v"]) == 0
    assert out.getvalue() == f"dpservice-cli version {SERVICE_VERSION}\n"


def test_init_refuses_when_initialized_and_get_init_reports_the_uuid(cli: Cli) -> None:
    err = cli.error("init")
    assert err.source == "client" and err.message.startswith("error dp-service already initialized, uuid: ")
    assert cli.last_exit == 1
    assert cli.spec("get", "init")["uuid"] == err.message.rsplit(" ", 1)[1]


def test_get_version(cli: Cli) -> None:
    doc = cli("get", "version")
    assert doc["kind"] == "Version"
    assert doc["spec"]["service_protocol"] == doc["spec"]["service_version"] == SERVICE_VERSION
    assert doc["metadata"]["client_name"] == "dpservice-cli"


def test_three_kinds_of_errors(cli: Cli) -> None:
    """test_grpc_client_client_error / _grpc_error / _service_error, word for word."""
    err = cli.error("add", "virtualip", f"--interface-id={VM4.name}", "--vip=xxx")
    assert (
        str(err)
        == 'client error #1000: invalid argument "xxx" for "--vip" flag: ParseAddr("xxx"): unable to parse IP'
    )
    assert cli.last_exit == 1
    err = cli.error(
        "add", "interface", "--id=vm4", f"--device={VM4.device}", "--vni=100", "--ipv4=0.0.0.0", "--ipv6=::"
    )
    assert (
        str(err)
        == "grpc error #3: Invalid ipv4_config.primary_address and ipv6_config.primary_address combination"
    )
    assert cli.last_exit == 1
    err = cli.error("add", "vip", f"--interface-id={VM4.name}", f"--vip={VIP_IP}")
    assert str(err) == "server error #205: NO_VM"
    assert cli.last_exit == 2


def test_interface_get_and_list_shapes(cli: Cli) -> None:
    """test_grpc_interface / _list through the CLI: dpservice-cli's spec keys."""
    created = cli(
        "add",
        "interface",
        f"--id={VM4.name}",
        f"--device={VM4.device}",
        f"--vni={VM4.vni}",
        f"--ipv4={VM4.ip}",
        f"--ipv6={VM4.ipv6}",
    )
    ul = created["spec"]["underlay_route"]
    assert created["kind"] == "Interface" and created["metadata"] == {"id": "vm4"}
    assert created["spec"]["virtual_function"]["name"].endswith("vf_3")
    vmspec = {
        "vni": VM4.vni,
        "device": VM4.device,
        "primary_ipv4": VM4.ip,
        "primary_ipv6": VM4.ipv6,
        "underlay_route": ul,
        "metering": {},
    }
    assert cli.spec("get", "interface", "--id=vm4") == vmspec
    listed = cli("list", "interfaces")
    assert listed["kind"] == "InterfaceList" and listed["status"] == {"code": 0, "message": "Success"}
    assert [i["metadata"]["id"] for i in listed["items"]] == ["vm1", "vm2", "vm3", "vm4"]
    assert listed["items"][0]["spec"]["hostname"] == "vm1-host"
    assert listed["items"][3]["spec"] == vmspec
    assert (
        cli.error(
            "add", "interface", "--id=vm4", f"--device={VM4.device}", "--vni=100", f"--ipv4={VM4.ip}"
        ).code
        == 202
    )
    assert cli("delete", "interface", "--id=vm4")["status"]["code"] == 0
    assert cli.error("get", "interface", "--id=vm4").code == 201


def test_routes(cli: Cli) -> None:
    """test_grpc_route_list through the CLI: sorted by prefix string, next_hop {vni, address}."""
    routes = cli.specs("list", "routes", f"--vni={VNI1}")
    assert routes == [
        {"prefix": "0.0.0.0/0", "next_hop": {"vni": VNI1, "address": "fc00::ffff"}},
        {"prefix": "10.100.2.0/24", "next_hop": {"vni": 0, "address": NEIGH_VNI1_UL}},
        {"prefix": "2000:100:2::/104", "next_hop": {"vni": 0, "address": NEIGH_VNI1_UL}},
        {"prefix": "::/0", "next_hop": {"vni": VNI1, "address": "fc00::ffff"}},
    ]
    cli(
        "add",
        "route",
        f"--vni={VNI1}",
        "--prefix=1.2.3.4/24",
        "--next-hop-vni=0",
        f"--next-hop-ip={NEIGH_VNI1_UL}",
    )
    assert (
        cli.error(
            "add",
            "route",
            f"--vni={VNI1}",
            "--prefix=1.2.3.255/24",
            "--next-hop-vni=0",
            f"--next-hop-ip={NEIGH_VNI1_UL}",
        ).code
        == 301
    )
    cli("del", "route", f"--vni={VNI1}", "--prefix=1.2.3.4/24")
    assert cli.error("del", "route", f"--vni={VNI1}", "--prefix=1.2.3.4/24").code == 302
    assert sorted(map(str, cli.specs("list", "routes", "--vni=0"))) == sorted(
        map(str, cli.specs("list", "routes", f"--vni={VNI1}") + cli.specs("list", "routes", "--vni=200"))
    )


def test_prefixes_and_global_lists(cli: Cli) -> None:
    ul1 = cli.spec("add", "prefix", f"--interface-id={VM1.name}", "--prefix=1.2.4.0/24")["underlay_route"]
    ul2 = cli.spec("add", "prefix", f"--interface-id={VM1.name}", "--prefix=1.2.3.0/24")["underlay_route"]
    # sorted by prefix string on the client
    expected = [
        {"prefix": "1.2.3.0/24", "underlay_route": ul2},
        {"prefix": "1.2.4.0/24", "underlay_route": ul1},
    ]
    assert cli.specs("list", "prefixes", f"--interface-id={VM1.name}") == expected
    cli("add", "prefix", f"--interface-id={VM2.name}", "--prefix=1.2.5.0/24")
    assert len(cli.specs("list", "prefixes")) == 3  # no id: every interface
    cli("add", "lbprefix", f"--interface-id={VM1.name}", "--prefix=1.2.3.4/32")
    lbp = cli("list", "lbprefixes", f"--interface-id={VM1.name}")
    assert lbp["kind"] == "LoadBalancerPrefixList" and lbp["items"][0]["kind"] == "LoadBalancerPrefix"
    assert lbp["items"][0]["spec"]["prefix"] == "1.2.3.4/32"
    cli("del", "lbprefix", f"--interface-id={VM1.name}", "--prefix=1.2.3.4/32")
    assert cli.error("del", "lbprefix", f"--interface-id={VM1.name}", "--prefix=1.2.3.4/32").code == 201


def test_vip_and_nat(cli: Cli) -> None:
    ul = cli.spec("add", "virtualip", f"--interface-id={VM1.name}", f"--vip={VIP_IP}")["underlay_route"]
    assert cli.spec("get", "vip", f"--interface-id={VM1.name}") == {"vip_ip": VIP_IP, "underlay_route": ul}
    cli("del", "vip", f"--interface-id={VM1.name}")
    assert cli.error("get", "vip", f"--interface-id={VM1.name}").code == 341
    nat_ul = cli.spec(
        "add",
        "nat",
        f"--interface-id={VM1.name}",
        f"--nat-ip={NAT_IP}",
        f"--minport={NAT_LOCAL_MIN}",
        f"--maxport={NAT_LOCAL_MAX}",
    )["underlay_route"]
    assert cli.spec("get", "nat", f"--interface-id={VM1.name}") == {
        "nat_ip": NAT_IP,
        "min_port": NAT_LOCAL_MIN,
        "max_port": NAT_LOCAL_MAX,
        "underlay_route": nat_ul,
        "vni": 0,
    }
    cli(
        "add",
        "nat",
        f"--interface-id={VM2.name}",
        f"--nat-ip={NAT_IP}",
        f"--minport={NAT_LOCAL_MAX}",
        f"--maxport={NAT_LOCAL_MAX + 1}",
    )
    nat1 = {
        "nat_ip": VM1.ip,
        "min_port": NAT_LOCAL_MIN,
        "max_port": NAT_LOCAL_MAX,
        "vni": VNI1,
        "actual_nat_ip": NAT_IP,
    }
    nat2 = {
        "nat_ip": VM2.ip,
        "min_port": NAT_LOCAL_MAX,
        "max_port": NAT_LOCAL_MAX + 1,
        "vni": VNI1,
        "actual_nat_ip": NAT_IP,
    }
    # test_grpc_nat_list expects [vm2, vm1]: the server's order survives the stable sort by VNI
    assert cli.specs("list", "nats", f"--nat-ip={NAT_IP}", "--nat-type=local") == [nat2, nat1]


def test_neighbor_nats(cli: Cli) -> None:
    """test_grpc_neighnat / _list through the CLI."""
    args = [f"--nat-ip={NAT_IP}", f"--vni={VNI1}", f"--minport={NAT_NEIGH_MIN}", f"--maxport={NAT_NEIGH_MAX}"]
    cli("add", "neighnat", *args, f"--underlayroute={NEIGH_VNI1_UL}")
    assert cli.error("add", "neighnat", *args, f"--underlayroute={NEIGH_VNI1_UL}").code == 202
    spec = {
        "min_port": NAT_NEIGH_MIN,
        "max_port": NAT_NEIGH_MAX,
        "underlay_route": NEIGH_VNI1_UL,
        "vni": VNI1,
        "actual_nat_ip": NAT_IP,
    }
    assert cli.specs("list", "nats", f"--nat-ip={NAT_IP}", "--nat-type=neigh") == [spec]
    cli("del", "neighnat", *args)
    assert cli.error("del", "neighnat", *args).code == 201


def test_load_balancers_and_targets(cli: Cli) -> None:
    """test_grpc_lb / lb_errors / lbtarget_list through the CLI."""
    ul = cli.spec(
        "add", "loadbalancer", f"--id={LB_NAME}", f"--vni={VNI1}", f"--vip={LB_IP}", "--lbports=tcp/80"
    )["underlay_route"]
    lbspec = {
        "vni": VNI1,
        "loadbalanced_ip": LB_IP,
        "loadbalanced_ports": [{"protocol": 6, "port": 80}],
        "underlay_route": ul,
    }
    assert cli.spec("get", "loadbalancer", f"--id={LB_NAME}") == lbspec
    assert cli.specs("list", "loadbalancers") == [lbspec]
    for bad in ("invalid", "icmp/22", "udp/65536", "tcp/80,tcp/80"):
        with pytest.raises(CliError):
            cli("add", "loadbalancer", "--id=lb2", f"--vni={VNI1}", "--vip=1.1.1.1", f"--lbports={bad}")
    cli("add", "lbtarget", f"--lb-id={LB_NAME}", "--target-ip=1234::2")
    cli("add", "lbtarget", f"--lb-id={LB_NAME}", "--target-ip=1234::1")
    assert cli.specs("list", "lbtargets", f"--lb-id={LB_NAME}") == [
        {"target_ip": "1234::1"},
        {"target_ip": "1234::2"},
    ]
    assert cli.error("add", "lbtarget", "--lb-id=nonexisting", "--target-ip=::").code == 422
    cli("delete", "loadbalancer", f"--id={LB_NAME}")
    assert cli.error("get", "loadbalancer", f"--id={LB_NAME}").code == 201


def test_firewall_rules(cli: Cli) -> None:
    """test_grpc_fwallrule / _list: the exact spec dpservice's suite compares."""
    cli(
        "add",
        "fwrule",
        f"--interface-id={VM1.name}",
        "--rule-id=fw0-vm1",
        "--src=1.2.3.4/16",
        "--dst=0.0.0.0/0",
        "--protocol=tcp",
        "--action=accept",
        "--direction=ingress",
    )
    rulespec = {
        "id": "fw0-vm1",
        "direction": "Ingress",
        "action": "Accept",
        "priority": 1000,
        "source_prefix": "1.2.3.4/16",
        "destination_prefix": "0.0.0.0/0",
        "protocol_filter": {
            "Filter": {
                "Tcp": {
                    "src_port_lower": -1,
                    "src_port_upper": -1,
                    "dst_port_lower": -1,
                    "dst_port_upper": -1,
                }
            }
        },
    }
    assert cli.spec("get", "fwrule", f"--interface-id={VM1.name}", "--rule-id=fw0-vm1") == rulespec
    cli(
        "add",
        "fwrule",
        f"--interface-id={VM1.name}",
        "--rule-id=fw1-vm1",
        "--src=4.5.6.7/16",
        "--dst=0.0.0.0/0",
        "--protocol=icmp",
        "--icmp-type=8",
        "--icmp-code=0",
        "--action=accept",
        "--direction=egress",
    )
    specs = cli.specs("list", "fwrules", f"--interface-id={VM1.name}")
    assert [s["id"] for s in specs] == ["fw0-vm1", "fw1-vm1"]
    assert specs[1]["protocol_filter"] == {
        "Filter": {"Icmp": {"icmp_type": 8}}
    }  # zero code omitted, as Go does
    assert len(cli.specs("list", "fwrules")) == 2  # no id: every interface
    cli("del", "fwrule", f"--interface-id={VM1.name}", "--rule-id=fw0-vm1")
    assert cli.error("get", "fwrule", f"--interface-id={VM1.name}", "--rule-id=fw0-vm1").code == 201
    err = cli.error(
        "add",
        "fwrule",
        "--interface-id=vm1",
        "--rule-id=x",
        "--src=1.2.3.4/16",
        "--dst=0.0.0.0/0",
        "--protocol=tcp",
        "--src-port-min=0",
        "--action=accept",
        "--direction=ingress",
    )
    assert (err.source, err.message) == ("client", "ports can only be -1 or <1,65535>")


def test_vni_commands(cli: Cli) -> None:
    assert cli.spec("get", "vni", f"--vni={VNI1}", "--vni-type=0") == {"in_use": True}
    assert cli.spec("get", "vni", "--vni=999", "--vni-type=0") == {"in_use": False}
    cli("reset", "vni", f"--vni={VNI1}")
    assert cli.specs("list", "routes", f"--vni={VNI1}") == []


def test_flag_errors_are_client_errors(cli: Cli) -> None:
    assert cli.error("add", "route", "--vni=100").message.startswith("required flag(s) ")
    assert cli.error("get", "interface", "--bogus=1").message == "unknown flag: --bogus"
    assert cli.error(
        "add", "route", "--vni=x", "--prefix=1.0.0.0/8", "--next-hop-vni=0", "--next-hop-ip=::1"
    ).message == ('invalid argument "x" for "--vni" flag: strconv.ParseUint: parsing "x": invalid syntax')
    assert cli.error("add", "prefix", "--interface-id=vm1", "--prefix=1.2.3.4").message == (
        'invalid argument "1.2.3.4" for "--prefix" flag: netip.ParsePrefix("1.2.3.4"): no \'/\''
    )
    assert cli.error("frobnicate", "interface").message == 'unknown command "frobnicate" for "kubevpc"'


def test_name_and_table_output(cli: Cli) -> None:
    code, _ = Cli(cli.address).raw(
        "add", "interface", "--id=vm4", f"--device={VM4.device}", "--vni=100", f"--ipv4={VM4.ip}"
    )
    assert code == 0
    out_name = io.StringIO()
    with contextlib.redirect_stdout(out_name):
        assert run([f"--address={cli.address}", "del", "interface", "--id=vm4"]) == 0
    assert out_name.getvalue() == "interface/vm4 deleted\n"
    out_table = io.StringIO()
    with contextlib.redirect_stdout(out_table):
        assert run([f"--address={cli.address}", "list", "interfaces"]) == 0
    lines = out_table.getvalue().splitlines()
    assert lines[0].split()[:3] == ["ID", "VNI", "DEVICE"] and [line.split()[0] for line in lines[1:]] == [
        "vm1",
        "vm2",
        "vm3",
    ]
    out_err = io.StringIO()
    with contextlib.redirect_stdout(out_err):
        assert run([f"--address={cli.address}", "get", "interface", "--id=nope"]) == 2
    assert out_err.getvalue() == "server error: [error code 201] NOT_FOUND\n"


def test_unreachable_server_is_a_client_error() -> None:
    cli = Cli("127.0.0.1:1")
    err = cli.error("--connect-timeout=200ms", "list", "interfaces")
    assert (err.source, err.code) == ("client", 1000)
    assert "error connecting to 127.0.0.1:1" in err.message


@pytest.mark.privileged
def test_cli_end_to_end_against_the_agent_process() -> None:
    topology = Topology()
    with dpservice_agent(topology) as agent:
        cli = Cli(agent.address, subprocess_mode=True)
        assert cli("init")["kind"] == "Initialized"
        ul = add_interface(cli, VM1, "--hostname=vm1-host")
        add_interface(cli, VM2)
        listed = cli("list", "interfaces")
        assert listed["kind"] == "InterfaceList"
        first = listed["items"][0]
        assert (first["metadata"]["id"], first["spec"]["underlay_route"]) == ("vm1", ul)
        assert [i["spec"]["device"] for i in listed["items"]] == ["net_tap2", "net_tap3"]
        cli(
            "add",
            "route",
            "--vni=100",
            "--prefix=10.100.2.0/24",
            "--next-hop-vni=0",
            f"--next-hop-ip={NEIGH_VNI1_UL}",
        )
        assert cli.specs("list", "routes", "--vni=100") == [
            {"prefix": "10.100.2.0/24", "next_hop": {"vni": 0, "address": NEIGH_VNI1_UL}}
        ]
        deleted = cli("delete", "interface", "--id=vm1")
        assert (deleted["kind"], deleted["status"]["code"]) == ("Interface", 0)
        assert [i["metadata"]["id"] for i in cli("list", "interfaces")["items"]] == ["vm2"]
        assert cli.error("delete", "interface", "--id=vm1").code == 201
        assert cli.last_exit == 2
