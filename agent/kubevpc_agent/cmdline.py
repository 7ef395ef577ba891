"""The agent's command line and config files, in dpservice's form and in ours.

Three ways to start the agent, all ending in one :class:`~kubevpc_agent.config.AgentConfig`:

1. dpservice-bin's form (DPSERVICE.md §2), so the agent starts wherever dpservice does::

       kubevpc-agent <EAL options> -- <dpservice options>

   EAL options: ``--vdev=net_tapN,iface=NAME[,mac=MAC]`` declares a TAP port the agent creates,
   with API device name ``net_tapN``; ``--vdev=net_af_packetN,iface=NAME`` and
   ``--vdev=net_af_xdpN,iface=NAME`` (DPDK's names) declare an *existing* netdev (veth "VF",
   representor, uplink). Port ids follow the vdev order; a port is a PF if its netdev is
   ``--pf0``/``--pf1`` and a VF if the name contains ``--vf-pattern`` (others are unused, as in
   dpservice). ``-l``, ``--log-level``, ``--huge-unlink``, ``--no-pci``, ``--no-huge``,
   ``--file-prefix``, ``-a`` and a few more are accepted and ignored (logged). Before the
   arguments, ``$DP_CONF`` or ``/run/dpservice/dpservice.conf`` is read (``key value`` lines; a
   missing default file is fine, ``DP_CONF=""`` disables it). The gRPC server listens on
   ``[::]:<--grpc-port>`` like dpservice.
2. Our YAML file: ``kubevpc-agent --config agent.yaml`` (keys = the long option names, plus a
   ``ports`` list; docs/agent.md has an example).
3. Our options alone: ``kubevpc-agent --grpc-listen ... --config ...``; the gRPC server listens
   on loopback ``127.0.0.1:1337`` unless told otherwise.

Our own options, accepted in every form: ``--grpc-listen``, ``--tls-cert``/``--tls-key``/
``--tls-ca``, ``--metrics-listen``, ``--fw-drop-compat``, ``--config``.

Option values are checked with dpservice's ranges and error texts; an error prints them to stderr
and exits 1, ``--help``/``--version`` print to stdout and exit 0.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import yaml

from kubevpc_agent.config import AgentConfig, NicType
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.version import SERVICE_VERSION

DEFAULT_CONF_FILE = "/run/dpservice/dpservice.conf"
DEFAULT_GRPC_PORT = 1337
IF_NAMESIZE = 16  # kernel interface names: 15 characters + NUL
MAX_VIRTSVC = 256  # dpservice DP_VIRTSVC_MAX
MAX_DNS_BYTES = 255  # DHCP option length is one byte


class CommandLineError(Exception):
    """Bad arguments; the message is what dpservice prints (possibly several lines)."""


@dataclass(frozen=True)
class Exit:
    """Stop without running: print ``text`` (to stdout) and exit with ``code``."""

    text: str
    code: int = 0


@dataclass
class _Settings:
    """Everything collected so far; becomes an AgentConfig at the end."""

    vdevs: list[tuple[str, str, str]] = field(default_factory=list)  # (device, ifname, mac)
    port_drivers: dict[str, str] = field(default_factory=dict)  # device -> tap|netdev
    kinds: dict[str, PortKind] = field(default_factory=dict)  # explicit kinds from YAML
    values: dict[str, Any] = field(default_factory=dict)  # AgentConfig field -> value
    dhcp_dns: list[IPv4Address] = field(default_factory=list)
    dhcpv6_dns: list[IPv6Address] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    virtsvc: list[tuple[str, str]] = field(default_factory=list)
    dpservice_form: bool = False
    grpc_port: int = DEFAULT_GRPC_PORT


# --- value parsers with dpservice's messages (src/dp_argparse.c, src/dp_conf.c) ------------------


def _string(arg: str, size: int) -> str:
    if len(arg.encode()) >= size:
        raise CommandLineError(f"Value '{arg}' is too long (max {size - 1} characters)")
    return arg


def _int(arg: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"\s*[+-]?\d+", arg):  # strtol: leading blanks and a sign, then digits
        raise CommandLineError(f"Value '{arg}' is not an integer")
    value = int(arg)
    if not lo <= value <= hi:
        raise CommandLineError(f"Value '{arg}' is out of range ({lo}-{hi})")
    return value


def _enum(arg: str, choices: Sequence[str]) -> str:
    if arg not in choices:
        listed = ", ".join(f"'{c}'" for c in choices)
        raise CommandLineError(f"Invalid choice '{arg}' (choose from: {listed})")
    return arg


def _inet_aton(arg: str) -> IPv4Address | None:
    try:
        return IPv4Address(socket.inet_aton(arg))
    except (OSError, ValueError):
        return None


def _inet_pton6(arg: str) -> IPv6Address | None:
    try:
        return IPv6Address(socket.inet_pton(socket.AF_INET6, arg))
    except (OSError, ValueError):
        return None


def _virtsvc(proto: str, arg: str, s: _Settings) -> None:
    """``IPv4,port,IPv6,port``: checked as dpservice does, kept for the log (not implemented)."""
    if len(s.virtsvc) >= MAX_VIRTSVC:
        raise CommandLineError(f"Number of virtual services is limited to {MAX_VIRTSVC}")
    parts = [p for p in arg.split(",") if p]
    names = ("IPv4", "IPv4 port", "IPv6", "IPv6 port")
    for i, what in enumerate(names):
        if i >= len(parts):
            raise CommandLineError(f"Missing virtual service {what}")
    v4, p4, v6, p6 = parts[:4]
    if _inet_aton(v4) is None:
        raise CommandLineError(f"Invalid virtual service IPv4 address '{v4}'")
    if not p4.isdigit() or not 0 < int(p4) <= 0xFFFF:
        raise CommandLineError(f"Invalid virtual service IPv4 port '{p4}'")
    if _inet_pton6(v6) is None:
        raise CommandLineError(f"Invalid virtual service IPv6 address '{v6}'")
    if not p6.isdigit() or not 0 < int(p6) <= 0xFFFF:
        raise CommandLineError(f"Invalid virtual service IPv6 port '{p6}'")
    for other_proto, other in s.virtsvc:
        o4, op4, o6, op6 = other.split(",")[:4]
        if other_proto == proto and (o4, int(op4)) == (v4, int(p4)):
            raise CommandLineError(f"IPv4 specification already used for '{arg}'")
        if other_proto == proto and (_inet_pton6(o6), int(op6)) == (_inet_pton6(v6), int(p6)):
            raise CommandLineError(f"IPv6 specification already used for '{arg}'")
    s.virtsvc.append((proto, arg))
    s.extra[f"{proto}-virtsvc"] = ";".join(a for p, a in s.virtsvc if p == proto)


def _dhcp_dns(arg: str, s: _Settings) -> None:
    addr = _inet_aton(arg)
    if addr is None:
        raise CommandLineError(f"Invalid IPv4 address '{arg}'")
    if (len(s.dhcp_dns) + 1) * 4 > MAX_DNS_BYTES:
        raise CommandLineError("Too many DHCP DNS addresses specified")
    s.dhcp_dns.append(addr)


def _dhcpv6_dns(arg: str, s: _Settings) -> None:
    addr = _inet_pton6(arg)
    if addr is None:
        raise CommandLineError(f"Invalid IPv6 address '{arg}'")
    if (len(s.dhcpv6_dns) + 1) * 16 > MAX_DNS_BYTES:
        raise CommandLineError("Too many DHCPv6 DNS addresses specified")
    s.dhcpv6_dns.append(addr)


def _ipv6(arg: str, s: _Settings) -> None:
    addr = _inet_pton6(arg)
    if addr is None:
        raise CommandLineError(f"Invalid IPv6 address format: '{arg}'")
    s.values["underlay_ipv6"] = addr


def _set(name: str, convert: Callable[[str], Any]) -> Callable[[str, _Settings], None]:
    def apply(arg: str, s: _Settings) -> None:
        s.values[name] = convert(arg)

    return apply


def _flag(name: str, value: bool) -> Callable[[str, _Settings], None]:
    def apply(arg: str, s: _Settings) -> None:
        s.values[name] = value

    return apply


def _extra(name: str, convert: Callable[[str], Any] = str) -> Callable[[str, _Settings], None]:
    def apply(arg: str, s: _Settings) -> None:
        s.extra[name] = str(convert(arg))

    return apply


def _grpc_port(arg: str, s: _Settings) -> None:
    s.grpc_port = _int(arg, 1024, 65535)


@dataclass(frozen=True)
class _Option:
    name: str
    arg: str | None  # placeholder shown in --help; None: takes no argument
    help: str
    apply: Callable[[str, _Settings], None]
    shown: bool = True  # listed in --help


_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "pf0",
        "IFNAME",
        "first physical interface (e.g. eth0)",
        _set("pf0", lambda a: _string(a, IF_NAMESIZE)),
    ),
    _Option(
        "pf1",
        "IFNAME",
        "second physical interface (e.g. eth1)",
        _set("pf1", lambda a: _string(a, IF_NAMESIZE)),
    ),
    _Option("ipv6", "ADDR6", "IPv6 underlay address", _ipv6),
    _Option(
        "vf-pattern",
        "PATTERN",
        "virtual interface name pattern (e.g. 'eth1vf')",
        _set("vf_pattern", lambda a: _string(a, IF_NAMESIZE)),
    ),
    _Option(
        "dhcp-mtu",
        "SIZE",
        "set the mtu field in DHCP responses (68 - 1500)",
        _set("dhcp_mtu", lambda a: _int(a, 68, 1500)),
    ),
    _Option(
        "dhcp-dns",
        "IPv4",
        "set the domain name server field in DHCP responses (can be used multiple times)",
        _dhcp_dns,
    ),
    _Option(
        "dhcpv6-dns",
        "ADDR6",
        "set the domain name server field in DHCPv6 responses (can be used multiple times)",
        _dhcpv6_dns,
    ),
    _Option("udp-virtsvc", "IPv4,port,IPv6,port", "", lambda a, s: _virtsvc("udp", a, s), shown=False),
    _Option("tcp-virtsvc", "IPv4,port,IPv6,port", "", lambda a, s: _virtsvc("tcp", a, s), shown=False),
    _Option(
        "wcmp",
        "PERCENTAGE",
        "weighted-cost-multipath percentage for pf0 (0 - 100)",
        _set("wcmp_percent", lambda a: _int(a, 0, 100)),
    ),
    _Option(
        "nic-type",
        "NICTYPE",
        "NIC type to use: 'mellanox' (default), 'tap' or 'bluefield2'",
        _set("nic_type", lambda a: NicType(_enum(a, [t.value for t in NicType]))),
    ),
    _Option("no-stats", None, "do not print periodic statistics to stdout", _flag("stats", False)),
    _Option("enable-ipv6-overlay", None, "enable IPv6 overlay addresses", _flag("enable_ipv6_overlay", True)),
    _Option("no-offload", None, "disable traffic offloading", _flag("offload", False)),
    _Option(
        "graphtrace-loglevel",
        "LEVEL",
        "verbosity level of packet traversing the graph framework",
        _extra("graphtrace-loglevel", lambda a: _int(a, 0, 2)),
    ),
    _Option(
        "color",
        "MODE",
        "output colorization mode: 'never' (default), 'always' or 'auto'",
        _set("color", lambda a: _enum(a, ("never", "always", "auto"))),
    ),
    _Option(
        "log-format",
        "FORMAT",
        "set the format of individual log lines (on standard output): 'text' (default) or 'json'",
        _set("log_format", lambda a: _enum(a, ("text", "json"))),
    ),
    _Option("grpc-port", "PORT", "listen for gRPC clients on this port", _grpc_port),
    _Option(
        "flow-timeout",
        "SECONDS",
        "inactive flow timeout (except TCP established flows)",
        _set("flow_timeout", lambda a: _int(a, 1, 300)),
    ),
    _Option(
        "multiport-eswitch",
        None,
        "run on NIC configured in multiport e-switch mode",
        _extra("multiport-eswitch"),
    ),
    _Option(
        "active-lockfile",
        "PATH",
        "file to be locked before starting packet processing",
        _extra("active-lockfile", lambda a: _string(a, 256)),
    ),
    _Option(
        "sync-tap",
        "IFNAME",
        "TAP device to use for dpservice-ha synchronization",
        _extra("sync-tap", lambda a: _string(a, IF_NAMESIZE)),
    ),
    _Option(
        "debug-coredumps",
        None,
        "Change /proc/self/coredump-flags to 0x7f for complete core-dumps",
        _extra("debug-coredumps"),
    ),
    # ours
    _Option(
        "grpc-listen",
        "ADDR",
        "gRPC listen address: HOST:PORT, [V6]:PORT or unix:/PATH (kubevpc)",
        _set("grpc_listen", str),
    ),
    _Option(
        "tls-cert", "FILE", "server certificate (PEM) for mutual TLS (kubevpc)", _set("grpc_tls_cert", str)
    ),
    _Option(
        "tls-key", "FILE", "server private key (PEM) for mutual TLS (kubevpc)", _set("grpc_tls_key", str)
    ),
    _Option(
        "tls-ca", "FILE", "CA that client certificates must chain to (kubevpc)", _set("grpc_tls_ca", str)
    ),
    _Option(
        "metrics-listen",
        "ADDR",
        "Prometheus metrics endpoint HOST:PORT (kubevpc)",
        _set("metrics_listen", str),
    ),
    _Option(
        "fw-drop-compat",
        None,
        "dpservice's firewall: reject DROP rules with 441 NO_DROP_SUPPORT and enforce no verdict (kubevpc)",
        _flag("fw_drop_compat", True),
    ),
)
_BY_NAME = {o.name: o for o in _OPTIONS}


def usage(progname: str) -> str:
    """``--help`` text in dpservice's layout."""
    lines = [
        f"Usage: {progname} [EAL options] -- [options]",
        "       " + " " * len(progname) + " --config FILE [options]",
        " -h, --help                             display this help and exit",
        " -v, --version                          display version and exit",
    ]
    for o in _OPTIONS:
        if not o.shown:
            continue
        left = f"     --{o.name}" + (f"={o.arg}" if o.arg else "")
        lines.append(f"{left:<40}{o.help}")
    lines.append(f"{'     --config=FILE':<40}kubevpc YAML configuration file (kubevpc)")
    return "\n".join(lines) + "\n"


