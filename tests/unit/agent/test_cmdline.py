"""The agent's command line: dpservice-bin's form (EAL -- options), DP_CONF, our YAML and options."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from kubevpc_agent.cmdline import CommandLineError, Exit, parse_command_line, usage
from kubevpc_agent.config import AgentConfig, NicType
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.version import SERVICE_VERSION

NO_CONF = {"DP_CONF": ""}

# dpservice's test suite command line (DPSERVICE.md §6.2), as shlex.split leaves it
DPSERVICE_TEST_ARGS = [
    "-l", "0,1", "--log-level=user*:8", "--huge-unlink", "--no-pci",
    "--vdev=net_tap0,iface=dtap0,mac=22:22:22:22:22:00",
    "--vdev=net_tap1,iface=dtap1,mac=22:22:22:22:22:01",
    "--vdev=net_tap2,iface=dtapvf_0,mac=66:66:66:66:66:00",
    "--vdev=net_tap3,iface=dtapvf_1,mac=66:66:66:66:66:01",
    "--vdev=net_tap4,iface=dtapvf_2,mac=66:66:66:66:66:02",
    "--vdev=net_tap5,iface=dtapvf_3,mac=66:66:66:66:66:03",
    "--", "--pf0=dtap0", "--pf1=dtap1", "--vf-pattern=dtapvf_", "--nic-type=tap",
    "--ipv6=fc00:1::1", "--enable-ipv6-overlay", "--dhcp-mtu=1337",
    "--dhcp-dns=8.8.4.4", "--dhcp-dns=8.8.8.8",
    "--dhcpv6-dns=2001:4860:4860::6464", "--dhcpv6-dns=2002:4861:4861::6464",
    "--grpc-port=1337", "--no-stats", "--color=auto", "--no-offload",
    "--graphtrace-loglevel=1", "--wcmp=50", "--flow-timeout=1",
    "--udp-virtsvc=1.2.3.4,5353,2a00:da8:fff6::1,53", "--tcp-virtsvc=5.6.7.8,4443,2a00:da8:fff6::2,443",
]  # fmt: skip


def parse(args: list[str], env: dict[str, str] | None = None) -> AgentConfig:
    result = parse_command_line(args, env if env is not None else NO_CONF)
    assert isinstance(result, AgentConfig), result
    return result


def test_dpservice_test_suite_command_line() -> None:
    config = parse(DPSERVICE_TEST_ARGS)
    assert config.ports == (
        PortSpec(0, "net_tap0", "dtap0", "22:22:22:22:22:00", PortKind.PF),
        PortSpec(1, "net_tap1", "dtap1", "22:22:22:22:22:01", PortKind.PF),
        PortSpec(2, "net_tap2", "dtapvf_0", "66:66:66:66:66:00", PortKind.VF),
        PortSpec(3, "net_tap3", "dtapvf_1", "66:66:66:66:66:01", PortKind.VF),
        PortSpec(4, "net_tap4", "dtapvf_2", "66:66:66:66:66:02", PortKind.VF),
        PortSpec(5, "net_tap5", "dtapvf_3", "66:66:66:66:66:03", PortKind.VF),
    )
    assert (config.pf0, config.pf1, config.vf_pattern) == ("dtap0", "dtap1", "dtapvf_")
    assert config.nic_type is NicType.TAP
    assert config.underlay_ipv6 == IPv6Address("fc00:1::1")
    assert config.enable_ipv6_overlay and not config.offload and not config.stats
    assert config.dhcp_mtu == 1337
    assert config.dhcp_dns == (IPv4Address("8.8.4.4"), IPv4Address("8.8.8.8"))
    assert config.dhcpv6_dns == (IPv6Address("2001:4860:4860::6464"), IPv6Address("2002:4861:4861::6464"))
    assert (config.color, config.wcmp_percent, config.flow_timeout) == ("auto", 50, 1)
    assert config.grpc_listen == "[::]:1337"  # dpservice's form listens where dpservice does
    assert config.extra["l"] == "0,1" and "huge-unlink" in config.extra and "no-pci" in config.extra
    assert config.extra["graphtrace-loglevel"] == "1"
    assert config.extra["udp-virtsvc"] == "1.2.3.4,5353,2a00:da8:fff6::1,53"


def test_defaults_are_dpservices() -> None:
    config = parse(["--"])
    assert (config.dhcp_mtu, config.wcmp_percent, config.flow_timeout) == (1500, 100, 30)
    assert (config.nic_type, config.color, config.log_format) == (NicType.MELLANOX, "never", "text")
    assert config.offload and config.stats and not config.enable_ipv6_overlay
    assert config.underlay_ipv6 == IPv6Address("::")
    assert config.grpc_listen == "[::]:1337"
    assert not config.fw_drop_compat


def test_eal_options_in_separate_and_joined_forms() -> None:
    config = parse(
        [
            "-l0,1",
            "--file-prefix",
            "hatest",
            "-a",
            "0000:3b:00.0",
            "--no-huge",
            "--vdev",
            "net_tap0,iface=t0",
            "--",
        ]
    )
    assert (
        config.extra["l"] == "0,1"
        and config.extra["file-prefix"] == "hatest"
        and config.extra["a"] == "0000:3b:00.0"
    )
    assert config.ports == ()  # neither PF nor VF: unused, as in dpservice


def test_existing_netdevs_and_port_ids_in_vdev_order() -> None:
    config = parse(
        [
            "--vdev=net_af_packet0,iface=uplink0",
            "--vdev=net_tap1,iface=other",
            "--vdev=net_af_xdp2,iface=veth-vf1",
            "--",
            "--pf0=uplink0",
            "--vf-pattern=veth-vf",
        ]
    )
    assert config.ports == (
        PortSpec(0, "net_af_packet0", "uplink0", "", PortKind.PF, driver="netdev"),
        PortSpec(2, "net_af_xdp2", "veth-vf1", "", PortKind.VF, driver="netdev"),
    )
    assert config.extra["unused-ports"] == "other"


def test_quoted_mac_and_case() -> None:
    config = parse(['--vdev=net_tap0,iface=p0,mac="AA:BB:CC:DD:EE:0F"', "--", "--pf0=p0"])
    assert config.ports[0].mac == "aa:bb:cc:dd:ee:0f"


def test_options_with_separate_values_and_unique_prefixes() -> None:
    config = parse(["--", "--dhcp-mtu", "1400", "--no-st", "--grpc-p=2000"])
    assert (config.dhcp_mtu, config.stats, config.grpc_listen) == (1400, False, "[::]:2000")


def test_version_and_help() -> None:
    assert parse_command_line(["--no-pci", "--", "-v"], NO_CONF) == Exit(
        f"DP Service version {SERVICE_VERSION}\n"
    )
    assert parse_command_line(["--", "--version"], NO_CONF) == Exit(f"DP Service version {SERVICE_VERSION}\n")
    result = parse_command_line(["--", "-h"], NO_CONF)
    assert isinstance(result, Exit) and result.code == 0 and result.text == usage("kubevpc-agent")
    assert " -h, --help                             display this help and exit" in result.text
    assert (
        "     --dhcp-mtu=SIZE                    set the mtu field in DHCP responses (68 - 1500)"
        in result.text
    )


def invalid(option: str, first: str) -> str:
    """dpservice's two-line message for a bad option value."""
    return f"{first}\nInvalid argument for '--{option}'"


