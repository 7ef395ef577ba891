"""A NetworkInterface: one VM or host NIC on one node, attached to one VPC.

The agent on ``spec.nodeName`` binds ``spec.device`` (an SR-IOV VF by name or PCI address, or a
TAP by name) to an interface with the primary addresses in ``spec.ips`` (at most one IPv4 and one
IPv6). Optional: a public ``virtualIP`` (1:1 NAT), alias ``prefixes`` routed to it, ``hostname``
and ``pxe`` for its DHCP, and ``firewallRules`` (an allow-list, first match wins).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TypeVar

from kubevpc_operator.models.common import (
    BodyReader,
    IPAddress,
    IPNetwork,
    ObjectKey,
    Resource,
    host_prefix,
    is_agent_id,
)

DEFAULT_RULE_PRIORITY = 1000  # dpservice-cli's default; rules are applied in (priority, name) order
MAX_FIREWALL_RULES = 64  # per interface (the CRD's maxItems)
MAX_BOOT_FILE = 31  # dpservice: pxe_config.boot_filename is 1..31 characters

FIELDS = (
    "spec.vpcRef.name",
    "spec.nodeName",
    "spec.device.vf.name",
    "spec.device.vf.pciAddress",
    "spec.device.tap.name",
    "spec.ips[]",
    "spec.virtualIP",
    "spec.prefixes[]",
    "spec.hostname",
    "spec.pxe.server",
    "spec.pxe.bootFilename",
    "spec.firewallRules[].name",
    "spec.firewallRules[].direction",
    "spec.firewallRules[].action",
    "spec.firewallRules[].priority",
    "spec.firewallRules[].ipFamily",
    "spec.firewallRules[].sourcePrefix",
    "spec.firewallRules[].destinationPrefix",
    "spec.firewallRules[].protocol",
    "spec.firewallRules[].sourcePorts.from",
    "spec.firewallRules[].sourcePorts.to",
    "spec.firewallRules[].destinationPorts.from",
    "spec.firewallRules[].destinationPorts.to",
    "spec.firewallRules[].icmp.type",
    "spec.firewallRules[].icmp.code",
)


class DeviceKind(Enum):
    VF = "vf"
    TAP = "tap"


@dataclass(frozen=True)
class Device:
    kind: DeviceKind
    name: str = ""  # VF netdev/representor name or TAP name
    pci_address: str = ""  # VF PCI address, e.g. 0000:3b:00.2

    @property
    def agent_name(self) -> str:
        """The ``device_name`` sent to the agent; it resolves names and PCI addresses itself."""
        return self.name or self.pci_address


@dataclass(frozen=True)
class Pxe:
    server: str  # IPv4 text when the interface has no IPv6 address, else IPv6 (dpservice rule)
    boot_file: str


class Action(Enum):
    ACCEPT = "Accept"
    DROP = "Drop"  # enforced by the kubevpc agent (dpservice computes it but does not drop)


class Direction(Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class Protocol(Enum):
    ANY = "Any"
    TCP = "TCP"
    UDP = "UDP"
    ICMP = "ICMP"


@dataclass(frozen=True)
class PortRange:
    """Inclusive; -1/-1 means any port (the agent's wire convention)."""

    first: int = -1
    last: int = -1


@dataclass(frozen=True)
class FirewallRule:
    id: str
    direction: Direction
    priority: int
    source: IPNetwork
    destination: IPNetwork
    protocol: Protocol = Protocol.ANY
    source_ports: PortRange = PortRange()
    destination_ports: PortRange = PortRange()
    icmp_type: int = -1  # -1: any
    icmp_code: int = -1
    action: Action = Action.ACCEPT


@dataclass(frozen=True)
class NetworkInterface(Resource):
    vpc: ObjectKey
    node_name: str
    device: Device
    ipv4: ipaddress.IPv4Address | None
    ipv6: ipaddress.IPv6Address | None
    virtual_ip: ipaddress.IPv4Address | None = None
    prefixes: tuple[IPNetwork, ...] = ()
    hostname: str = ""
    pxe: Pxe | None = None
    firewall_rules: tuple[FirewallRule, ...] = ()  # in the order the agent evaluates them

    @property
    def ips(self) -> tuple[IPAddress, ...]:
        return tuple(ip for ip in (self.ipv4, self.ipv6) if ip is not None)

    @cached_property
    def host_prefixes(self) -> tuple[IPNetwork, ...]:
        """The /32 and /128 of its addresses (computed once: planning asks for them a lot)."""
        return tuple(host_prefix(ip) for ip in self.ips)

    @cached_property
    def routed_prefixes(self) -> tuple[tuple[IPNetwork, str, bool], ...]:
        """(prefix, its text, is an alias prefix) for everything routed to this interface."""
        hosts = tuple((p, str(p), False) for p in self.host_prefixes)
        return hosts + tuple((p, str(p), True) for p in self.prefixes)

    @classmethod
    def read(cls, reader: BodyReader) -> NetworkInterface:
        meta = reader.meta()
        vpc_name = reader.string("spec.vpcRef.name", required=True)
        node_name = reader.string("spec.nodeName", required=True)
        device = _read_device(reader)
        ipv4, ipv6 = _read_ips(reader)
        virtual_ip = reader.ip("spec.virtualIP")
        if virtual_ip is not None and not isinstance(virtual_ip, ipaddress.IPv4Address):
            reader.fail("spec.virtualIP", f"{virtual_ip} is not IPv4 (virtual IPs are IPv4 only)")
            virtual_ip = None
        elif virtual_ip is not None and ipv4 is None:
            reader.fail("spec.virtualIP", "needs an IPv4 address in spec.ips (it maps 1:1 onto it)")
        prefixes: list[IPNetwork] = []
        for _, path in reader.items("spec.prefixes"):
            prefix = reader.prefix(path, required=True)
            if prefix is None:
                continue
            if prefix in prefixes:
                reader.fail(path, f"{prefix} is listed twice")
            elif any(ip in prefix for ip in (ipv4, ipv6) if ip is not None):
                reader.fail(path, f"{prefix} contains the interface's own address")
            else:
                prefixes.append(prefix)
        hostname = reader.string("spec.hostname")
        if len(hostname) >= 64:
            reader.fail("spec.hostname", "must be shorter than 64 characters")
        pxe = _read_pxe(reader, has_ipv6=ipv6 is not None)
        rules = _read_firewall_rules(reader)
        reader.raise_if_failed()
        assert device is not None
        return cls(
            meta=meta,
            vpc=ObjectKey(meta.namespace, vpc_name),
            node_name=node_name,
            device=device,
            ipv4=ipv4,
            ipv6=ipv6,
            virtual_ip=virtual_ip,
            prefixes=tuple(prefixes),
            hostname=hostname,
            pxe=pxe,
            firewall_rules=rules,
        )


def _read_device(reader: BodyReader) -> Device | None:
    vf_name = reader.string("spec.device.vf.name")
    vf_pci = reader.string("spec.device.vf.pciAddress")
    tap_name = reader.string("spec.device.tap.name")
    has_vf = reader.get("spec.device.vf") is not None
    has_tap = reader.get("spec.device.tap") is not None
    if has_vf and has_tap:
        reader.fail("spec.device", "set either vf or tap, not both")
        return None
    if has_tap:
        if not tap_name:
            reader.fail("spec.device.tap.name", "required")
        elif len(tap_name) > 15:
            reader.fail("spec.device.tap.name", "must be at most 15 characters (a Linux interface name)")
        return Device(DeviceKind.TAP, name=tap_name)
    if has_vf:
        if bool(vf_name) == bool(vf_pci):
            reader.fail("spec.device.vf", "set exactly one of name and pciAddress")
        elif len(vf_name or vf_pci) >= 64:
            reader.fail("spec.device.vf", "the device name must be shorter than 64 characters")
        return Device(DeviceKind.VF, name=vf_name, pci_address=vf_pci)
    reader.fail("spec.device", "required: vf (name or pciAddress) or tap (name)")
    return None


def _read_ips(reader: BodyReader) -> tuple[ipaddress.IPv4Address | None, ipaddress.IPv6Address | None]:
    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None
    count = 0
    for _, path in reader.items("spec.ips"):
        count += 1
        ip = reader.ip(path, required=True)
        if ip is None:
            continue
        if ip.is_unspecified:
            reader.fail(path, f"{ip} is not a usable address")
        elif isinstance(ip, ipaddress.IPv4Address):
            if ipv4 is not None:
                reader.fail(path, f"only one IPv4 address per interface (already {ipv4})")
            ipv4 = ip
        else:
            if ipv6 is not None:
                reader.fail(path, f"only one IPv6 address per interface (already {ipv6})")
            ipv6 = ip
    if count == 0:
        reader.fail("spec.ips", "required: one IPv4 and/or one IPv6 address")
    return ipv4, ipv6


def _read_pxe(reader: BodyReader, *, has_ipv6: bool) -> Pxe | None:
    if reader.get("spec.pxe") is None:
        return None
    server = reader.ip("spec.pxe.server", required=True)
    boot_file = reader.string("spec.pxe.bootFilename", required=True)
    if boot_file and len(boot_file) > MAX_BOOT_FILE:
        reader.fail("spec.pxe.bootFilename", f"must be at most {MAX_BOOT_FILE} characters")
    if server is None:
        return None
    wanted = 6 if has_ipv6 else 4
    if server.version != wanted:
        reader.fail(
            "spec.pxe.server",
            f"must be IPv{wanted}: the boot server has the family of the interface's "
            + ("IPv6 address" if has_ipv6 else "IPv4 address (it has no IPv6)"),
        )
    return Pxe(server=str(server), boot_file=boot_file)


def _read_port_range(reader: BodyReader, path: str) -> PortRange:
    if reader.get(path) is None:
        return PortRange()
    first = reader.integer(f"{path}.from", minimum=0, maximum=65535)
    last = reader.integer(f"{path}.to", minimum=0, maximum=65535)
    if first is None:
        reader.fail(f"{path}.from", "required")
        return PortRange()
    last = first if last is None else last
    if last < first:
        reader.fail(f"{path}.to", f"{last} is below from ({first})")
    return PortRange(first, last)


def _read_firewall_rules(reader: BodyReader) -> tuple[FirewallRule, ...]:
    rules: list[FirewallRule] = []
    ids: set[str] = set()
    for index, item in reader.items("spec.firewallRules"):
        if index >= MAX_FIREWALL_RULES:
            reader.fail("spec.firewallRules", f"at most {MAX_FIREWALL_RULES} rules")
            break
        rule_id = reader.string(f"{item}.name", required=True)
        if rule_id and not is_agent_id(rule_id):
            reader.fail(f"{item}.name", "must be 1..63 characters of letters, digits, '-' and '_'")
        elif rule_id in ids:
            reader.fail(f"{item}.name", f"{rule_id!r} is used twice")
        ids.add(rule_id)
        direction = _enum(reader, f"{item}.direction", Direction, required=True) or Direction.INGRESS
        action = _enum(reader, f"{item}.action", Action) or Action.ACCEPT
        priority = reader.integer(f"{item}.priority", default=DEFAULT_RULE_PRIORITY, minimum=0, maximum=65535)
        family = reader.string(f"{item}.ipFamily", default="IPv4")
        if family not in ("IPv4", "IPv6"):
            reader.fail(f"{item}.ipFamily", f"{family!r} is not IPv4 or IPv6")
        version = 6 if family == "IPv6" else 4
        anywhere = ipaddress.ip_network("::/0" if version == 6 else "0.0.0.0/0")
        source = reader.prefix(f"{item}.sourcePrefix") or anywhere
        destination = reader.prefix(f"{item}.destinationPrefix") or anywhere
        for path, prefix in ((f"{item}.sourcePrefix", source), (f"{item}.destinationPrefix", destination)):
            if prefix.version != version:
                reader.fail(path, f"{prefix} is not an {family} prefix (ipFamily is {family})")
        protocol = _enum(reader, f"{item}.protocol", Protocol) or Protocol.ANY
        source_ports = _read_port_range(reader, f"{item}.sourcePorts")
        destination_ports = _read_port_range(reader, f"{item}.destinationPorts")
        icmp_type = reader.integer(f"{item}.icmp.type", default=-1, minimum=0, maximum=255)
        icmp_code = reader.integer(f"{item}.icmp.code", default=-1, minimum=0, maximum=255)
        has_ports = source_ports != PortRange() or destination_ports != PortRange()
        if has_ports and protocol not in (Protocol.TCP, Protocol.UDP):
            reader.fail(f"{item}.protocol", "ports need protocol TCP or UDP")
        if reader.get(f"{item}.icmp") is not None and protocol is not Protocol.ICMP:
            reader.fail(f"{item}.protocol", "icmp needs protocol ICMP")
        rules.append(
            FirewallRule(
                id=rule_id,
                direction=direction,
                priority=priority if priority is not None else DEFAULT_RULE_PRIORITY,
                source=source,
                destination=destination,
                protocol=protocol,
                source_ports=source_ports,
                destination_ports=destination_ports,
                icmp_type=icmp_type if icmp_type is not None else -1,
                icmp_code=icmp_code if icmp_code is not None else -1,
                action=action,
            )
        )
    return tuple(sorted(rules, key=lambda rule: (rule.priority, rule.id)))


E = TypeVar("E", bound=Enum)


def _enum(reader: BodyReader, path: str, kind: type[E], *, required: bool = False) -> E | None:
    text = reader.string(path, required=required)
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        reader.fail(path, f"{text!r} is not one of {allowed}")
        return None