# --- EAL part ---------------------------------------------------------------------------------

_EAL_WITH_ARG = {
    *("-l", "--lcores", "--log-level", "--file-prefix", "-a", "--allow", "-b", "--block", "-n", "-c", "-m"),
    *("--socket-mem", "--proc-type", "--iova-mode", "--main-lcore"),
}
_EAL_FLAGS = {"--huge-unlink", "--no-pci", "--no-huge", "--in-memory", "--no-shconf", "--no-telemetry"}
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_VDEV_DRIVERS = (("net_af_packet", "netdev"), ("net_af_xdp", "netdev"), ("net_tap", "tap"))


def _vdev(spec: str, s: _Settings) -> None:
    """``net_tapN,iface=NAME,mac=MAC`` (create) / ``net_af_packetN,iface=NAME`` (existing netdev)."""
    name, *kvs = spec.split(",")
    params: dict[str, str] = {}
    for kv in kvs:
        key, _, value = kv.partition("=")
        params[key.strip()] = value.strip().strip("\"'")
    driver = next((d for prefix, d in _VDEV_DRIVERS if name.startswith(prefix)), None)
    if driver is None:
        raise CommandLineError(f"Unsupported --vdev driver '{name}' (net_tap, net_af_packet, net_af_xdp)")
    ifname = params.get("iface", "")
    if not ifname:
        raise CommandLineError(f"--vdev {name}: iface= is required")
    _add_port(s, name, ifname, params.get("mac", ""), driver)