BAD = [
    (
        ["--vdev=net_tap0,iface=x,mac=zz:00:00:00:00:00", "--"],
        "port net_tap0: invalid MAC address 'zz:00:00:00:00:00' (aa:bb:cc:dd:ee:ff)",
    ),
    (["--", "--dhcp-mtu=1501"], invalid("dhcp-mtu", "Value '1501' is out of range (68-1500)")),
    (["--", "--wcmp=-1"], invalid("wcmp", "Value '-1' is out of range (0-100)")),
    (["--", "--grpc-port=1023"], invalid("grpc-port", "Value '1023' is out of range (1024-65535)")),
    (["--", "--flow-timeout=301"], invalid("flow-timeout", "Value '301' is out of range (1-300)")),
    (["--", "--graphtrace-loglevel=3"], invalid("graphtrace-loglevel", "Value '3' is out of range (0-2)")),
    (["--", "--dhcp-mtu=12a"], invalid("dhcp-mtu", "Value '12a' is not an integer")),
    (
        ["--", "--color=blue"],
        invalid("color", "Invalid choice 'blue' (choose from: 'never', 'always', 'auto')"),
    ),
    (["--", "--log-format=xml"], invalid("log-format", "Invalid choice 'xml' (choose from: 'text', 'json')")),
    (["--", "--dhcp-dns=1.2.3.x"], invalid("dhcp-dns", "Invalid IPv4 address '1.2.3.x'")),
    (["--", "--dhcpv6-dns=1.2.3.4"], invalid("dhcpv6-dns", "Invalid IPv6 address '1.2.3.4'")),
    (["--", "--ipv6=zz"], invalid("ipv6", "Invalid IPv6 address format: 'zz'")),
    (
        ["--", "--vf-pattern=" + "v" * 16],
        invalid("vf-pattern", f"Value '{'v' * 16}' is too long (max 15 characters)"),
    ),
    (
        ["--", "--active-lockfile=" + "p" * 256],
        invalid("active-lockfile", f"Value '{'p' * 256}' is too long (max 255 characters)"),
    ),
    (["--", "--nope"], "Unknown option '--nope'"),
    (["--", "--no"], "Unknown option '--no'"),  # ambiguous prefix
    (["--", "-x"], "Unknown option '-x'"),
    (["--", "--no-stats=1"], "Unknown option '--no-stats=1'"),
    (["--", "--ipv6"], "Missing argument for '--ipv6'"),
    (
        ["--", "--udp-virtsvc=1.2.3.4,0,::1,53"],
        invalid("udp-virtsvc", "Invalid virtual service IPv4 port '0'"),
    ),
    (["--", "--tcp-virtsvc=1.2.3.4,80"], invalid("tcp-virtsvc", "Missing virtual service IPv6")),
    (
        ["--", "--udp-virtsvc=1.2.3.4,53,::1,53", "--udp-virtsvc=1.2.3.4,53,::2,53"],
        invalid("udp-virtsvc", "IPv4 specification already used for '1.2.3.4,53,::2,53'"),
    ),
    (
        ["--vdev=net_null0", "--"],
        "Unsupported --vdev driver 'net_null0' (net_tap, net_af_packet, net_af_xdp)",
    ),
    (["--vdev=net_tap0", "--"], "--vdev net_tap0: iface= is required"),
    (["--vdev", "--"], "Missing argument for '--vdev'"),
    (["--vdev=net_tap0,iface=a", "--vdev=net_tap0,iface=b", "--"], "port net_tap0 given twice"),
    (["--", "--tls-cert=a"], "Mutual TLS needs all of --tls-cert, --tls-key and --tls-ca"),
    ([], "Nothing to run: give dpservice's command line (... -- ...) or --config FILE"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_errors_use_dpservices_texts(args: list[str], message: str) -> None:
    with pytest.raises(CommandLineError) as info:
        parse_command_line(args, NO_CONF)
    assert str(info.value) == message


def test_too_many_dns_servers() -> None:
    ok = ["--"] + [f"--dhcp-dns=10.0.0.{i}" for i in range(63)]
    assert len(parse(ok).dhcp_dns) == 63
    with pytest.raises(CommandLineError, match="Too many DHCP DNS addresses specified"):
        parse_command_line([*ok, "--dhcp-dns=10.0.1.1"], NO_CONF)
    with pytest.raises(CommandLineError, match="Too many DHCPv6 DNS addresses specified"):
        parse_command_line(["--"] + [f"--dhcpv6-dns=::{i + 1}" for i in range(16)], NO_CONF)


def test_dhcp_dns_accepts_inet_aton_forms() -> None:
    assert parse(["--", "--dhcp-dns=10.1"]).dhcp_dns == (IPv4Address("10.0.0.1"),)


# --- DP_CONF ------------------------------------------------------------------------------------------


def test_dp_conf_file_then_arguments(tmp_path: Path) -> None:
    conf = tmp_path / "dp.conf"
    lines = ["# comment", "", "pf0 eth0", "ipv6 fc00:9::1", "dhcp-dns 1.1.1.1", "no-stats"]
    lines.append("a-pf0 0000:3b:00.0,x=1")
    conf.write_text("\n".join(lines) + "\n")
    config = parse(["--", "--dhcp-dns=2.2.2.2", "--pf0=eth9"], {"DP_CONF": str(conf)})
    assert config.pf0 == "eth9"  # the command line wins
    assert config.underlay_ipv6 == IPv6Address("fc00:9::1")
    assert config.dhcp_dns == (IPv4Address("1.1.1.1"), IPv4Address("2.2.2.2"))  # repeatable: both
    assert not config.stats
    assert config.extra["a-pf0"] == "0000:3b:00.0,x=1"


def test_missing_default_conf_is_fine_missing_named_conf_is_not(tmp_path: Path) -> None:
    parse(["--"], {})  # /run/dpservice/dpservice.conf does not exist here
    with pytest.raises(CommandLineError, match="Error opening config file"):
        parse_command_line(["--"], {"DP_CONF": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("bogus 1\n", "Config file: unknown key 'bogus'"),
        ("pf0\n", "Config file error: value required for key 'pf0' on line 0"),
        ("wcmp 200\n", "Value '200' is out of range (0-100)\nInvalid argument for '--wcmp'"),
    ],
)
def test_dp_conf_errors(tmp_path: Path, content: str, message: str) -> None:
    conf = tmp_path / "dp.conf"
    conf.write_text(content)
    with pytest.raises(CommandLineError) as info:
        parse_command_line(["--"], {"DP_CONF": str(conf)})
    assert str(info.value) == message


# --- our forms -----------------------------------------------------------------------------------------


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        """
pf0: uplink0
vf-pattern: vm
ipv6: fc00:1::1
nic-type: tap
dhcp-dns: [8.8.8.8, 8.8.4.4]
no-offload: true
enable-ipv6-overlay: false
grpc-listen: unix:/run/kubevpc/agent.sock
metrics-listen: 127.0.0.1:9100
fw-drop-compat: true
ports:
  - {ifname: uplink0, driver: netdev}
  - {ifname: vm0, mac: "02:00:00:00:00:01"}
  - {ifname: special, device: vf-special, kind: vf}
"""
    )
    config = parse(["--config", str(path)])
    assert config.ports == (
        PortSpec(0, "net_af_packet0", "uplink0", "", PortKind.PF, driver="netdev"),
        PortSpec(1, "net_tap1", "vm0", "02:00:00:00:00:01", PortKind.VF),
        PortSpec(2, "vf-special", "special", "", PortKind.VF),
    )
    assert config.dhcp_dns == (IPv4Address("8.8.8.8"), IPv4Address("8.8.4.4"))
    assert not config.offload and not config.enable_ipv6_overlay and config.fw_drop_compat
    assert (config.grpc_listen, config.metrics_listen) == ("unix:/run/kubevpc/agent.sock", "127.0.0.1:9100")


def test_native_form_defaults_to_loopback(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("ipv6: fc00:1::1\n")
    assert parse(["--config", str(path)]).grpc_listen == "127.0.0.1:1337"
    path.write_text("grpc-port: 2000\n")
    assert parse(["--config", str(path)]).grpc_listen == "127.0.0.1:2000"
    assert parse(["--grpc-listen=[::1]:7000"]).grpc_listen == "[::1]:7000"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("bogus: 1\n", "unknown key 'bogus'"),
        ("- a\n", "expected a mapping"),
        ("no-stats: 1\n", "'no-stats' is a flag (true/false)"),
        ("dhcp-mtu: 20\n", "Value '20' is out of range (68-1500)"),
        ("ports: [{mac: x}]\n", "ports[0] needs an ifname"),
        ("ports: [{ifname: a, driver: dpdk}]\n", "ports[0].driver must be tap or netdev"),
        ("ports: [{ifname: a, kind: nic}]\n", "ports[0].kind must be pf or vf"),
        ("ports: [{ifname: a, mac: '02:00:00:00:00'}]\n", "invalid MAC address '02:00:00:00:00'"),
        ("a: [\n", "Config file"),
    ],
)
def test_yaml_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(content)
    with pytest.raises(CommandLineError) as info:
        parse_command_line(["--config", str(path)], NO_CONF)
    assert message in str(info.value)


def test_native_options_also_after_the_separator() -> None:
    config = parse(
        [
            "--",
            "--grpc-listen=unix:/tmp/x.sock",
            "--tls-cert=c",
            "--tls-key=k",
            "--tls-ca=a",
            "--fw-drop-compat",
        ]
    )
    assert config.grpc_listen == "unix:/tmp/x.sock"
    assert (config.grpc_tls_cert, config.grpc_tls_key, config.grpc_tls_ca) == ("c", "k", "a")
    assert config.fw_drop_compat
