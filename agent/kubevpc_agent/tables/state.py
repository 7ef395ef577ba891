"""AgentState: every object the API created, in the shape the datapath reads it.

One instance lives in the control-plane process (authoritative: validates, raises
:class:`~kubevpc_agent.tables.errors.DpError`, rolls back) and one replica in each dataplane
process (applies the same commands, which cannot fail there). ``version`` and the per-VNI and
per-table versions bump on every change so compiled datapath views know when to rebuild.

The read API below is what nodes use; mutations are the command handlers (see ``commands.py``),
one method per operation, dispatched by :meth:`AgentState.apply`. Every handler first checks
everything that can fail, in dpservice's order of checks (so the same request gets the same error
code), and only then changes anything: an error leaves the state exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables import limits
from kubevpc_agent.tables.errors import DpError, ErrorCode
from kubevpc_agent.tables.model import (
    Action,
    FirewallRule,
    Interface,
    IPAddress,
    IPNetwork,
    LoadBalancer,
    NatRange,
    NeighborNat,
    NextHopKind,
    RouteEntry,
    VnfEntry,
    VnfType,
)

E = ErrorCode


@dataclass
class VniTables:
    """Routing state of one VNI; exists while an interface or a load balancer uses the VNI."""

    vni: int
    routes4: dict[IPv4Network, RouteEntry] = field(default_factory=dict)
    routes6: dict[IPv6Network, RouteEntry] = field(default_factory=dict)
    refcount: int = 0
    version: int = 0  # bumps on every route change in this VNI

    def table(self, network: IPNetwork) -> dict[Any, RouteEntry]:
        """The routing table (IPv4 or IPv6) ``network`` belongs in."""
        return self.routes4 if network.version == 4 else self.routes6


@dataclass
class SnatEntry:
    """Source-NAT data of one VM address (dpservice's SNAT table, key (VM IPv4, VNI))."""

    vip: IPv4Address | None = None
    nat: NatRange | None = None
    vip_underlay: IPv6Address | None = None  # the VIP's own underlay (GetVip reports it)
    nat_underlay: IPv6Address | None = None  # the NAT slice's underlay (GetNat reports it)


def make_network(ip: IPAddress, length: int) -> IPNetwork | None:
    """``ip/length`` with host bits cleared, or None if the length does not fit the family."""
    if not 0 <= length <= ip.max_prefixlen:
        return None
    # from the integer: the address object itself would be printed and parsed again (5x slower)
    if ip.version == 4:
        return IPv4Network((int(ip), length), strict=False)
    return IPv6Network((int(ip), length), strict=False)


def _ipv4_only(addr: IPAddress) -> IPv4Address:
    if not isinstance(addr, IPv4Address):
        raise DpError(E.BAD_IPVER, f"{addr} is not IPv4")
    return addr


def host_network(ip: IPAddress) -> IPNetwork:
    """The /32 or /128 of one address."""
    net = make_network(ip, ip.max_prefixlen)
    assert net is not None
    return net


# command type -> the AgentState method that applies it
_HANDLERS: dict[type, str] = {
    cmd.Initialize: "initialize",
    cmd.CreateInterface: "create_interface",
    cmd.DeleteInterface: "delete_interface",
    cmd.CreatePrefix: "create_prefix",
    cmd.DeletePrefix: "delete_prefix",
    cmd.CreateLbPrefix: "create_lb_prefix",
    cmd.DeleteLbPrefix: "delete_lb_prefix",
    cmd.CreateVip: "create_vip",
    cmd.DeleteVip: "delete_vip",
    cmd.CreateNat: "create_nat",
    cmd.DeleteNat: "delete_nat",
    cmd.CreateNeighborNat: "create_neighbor_nat",
    cmd.DeleteNeighborNat: "delete_neighbor_nat",
    cmd.CreateLoadBalancer: "create_load_balancer",
    cmd.DeleteLoadBalancer: "delete_load_balancer",
    cmd.CreateLbTarget: "create_lb_target",
    cmd.DeleteLbTarget: "delete_lb_target",
    cmd.CreateRoute: "create_route",
    cmd.DeleteRoute: "delete_route",
    cmd.ResetVni: "reset_vni",
    cmd.CreateFirewallRule: "create_firewall_rule",
    cmd.DeleteFirewallRule: "delete_firewall_rule",
}

_NO_ADDRESS = IPv4Address(0)  # SNAT key of an interface without IPv4 (dpservice uses own_ip = 0)


@dataclass
class AgentState:
    """All agent state; see the module docstring."""

    config: AgentConfig
    ports: dict[int, PortSpec] = field(default_factory=dict)
    interfaces: dict[str, Interface] = field(default_factory=dict)  # by interface id
    port_interface: dict[int, str] = field(default_factory=dict)  # VF port id -> interface id
    vnis: dict[int, VniTables] = field(default_factory=dict)
    vnf: dict[IPv6Address, VnfEntry] = field(default_factory=dict)  # our underlay addresses
    snat: dict[tuple[IPv4Address, int], SnatEntry] = field(default_factory=dict)  # (VM IPv4, VNI)
    dnat: dict[tuple[IPv4Address, int], IPv4Address | None] = field(default_factory=dict)  # None: NAT IP
    neighbor_nats: list[NeighborNat] = field(default_factory=list)  # insertion order
    load_balancers: dict[str, LoadBalancer] = field(default_factory=dict)  # by LB id
    firewall: dict[str, list[FirewallRule]] = field(default_factory=dict)  # interface id -> rules
    initialized: bool = False
    version: int = 0  # bumps on every applied change
    vnf_version: int = 0
    nat_version: int = 0
    lb_version: int = 0
    firewall_version: int = 0
    # control-plane echo data: the addresses exactly as the client gave them (dpservice lists
    # prefixes and firewall rules unmasked, e.g. "1.2.3.4/16"); the datapath never reads these
    prefix_ips: dict[IPv6Address, IPAddress] = field(default_factory=dict)  # alias/LB prefix underlay -> ip
    firewall_ips: dict[tuple[str, str], tuple[IPAddress, IPAddress]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = {p.port_id: p for p in self.config.ports}

    # --- read API used by the datapath ---------------------------------------------------------

    def interface_by_port(self, port_id: int) -> Interface | None:
        """The interface bound to a VF port, if any."""
        iface_id = self.port_interface.get(port_id)
        return None if iface_id is None else self.interfaces.get(iface_id)

    def pf_ports(self) -> list[PortSpec]:
        """Uplink ports, pf0 first."""
        return [p for p in self.ports.values() if p.kind is PortKind.PF]

    def port_for_device(self, name: str) -> PortSpec | None:
        """The port a CreateInterface ``device_name`` means.

        dpservice knows only DPDK device names (``net_tap2``); we also accept the port's kernel
        netdev name (``dtapvf_0``, a VF's name), which is what Kubernetes objects naturally carry.
        A device name wins over a netdev name if both could match.
        """
        ports = self.ports.values()
        return next((p for p in ports if p.device == name), None) or next(
            (p for p in ports if p.ifname == name), None
        )

    # --- read API used by the control plane (raises DpError like the Get/List RPCs) ------------

    def interface(self, interface_id: str, missing: ErrorCode = E.NO_VM) -> Interface:
        """The interface ``interface_id``; ``missing`` is the error when there is none."""
        iface = self.interfaces.get(interface_id)
        if iface is None:
            raise DpError(missing, interface_id)
        return iface

    def interfaces_in_port_order(self) -> list[Interface]:
        return sorted(self.interfaces.values(), key=lambda i: i.port_id)

    def prefixes_of(self, interface_id: str, kind: VnfType) -> list[tuple[IPAddress, int, IPv6Address]]:
        """Alias (``ALIAS_PFX``) or LB (``LB_ALIAS_PFX``) prefixes of an interface: (ip, length, underlay)."""
        iface = self.interface(interface_id)
        return [
            (self.prefix_ips.get(e.underlay, e.prefix.network_address), e.prefix.prefixlen, e.underlay)
            for e in self._vnf_prefixes(iface, kind)
            if e.prefix is not None
        ]

    def snat_of(self, iface: Interface) -> SnatEntry | None:
        return self.snat.get(self._snat_key(iface))

    def load_balancer(self, lb_id: str, missing: ErrorCode = E.NOT_FOUND) -> LoadBalancer:
        lb = self.load_balancers.get(lb_id)
        if lb is None:
            raise DpError(missing, lb_id)
        return lb

    def tables_of_vni(self, vni: int) -> VniTables:
        """The routing state of ``vni``; NO_VNI while no interface or load balancer uses it."""
        tables = self.vnis.get(vni)
        if tables is None:
            raise DpError(E.NO_VNI, str(vni))
        return tables

    def external_routes(self, vni: int) -> list[tuple[int, RouteEntry]]:
        """Routes created by CreateRoute in ``vni`` (0: every VNI), IPv4 then IPv6, each by prefix."""
        tables = [self.vnis[v] for v in sorted(self.vnis)] if vni == 0 else [self.tables_of_vni(vni)]
        out: list[tuple[int, RouteEntry]] = []
        for t in tables:
            for routes in (t.routes4, t.routes6):
                ext = [r for r in routes.values() if r.external]
                ext.sort(key=lambda r: (int(r.prefix.network_address), r.prefix.prefixlen))
                out.extend((t.vni, r) for r in ext)
        return out

    def local_nats(self, nat_ip: IPv4Address) -> list[tuple[IPv4Address, int, NatRange]]:
        """Local NAT users of ``nat_ip`` (0.0.0.0: all) as (VM IPv4, VNI, range), newest first."""
        out = [
            (ip, vni, entry.nat)
            for (ip, vni), entry in self.snat.items()
            if entry.nat is not None and nat_ip in (_NO_ADDRESS, entry.nat.nat_ip)
        ]
        out.reverse()
        return out

    def firewall_rule(self, interface_id: str, rule_id: str) -> FirewallRule:
        self.interface(interface_id)
        for rule in self.firewall.get(interface_id, ()):
            if rule.id == rule_id:
                return rule
        raise DpError(E.NOT_FOUND, rule_id)

    def firewall_rule_ips(self, interface_id: str, rule: FirewallRule) -> tuple[IPAddress, IPAddress]:
        """Source and destination address of a rule as the client gave them."""
        given = self.firewall_ips.get((interface_id, rule.id))
        return given or (rule.source.network_address, rule.destination.network_address)

    def is_vni_in_use(self, vni: int) -> bool:
        return vni in self.vnis

    # --- mutations ------------------------------------------------------------------------------

    def apply(self, command: cmd.Command) -> None:
        """Apply one command (raises DpError, changing nothing, if it is not allowed)."""
        handler: Callable[[Any], None] = getattr(self, _HANDLERS[type(command)])
        handler(command)

    def initialize(self, c: cmd.Initialize) -> None:
        """Drop every neighbour NAT and reset every VNI's routes to what interfaces own."""
        self.neighbor_nats.clear()
        for key in [k for k, v in self.dnat.items() if v is None and not self._nat_ip_in_use(*k)]:
            del self.dnat[key]
        for tables in self.vnis.values():
            self._reset_routes(tables)
        self.initialized = True
        self.nat_version += 1
        self.version += 1

    # interfaces

    def create_interface(self, c: cmd.CreateInterface) -> None:
        port = self.port_for_device(c.device)
        if port is None:
            raise DpError(E.NOT_FOUND, f"no device {c.device}")
        if port.kind is PortKind.PF or port.port_id in self.port_interface:
            raise DpError(E.ALREADY_EXISTS, f"device {c.device} in use")
        self._check_vnf_free(c.underlay)
        if c.interface_id in self.interfaces:
            raise DpError(E.VM_HANDLE, c.interface_id)
        self._check_vni_available(c.vni)
        own = [host_network(ip) for ip in (c.ipv4, c.ipv6) if ip is not None]
        self._check_routes_free(c.vni, own)

        iface = Interface(
            id=c.interface_id,
            device=c.device,
            port_id=port.port_id,
            vni=c.vni,
            ipv4=c.ipv4,
            ipv6=c.ipv6,
            underlay=c.underlay,
            hostname=c.hostname,
            pxe=c.pxe,
        )
        self._add_vnf(VnfEntry(c.underlay, VnfType.INTERFACE_IP, c.vni, port.port_id))
        self.interfaces[c.interface_id] = iface
        self.port_interface[port.port_id] = c.interface_id
        self.firewall[c.interface_id] = []
        tables = self._ref_vni(c.vni)
        for net in own:
            self._put_route(tables, RouteEntry(net, NextHopKind.PORT, port_id=port.port_id))
        self.version += 1

    def delete_interface(self, c: cmd.DeleteInterface) -> None:
        """Delete an interface and everything hanging off it (VIP, NAT, prefixes, firewall rules)."""
        iface = self.interface(c.interface_id, missing=E.NOT_FOUND)
        tables = self.vnis[iface.vni]
        snat = self.snat_of(iface)
        if snat is not None and snat.vip is not None:
            self._drop_vip(iface, snat)
        snat = self.snat_of(iface)
        if snat is not None and snat.nat is not None:
            self._drop_nat(iface, snat)
        for kind in (VnfType.ALIAS_PFX, VnfType.LB_ALIAS_PFX):
            for entry in self._vnf_prefixes(iface, kind):
                if kind is VnfType.ALIAS_PFX and entry.prefix is not None:
                    self._drop_route_of_port(tables, entry.prefix, iface.port_id)
                self._del_vnf(entry.underlay)
        for ip in (iface.ipv4, iface.ipv6):
            if ip is not None:
                self._drop_route_of_port(tables, host_network(ip), iface.port_id)
        self._del_vnf(iface.underlay)
        rules = self.firewall.pop(iface.id, [])
        for rule in rules:
            self.firewall_ips.pop((iface.id, rule.id), None)
        if rules:
            self.firewall_version += 1
        del self.interfaces[iface.id]
        del self.port_interface[iface.port_id]
        self._unref_vni(iface.vni)
        self.version += 1

    # alias prefixes and LB prefixes

    def create_prefix(self, c: cmd.CreatePrefix) -> None:
        iface = self.interface(c.interface_id)
        tables = self.vnis[iface.vni]
        net = make_network(c.ip, c.length)
        if net is None:
            raise DpError(E.ROUTE_INSERT, f"bad prefix length {c.length}")
        self._check_routes_free(iface.vni, [net])
        self._check_vnf_free(c.underlay)

        self._put_route(tables, RouteEntry(net, NextHopKind.PORT, port_id=iface.port_id))
        self._add_vnf(VnfEntry(c.underlay, VnfType.ALIAS_PFX, iface.vni, iface.port_id, net))
        self.prefix_ips[c.underlay] = c.ip
        self.version += 1

    def delete_prefix(self, c: cmd.DeletePrefix) -> None:
        iface = self.interface(c.interface_id)
        tables = self.vnis[iface.vni]
        net = make_network(c.ip, c.length)
        entry = None if net is None else self._find_prefix(iface, VnfType.ALIAS_PFX, net)
        if entry is None or net is None:
            route = None if net is None else tables.table(net).get(net)
            if route is None:
                raise DpError(E.ROUTE_NOT_FOUND, f"{c.ip}/{c.length}")
            if route.kind is not NextHopKind.PORT or route.port_id != iface.port_id:
                raise DpError(E.ROUTE_BAD_PORT, f"{c.ip}/{c.length}")
            raise DpError(E.NOT_FOUND, f"{c.ip}/{c.length} is not an alias prefix")
        self._drop_route_of_port(tables, net, iface.port_id)
        self._del_vnf(entry.underlay)
        self.version += 1

    def create_lb_prefix(self, c: cmd.CreateLbPrefix) -> None:
        iface = self.interface(c.interface_id)
        net = make_network(c.ip, c.length)
        if net is None:  # the API layer rejects such lengths; a replica never sees one
            raise DpError(E.VNF_INSERT, f"bad prefix length {c.length}")
        if self._find_prefix(iface, VnfType.LB_ALIAS_PFX, net) is not None:
            raise DpError(E.ALREADY_EXISTS, str(net))
        self._check_vnf_free(c.underlay)

        self._add_vnf(VnfEntry(c.underlay, VnfType.LB_ALIAS_PFX, iface.vni, iface.port_id, net))
        self.prefix_ips[c.underlay] = c.ip
        self.version += 1

    def delete_lb_prefix(self, c: cmd.DeleteLbPrefix) -> None:
        iface = self.interface(c.interface_id)
        net = make_network(c.ip, c.length)
        entry = None if net is None else self._find_prefix(iface, VnfType.LB_ALIAS_PFX, net)
        if entry is None:
            raise DpError(E.NOT_FOUND, f"{c.ip}/{c.length}")
        self._del_vnf(entry.underlay)
        self.version += 1

    # virtual IP (1:1 NAT)

    def create_vip(self, c: cmd.CreateVip) -> None:
        iface = self.interface(c.interface_id)
        vip = _ipv4_only(c.vip)
        self._check_vnf_free(c.underlay)
        key = self._snat_key(iface)
        snat = self.snat.get(key)
        if snat is not None and snat.vip is not None:
            raise DpError(E.SNAT_EXISTS, f"{iface.id} has a VIP")
        if snat is None and len(self.snat) >= limits.MAX_NAT_ENTRIES:
            raise DpError(E.SNAT_CREATE, "SNAT table full")
        if (vip, iface.vni) in self.dnat:
            raise DpError(E.DNAT_EXISTS, f"{vip} in VNI {iface.vni}")
        if len(self.dnat) >= limits.MAX_NAT_ENTRIES:
            raise DpError(E.DNAT_CREATE, "DNAT table full")

        self._add_vnf(VnfEntry(c.underlay, VnfType.VIP, iface.vni, iface.port_id, host_network(vip)))
        snat = self.snat.setdefault(key, SnatEntry())
        snat.vip = vip
        snat.vip_underlay = c.underlay
        self.dnat[(vip, iface.vni)] = iface.ipv4 or _NO_ADDRESS
        self.nat_version += 1
        self.version += 1

    def delete_vip(self, c: cmd.DeleteVip) -> None:
        iface = self.interface(c.interface_id)
        snat = self.snat_of(iface)
        if snat is None or snat.vip is None:
            raise DpError(E.SNAT_NO_DATA, f"{iface.id} has no VIP")
        self._drop_vip(iface, snat)
        self.version += 1

    # NAT gateway slices

    def create_nat(self, c: cmd.CreateNat) -> None:
        iface = self.interface(c.interface_id)
        nat_ip = _ipv4_only(c.nat_ip)
        self._check_vnf_free(c.underlay)
        key = self._snat_key(iface)
        snat = self.snat.get(key)
        if snat is not None and snat.nat is not None:
            raise DpError(E.SNAT_EXISTS, f"{iface.id} has a NAT")
        if snat is None and len(self.snat) >= limits.MAX_NAT_ENTRIES:
            raise DpError(E.SNAT_CREATE, "SNAT table full")
        self._check_dnat_for_nat(nat_ip, iface.vni)

        self._add_vnf(VnfEntry(c.underlay, VnfType.NAT, iface.vni, iface.port_id, host_network(nat_ip)))
        snat = self.snat.setdefault(key, SnatEntry())
        snat.nat = NatRange(nat_ip, c.min_port, c.max_port)
        snat.nat_underlay = c.underlay
        self.dnat[(nat_ip, iface.vni)] = None
        self.nat_version += 1
        self.version += 1

    def delete_nat(self, c: cmd.DeleteNat) -> None:
        iface = self.interface(c.interface_id)
        snat = self.snat_of(iface)
        if snat is None or snat.nat is None:
            raise DpError(E.SNAT_NO_DATA, f"{iface.id} has no NAT")
        self._drop_nat(iface, snat)
        self.version += 1

    def create_neighbor_nat(self, c: cmd.CreateNeighborNat) -> None:
        for n in self.neighbor_nats:
            if n.nat_ip == c.nat_ip and c.max_port > n.min_port and c.min_port < n.max_port:
                raise DpError(E.ALREADY_EXISTS, f"overlaps {n.nat_ip} [{n.min_port},{n.max_port})")
        if len(self.neighbor_nats) >= limits.MAX_NEIGHBOR_NATS:
            raise DpError(E.OUT_OF_MEMORY, "neighbour NAT table full")
        self._check_dnat_for_nat(c.nat_ip, c.vni)

        self.neighbor_nats.append(NeighborNat(c.nat_ip, c.vni, c.min_port, c.max_port, c.underlay))
        self.dnat[(c.nat_ip, c.vni)] = None
        self.nat_version += 1
        self.version += 1

    def delete_neighbor_nat(self, c: cmd.DeleteNeighborNat) -> None:
        wanted = (c.nat_ip, c.vni, c.min_port, c.max_port)
        keys = [(n.nat_ip, n.vni, n.min_port, n.max_port) for n in self.neighbor_nats]
        index = keys.index(wanted) if wanted in keys else None
        if index is None:
            raise DpError(E.NOT_FOUND, f"{c.nat_ip} VNI {c.vni} [{c.min_port},{c.max_port})")
        del self.neighbor_nats[index]
        self._release_nat_dnat(c.nat_ip, c.vni)
        self.nat_version += 1
        self.version += 1

    # load balancers

    def create_load_balancer(self, c: cmd.CreateLoadBalancer) -> None:
        self._check_vnf_free(c.underlay)
        for lb in self.load_balancers.values():
            if lb.vni == c.vni and lb.ip == c.ip:
                raise DpError(E.ALREADY_EXISTS, f"{lb.id} balances {c.ip} in VNI {c.vni}")
        if c.lb_id in self.load_balancers:
            raise DpError(E.ALREADY_EXISTS, c.lb_id)
        if len(self.load_balancers) >= limits.MAX_LOAD_BALANCERS:
            raise DpError(E.OUT_OF_MEMORY, "load balancer table full")
        self._check_vni_available(c.vni)

        pfs = self.pf_ports()
        pf0 = pfs[0].port_id if pfs else -1
        self._add_vnf(VnfEntry(c.underlay, VnfType.LB, c.vni, pf0, host_network(c.ip)))
        self.load_balancers[c.lb_id] = LoadBalancer(c.lb_id, c.vni, c.ip, c.ports, c.underlay)
        self._ref_vni(c.vni)
        self.lb_version += 1
        self.version += 1

    def delete_load_balancer(self, c: cmd.DeleteLoadBalancer) -> None:
        lb = self.load_balancer(c.lb_id)
        self._del_vnf(lb.underlay)
        del self.load_balancers[c.lb_id]
        self._unref_vni(lb.vni)
        self.lb_version += 1
        self.version += 1

    def create_lb_target(self, c: cmd.CreateLbTarget) -> None:
        lb = self.load_balancer(c.lb_id, missing=E.NO_LB)
        if c.target in lb.targets:
            raise DpError(E.ALREADY_EXISTS, str(c.target))
        if len(lb.targets) >= limits.MAX_LB_TARGETS:
            raise DpError(E.BACKIP_ADD, f"{c.lb_id} has {limits.MAX_LB_TARGETS} targets")
        targets = tuple(sorted((*lb.targets, c.target), key=lambda a: a.packed))
        self.load_balancers[c.lb_id] = replace(lb, targets=targets, maglev=c.maglev)
        self.lb_version += 1
        self.version += 1

    def delete_lb_target(self, c: cmd.DeleteLbTarget) -> None:
        lb = self.load_balancer(c.lb_id, missing=E.NO_LB)
        if c.target not in lb.targets:
            raise DpError(E.NOT_FOUND, str(c.target))
        targets = tuple(t for t in lb.targets if t != c.target)
        self.load_balancers[c.lb_id] = replace(lb, targets=targets, maglev=c.maglev if targets else ())
        self.lb_version += 1
        self.version += 1

    # routes

    def create_route(self, c: cmd.CreateRoute) -> None:
        tables = self.tables_of_vni(c.vni)
        net = make_network(c.ip, c.length)
        if net is None:
            raise DpError(E.ROUTE_INSERT, f"bad prefix length {c.length}")
        routes = tables.table(net)
        if net in routes:
            raise DpError(E.ROUTE_EXISTS, str(net))
        if len(routes) >= limits.MAX_ROUTES_PER_VNI:
            raise DpError(E.ROUTE_INSERT, f"VNI {c.vni} route table full")
        routes[net] = RouteEntry(
            net, NextHopKind.UNDERLAY, nexthop=c.nexthop, nexthop_vni=c.nexthop_vni, external=True
        )
        tables.version += 1
        self.version += 1

    def delete_route(self, c: cmd.DeleteRoute) -> None:
        tables = self.tables_of_vni(c.vni)
        net = make_network(c.ip, c.length)
        route = None if net is None else tables.table(net).get(net)
        if route is None or net is None:
            raise DpError(E.ROUTE_NOT_FOUND, f"{c.ip}/{c.length}")
        if not route.external:
            raise DpError(E.ROUTE_BAD_PORT, f"{net} belongs to an interface")
        del tables.table(net)[net]
        tables.version += 1
        self.version += 1

    def reset_vni(self, c: cmd.ResetVni) -> None:
        """Drop every CreateRoute route of a VNI (an unknown VNI is fine: nothing to do)."""
        tables = self.vnis.get(c.vni)
        if tables is None:
            return
        self._reset_routes(tables)
        self.version += 1

    # firewall

    def create_firewall_rule(self, c: cmd.CreateFirewallRule) -> None:
        iface = self.interface(c.interface_id)
        rules = self.firewall.setdefault(iface.id, [])
        if any(r.id == c.rule.id for r in rules):
            raise DpError(E.ALREADY_EXISTS, c.rule.id)
        if c.rule.action is Action.DROP and self.config.fw_drop_compat:
            raise DpError(E.NO_DROP_SUPPORT, "DROP rules rejected (--fw-drop-compat)")
        if len(rules) >= limits.MAX_FIREWALL_RULES_PER_INTERFACE:
            raise DpError(E.OUT_OF_MEMORY, f"{iface.id} has {len(rules)} rules")
        rules.append(c.rule)
        self.firewall_ips[(iface.id, c.rule.id)] = (c.source_ip, c.destination_ip)
        self.firewall_version += 1
        self.version += 1

    def delete_firewall_rule(self, c: cmd.DeleteFirewallRule) -> None:
        iface = self.interface(c.interface_id)
        rules = self.firewall.get(iface.id, [])
        index = next((i for i, rule in enumerate(rules) if rule.id == c.rule_id), None)
        if index is None:
            raise DpError(E.NOT_FOUND, c.rule_id)
        del rules[index]
        self.firewall_ips.pop((iface.id, c.rule_id), None)
        self.firewall_version += 1
        self.version += 1

    # --- helpers --------------------------------------------------------------------------------

    def _snat_key(self, iface: Interface) -> tuple[IPv4Address, int]:
        return (iface.ipv4 or _NO_ADDRESS, iface.vni)

    def _check_vnf_free(self, underlay: IPv6Address) -> None:
        if underlay in self.vnf:
            raise DpError(E.VNF_INSERT, f"underlay {underlay} already registered")
        if len(self.vnf) >= limits.MAX_VNF:
            raise DpError(E.VNF_INSERT, "underlay table full")

    def _add_vnf(self, entry: VnfEntry) -> None:
        self.vnf[entry.underlay] = entry
        self.vnf_version += 1

    def _del_vnf(self, underlay: IPv6Address) -> None:
        del self.vnf[underlay]
        self.prefix_ips.pop(underlay, None)
        self.vnf_version += 1

    def _vnf_prefixes(self, iface: Interface, kind: VnfType) -> Iterator[VnfEntry]:
        for e in list(self.vnf.values()):
            if e.type is kind and e.port_id == iface.port_id and e.vni == iface.vni:
                yield e

    def _find_prefix(self, iface: Interface, kind: VnfType, net: IPNetwork) -> VnfEntry | None:
        return next((e for e in self._vnf_prefixes(iface, kind) if e.prefix == net), None)

    def _check_vni_available(self, vni: int) -> None:
        if vni not in self.vnis and len(self.vnis) >= limits.MAX_VNIS:
            raise DpError(E.VNI_INIT4, f"{limits.MAX_VNIS} VNIs in use")

    def _ref_vni(self, vni: int) -> VniTables:
        tables = self.vnis.get(vni)
        if tables is None:
            tables = self.vnis[vni] = VniTables(vni)
        tables.refcount += 1
        return tables

    def _unref_vni(self, vni: int) -> None:
        """Drop one user of a VNI; the last one takes its routes, neighbour NATs and DNAT keys along."""
        tables = self.vnis[vni]
        tables.refcount -= 1
        if tables.refcount > 0:
            return
        del self.vnis[vni]
        kept = [n for n in self.neighbor_nats if n.vni != vni]
        purged = [k for k in self.dnat if k[1] == vni]
        if len(kept) != len(self.neighbor_nats) or purged:
            self.neighbor_nats[:] = kept
            for key in purged:
                del self.dnat[key]
            self.nat_version += 1

    def _check_routes_free(self, vni: int, nets: list[IPNetwork]) -> None:
        tables = self.vnis.get(vni)
        if tables is None:
            return
        for net in nets:
            routes = tables.table(net)
            if net in routes:
                raise DpError(E.ROUTE_EXISTS, f"{net} in VNI {vni}")
            if len(routes) >= limits.MAX_ROUTES_PER_VNI:
                raise DpError(E.ROUTE_INSERT, f"VNI {vni} route table full")

    def _put_route(self, tables: VniTables, route: RouteEntry) -> None:
        tables.table(route.prefix)[route.prefix] = route
        tables.version += 1

    def _drop_route_of_port(self, tables: VniTables, net: IPNetwork, port_id: int) -> None:
        routes = tables.table(net)
        route = routes.get(net)
        if route is not None and route.kind is NextHopKind.PORT and route.port_id == port_id:
            del routes[net]
            tables.version += 1

    def _reset_routes(self, tables: VniTables) -> None:
        """Keep only the routes interfaces own (their addresses and alias prefixes)."""
        for routes in (tables.routes4, tables.routes6):
            external = [n for n, r in routes.items() if r.external]
            for net in external:
                routes.pop(net)  # type: ignore[arg-type]  # net comes from this very dict
        tables.version += 1

    def _nat_ip_in_use(self, nat_ip: IPv4Address, vni: int) -> bool:
        """Whether a local NAT slice or a neighbour NAT still needs the DNAT key (nat_ip, vni)."""
        return any(n.nat_ip == nat_ip and n.vni == vni for n in self.neighbor_nats) or any(
            e.nat is not None and e.nat.nat_ip == nat_ip and v == vni for (_, v), e in self.snat.items()
        )

    def _check_dnat_for_nat(self, nat_ip: IPv4Address, vni: int) -> None:
        """A NAT IP may share its DNAT key with other NAT slices, never with a VIP."""
        key = (nat_ip, vni)
        if key in self.dnat:
            if self.dnat[key] is not None:
                raise DpError(E.DNAT_EXISTS, f"{nat_ip} is a VIP in VNI {vni}")
        elif len(self.dnat) >= limits.MAX_NAT_ENTRIES:
            raise DpError(E.DNAT_CREATE, "DNAT table full")

    def _release_nat_dnat(self, nat_ip: IPv4Address, vni: int) -> None:
        key = (nat_ip, vni)
        if self.dnat.get(key, False) is None and not self._nat_ip_in_use(nat_ip, vni):
            del self.dnat[key]

    def _drop_vip(self, iface: Interface, snat: SnatEntry) -> None:
        assert snat.vip is not None
        if snat.vip_underlay is not None and snat.vip_underlay in self.vnf:
            self._del_vnf(snat.vip_underlay)
        self.dnat.pop((snat.vip, iface.vni), None)
        snat.vip = snat.vip_underlay = None
        if snat.nat is None:
            del self.snat[self._snat_key(iface)]
        self.nat_version += 1

    def _drop_nat(self, iface: Interface, snat: SnatEntry) -> None:
        assert snat.nat is not None
        if snat.nat_underlay is not None and snat.nat_underlay in self.vnf:
            self._del_vnf(snat.nat_underlay)
        nat_ip = snat.nat.nat_ip
        snat.nat = snat.nat_underlay = None
        if snat.vip is None:
            del self.snat[self._snat_key(iface)]
        self._release_nat_dnat(nat_ip, iface.vni)
        self.nat_version += 1