def _add_port(s: _Settings, device: str, ifname: str, mac: str, driver: str) -> None:
    _string(ifname, IF_NAMESIZE)
    if mac and not _MAC.fullmatch(mac):
        raise CommandLineError(f"port {device}: invalid MAC address '{mac}' (aa:bb:cc:dd:ee:ff)")
    if any(d == device for d, _, _ in s.vdevs):
        raise CommandLineError(f"port {device} given twice")
    s.vdevs.append((device, ifname, mac))
    s.port_drivers[device] = driver


def _parse_eal(args: Sequence[str], s: _Settings) -> None:
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name == "--vdev":
            if not eq:
                i += 1
                if i >= len(args):
                    raise CommandLineError("Missing argument for '--vdev'")
                value = args[i]
            _vdev(value, s)
        elif name in _EAL_FLAGS:
            s.extra[name.lstrip("-")] = ""
        elif name in _EAL_WITH_ARG or (len(arg) > 2 and arg[:2] in ("-l", "-a", "-n", "-c", "-m", "-b")):
            if not eq and name in _EAL_WITH_ARG:
                i += 1
                if i >= len(args):
                    raise CommandLineError(f"Missing argument for '{arg}'")
                value = args[i]
            s.extra[(name if name in _EAL_WITH_ARG else arg[:2]).lstrip("-")] = value or arg[2:]
        else:
            raise CommandLineError(f"Unknown EAL option '{arg}'")
        i += 1


# --- dpservice part (getopt_long) -------------------------------------------------------------


def _lookup(name: str) -> _Option | str:
    """The option ``--name`` means (exact, or an unambiguous prefix as getopt_long allows)."""
    names = [*_BY_NAME, "help", "version", "config"]
    if name in names:
        return _BY_NAME.get(name, name)
    matches = [n for n in names if n.startswith(name)] if name else []
    if len(matches) == 1:
        return _BY_NAME.get(matches[0], matches[0])
    raise CommandLineError(f"Unknown option '--{name}'")


def _parse_options(args: Sequence[str], s: _Settings, progname: str) -> Exit | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-h", "--help"):
            return Exit(usage(progname))
        if arg in ("-v", "--version"):
            return Exit(f"DP Service version {SERVICE_VERSION}\n")
        if not arg.startswith("--") or arg == "--":
            if arg.startswith("-") and arg != "-":
                raise CommandLineError(f"Unknown option '{arg[:2]}'")
            i += 1  # getopt_long leaves positional arguments alone; dpservice ignores them
            continue
        name, eq, value = arg[2:].partition("=")
        option = _lookup(name)
        if option in ("help", "version"):
            return Exit(usage(progname) if option == "help" else f"DP Service version {SERVICE_VERSION}\n")
        takes_arg = option == "config" or (isinstance(option, _Option) and option.arg is not None)
        if takes_arg and not eq:
            i += 1
            if i >= len(args):
                raise CommandLineError(f"Missing argument for '{arg}'")
            value = args[i]
        elif not takes_arg and eq:
            raise CommandLineError(f"Unknown option '{arg}'")  # getopt: option doesn't allow an argument
        if option == "config":
            _read_yaml(value, s)
        else:
            assert isinstance(option, _Option)
            try:
                option.apply(value, s)
            except CommandLineError as exc:
                raise CommandLineError(f"{exc}\nInvalid argument for '--{option.name}'") from None
        i += 1
    return None


# --- config files -----------------------------------------------------------------------------


def _read_conf_file(environ: Mapping[str, str], s: _Settings) -> None:
    """dpservice's ``key value`` file: ``$DP_CONF`` or the default path (see the module docstring)."""
    filename = environ.get("DP_CONF")
    path = DEFAULT_CONF_FILE if filename is None else filename
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        if filename is None or not filename:
            return
        raise CommandLineError(f"Error opening config file '{path}'") from None
    for lineno, line in enumerate(lines):
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if not words:
            raise CommandLineError(f"Config file error: no key on line {lineno}")
        key, value = words[0], words[1] if len(words) > 1 else None
        option = _BY_NAME.get(key)
        if value is None and (option is None or option.arg is not None):
            raise CommandLineError(f"Config file error: value required for key '{key}' on line {lineno}")
        if key in ("a-pf0", "a-pf1"):  # HW mode: an EAL -a argument; nothing to attach here
            s.extra[key] = value or ""
            continue
        if option is None:
            raise CommandLineError(f"Config file: unknown key '{key}'")
        try:
            option.apply(value or "", s)
        except CommandLineError as exc:
            raise CommandLineError(f"{exc}\nInvalid argument for '--{option.name}'") from None


def _read_yaml(path: str, s: _Settings) -> None:
    """Our YAML form: long option names as keys (lists for repeatable ones), plus ``ports``."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except OSError as exc:
        raise CommandLineError(f"Error opening config file '{path}': {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CommandLineError(f"Config file '{path}': {exc}") from None
    if not isinstance(doc, dict):
        raise CommandLineError(f"Config file '{path}': expected a mapping")
    for i, port in enumerate(doc.pop("ports", None) or []):
        if not isinstance(port, dict) or "ifname" not in port:
            raise CommandLineError(f"Config file '{path}': ports[{i}] needs an ifname")
        driver = str(port.get("driver", "tap"))
        if driver not in ("tap", "netdev"):
            raise CommandLineError(f"Config file '{path}': ports[{i}].driver must be tap or netdev")
        device = str(port.get("device", f"net_tap{i}" if driver == "tap" else f"net_af_packet{i}"))
        _add_port(s, device, str(port["ifname"]), str(port.get("mac", "")), driver)
        if "kind" in port:
            kind = str(port["kind"]).upper()
            if kind not in ("PF", "VF"):
                raise CommandLineError(f"Config file '{path}': ports[{i}].kind must be pf or vf")
            s.kinds[device] = PortKind[kind]
    for key, value in doc.items():
        option = _BY_NAME.get(str(key))
        if option is None:
            raise CommandLineError(f"Config file '{path}': unknown key '{key}'")
        values = value if isinstance(value, list) else [value]
        for v in values:
            if option.arg is None:
                if v is True:
                    option.apply("", s)
                elif v is not False:
                    raise CommandLineError(f"Config file '{path}': '{key}' is a flag (true/false)")
                continue
            try:
                option.apply(str(v), s)
            except CommandLineError as exc:
                raise CommandLineError(f"{exc}\nInvalid argument for '{key}' in '{path}'") from None


# --- assembly ---------------------------------------------------------------------------------


def _ports(s: _Settings) -> tuple[PortSpec, ...]:
    pf_names = {s.values.get("pf0", ""), s.values.get("pf1", "")} - {""}
    pattern = s.values.get("vf_pattern", "")
    ports = []
    for port_id, (device, ifname, mac) in enumerate(s.vdevs):
        kind = s.kinds.get(device)
        if kind is None:
            if ifname in pf_names:
                kind = PortKind.PF
            elif pattern and pattern in ifname:
                kind = PortKind.VF
            else:
                s.extra.setdefault("unused-ports", "")
                s.extra["unused-ports"] = ",".join(filter(None, [s.extra["unused-ports"], ifname]))
                continue  # neither PF nor VF: dpservice does not use it either (ids keep vdev order)
        ports.append(PortSpec(port_id, device, ifname, mac.lower(), kind, driver=s.port_drivers[device]))
    return tuple(ports)


def _config(s: _Settings) -> AgentConfig:
    values = dict(s.values)
    if "grpc_listen" not in values:
        # dpservice's form listens where dpservice does; ours stays on loopback unless configured
        values["grpc_listen"] = f"[::]:{s.grpc_port}" if s.dpservice_form else f"127.0.0.1:{s.grpc_port}"
    tls = [values.get(k, "") for k in ("grpc_tls_cert", "grpc_tls_key", "grpc_tls_ca")]
    if any(tls) and not all(tls):
        raise CommandLineError("Mutual TLS needs all of --tls-cert, --tls-key and --tls-ca")
    return AgentConfig(
        ports=_ports(s),
        dhcp_dns=tuple(s.dhcp_dns),
        dhcpv6_dns=tuple(s.dhcpv6_dns),
        extra=dict(s.extra),
        **values,
    )


def parse_command_line(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> AgentConfig | Exit:
    """``argv`` (without the program name) -> the agent's configuration, or an early exit.

    Raises :class:`CommandLineError` with the text to print on stderr.
    """
    env = os.environ if environ is None else environ
    s = _Settings()
    args = list(argv)
    if "--" in args:
        s.dpservice_form = True
        split = args.index("--")
        eal, options = args[:split], args[split + 1 :]
        _read_conf_file(env, s)
        _parse_eal(eal, s)
    else:
        options = args
    exit_now = _parse_options(options, s, "kubevpc-agent")
    if exit_now is not None:
        return exit_now
    config = _config(s)
    if not config.ports and not s.dpservice_form and not options:
        raise CommandLineError("Nothing to run: give dpservice's command line (... -- ...) or --config FILE")
    return config


def describe(config: AgentConfig) -> str:
    """One line per setting that differs from the defaults (for the start-up log)."""
    defaults = AgentConfig()
    parts = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != getattr(defaults, f.name):
            parts.append(f"{f.name}={value}")
    return ", ".join(parts)
