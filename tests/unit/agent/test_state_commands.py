"""AgentState under random command sequences: errors change nothing, replicas stay identical.

Hypothesis draws sequences of commands from a deliberately small universe (few ids, addresses,
VNIs and underlays), so clashes, missing objects and full tables happen often. After every
command: if it failed, the state equals a deep copy taken before; if it succeeded, a replica that
applied the same commands equals the authoritative state (the dataplane's view), and the tables'
cross-references hold.
"""

from __future__ import annotations

import copy
from ipaddress import IPv4Address, IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.errors import DpError
from kubevpc_agent.tables.maglev import build_maglev, sort_targets
from kubevpc_agent.tables.model import (
    Action,
    Direction,
    FirewallRule,
    LbPort,
    NextHopKind,
    Protocol,
    VnfType,
)
from kubevpc_agent.tables.state import AgentState, make_network
from testkit.agent_api import Topology

IDS = st.sampled_from(["vm1", "vm2", "vm3"])
DEVICES = st.sampled_from(["net_tap0", "net_tap2", "net_tap3", "net_tap4", "nope"])
VNIS = st.sampled_from([100, 200, 300])
IPV4 = st.sampled_from(["10.0.0.1", "10.0.0.2", "0.0.0.0", "192.168.0.0"]).map(IPv4Address)
IPV6 = st.sampled_from(["2001:db8::1", "2001:db8::2", "::"]).map(IPv6Address)
ANY_IP = st.one_of(IPV4, IPV6)
UNDERLAYS = st.sampled_from([f"fc00:1::d000:0:0:{i}" for i in range(1, 9)]).map(IPv6Address)
PREFIX_LEN = st.sampled_from([0, 8, 24, 32, 64, 129])
PORTS = st.sampled_from([(100, 200), (150, 300), (300, 400)])
LB_IDS = st.sampled_from(["lb1", "lb2"])
TARGETS = st.sampled_from(["2001:db8::a", "2001:db8::b", "2001:db8::c"]).map(IPv6Address)


def _fw_rule(rule_id: str, action: Action, src: IPv4Address) -> FirewallRule:
    net = make_network(src, 24)
    assert net is not None
    return FirewallRule(rule_id, Direction.INGRESS, action, 1000, net, net, Protocol.TCP)


def _maglev_after(targets: list[IPv6Address]) -> tuple[int, ...]:
    return build_maglev(sort_targets(targets))


COMMANDS = st.one_of(
    st.just(cmd.Initialize()),
    st.builds(
        lambda i, d, v, a4, a6, u: cmd.CreateInterface(i, d, v, None if a4 == IPv4Address(0) else a4,
                                                       None if a6 == IPv6Address(0) else a6, u),
        IDS, DEVICES, VNIS, IPV4, IPV6, UNDERLAYS,
    ),
    st.builds(cmd.DeleteInterface, IDS),
    st.builds(cmd.CreatePrefix, IDS, IPV4, PREFIX_LEN, UNDERLAYS),
    st.builds(cmd.DeletePrefix, IDS, IPV4, PREFIX_LEN),
    st.builds(cmd.CreateLbPrefix, IDS, ANY_IP, st.sampled_from([24, 32, 64]), UNDERLAYS),
    st.builds(cmd.DeleteLbPrefix, IDS, ANY_IP, st.sampled_from([24, 32, 64])),
    st.builds(cmd.CreateVip, IDS, ANY_IP, UNDERLAYS),
    st.builds(cmd.DeleteVip, IDS),
    st.builds(lambda i, ip, p, u: cmd.CreateNat(i, ip, p[0], p[1], u), IDS, ANY_IP, PORTS, UNDERLAYS),
    st.builds(cmd.DeleteNat, IDS),
    st.builds(lambda ip, v, p, u: cmd.CreateNeighborNat(ip, v, p[0], p[1], u), IPV4, VNIS, PORTS, UNDERLAYS),
    st.builds(lambda ip, v, p: cmd.DeleteNeighborNat(ip, v, p[0], p[1]), IPV4, VNIS, PORTS),
    st.builds(
        lambda i, v, ip, u: cmd.CreateLoadBalancer(i, v, ip, (LbPort(Protocol.TCP, 80),), u),
        LB_IDS, VNIS, ANY_IP, UNDERLAYS,
    ),
    st.builds(cmd.DeleteLoadBalancer, LB_IDS),
    st.builds(lambda i, t, others: cmd.CreateLbTarget(i, t, _maglev_after([t, *others])), LB_IDS, TARGETS,
              st.lists(TARGETS, max_size=2, unique=True)),
    st.builds(lambda i, t: cmd.DeleteLbTarget(i, t, ()), LB_IDS, TARGETS),
    st.builds(lambda v, ip, n, nh: cmd.CreateRoute(v, ip, n, nh, 0), VNIS, ANY_IP, PREFIX_LEN, TARGETS),
    st.builds(cmd.DeleteRoute, VNIS, ANY_IP, PREFIX_LEN),
    st.builds(cmd.ResetVni, VNIS),
    st.builds(
        lambda i, r, a, src: cmd.CreateFirewallRule(i, _fw_rule(r, a, src), src, src),
        IDS, st.sampled_from(["r1", "r2"]), st.sampled_from([Action.ACCEPT, Action.DROP]), IPV4,
    ),
    st.builds(cmd.DeleteFirewallRule, IDS, st.sampled_from(["r1", "r2"])),
)  # fmt: skip


def check_invariants(state: AgentState) -> None:
    users: dict[int, int] = {}
    for iface in state.interfaces.values():
        users[iface.vni] = users.get(iface.vni, 0) + 1
        assert state.port_interface[iface.port_id] == iface.id
        assert state.vnf[iface.underlay].type is VnfType.INTERFACE_IP
        tables = state.vnis[iface.vni]
        for addr in (iface.ipv4, iface.ipv6):
            if addr is not None:
                net = make_network(addr, addr.max_prefixlen)
                assert net is not None and tables.table(net)[net].port_id == iface.port_id
    for lb in state.load_balancers.values():
        users[lb.vni] = users.get(lb.vni, 0) + 1
        assert state.vnf[lb.underlay].type is VnfType.LB
        assert list(lb.targets) == sorted(lb.targets, key=lambda t: t.packed)
    assert {v: t.refcount for v, t in state.vnis.items()} == users
    bound = {VnfType.INTERFACE_IP, VnfType.ALIAS_PFX, VnfType.LB_ALIAS_PFX, VnfType.VIP, VnfType.NAT}
    for entry in state.vnf.values():
        if entry.type in bound:
            assert entry.port_id in state.port_interface, f"orphaned underlay {entry}"
    for (nat_ip, vni), target in state.dnat.items():
        if target is None:  # a NAT IP: some local or neighbour NAT still needs it
            local = any(e.nat and e.nat.nat_ip == nat_ip and v == vni for (_, v), e in state.snat.items())
            neigh = any(n.nat_ip == nat_ip and n.vni == vni for n in state.neighbor_nats)
            assert local or neigh, f"stale DNAT key {nat_ip} VNI {vni}"
    for tables in state.vnis.values():
        for routes in (tables.routes4, tables.routes6):
            for net, route in routes.items():
                assert route.prefix == net
                if route.kind is NextHopKind.PORT:
                    assert route.port_id in state.port_interface


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMANDS, min_size=1, max_size=40))
def test_errors_change_nothing_and_replicas_agree(commands: list[cmd.Command]) -> None:
    config = Topology("0000").config()
    state, replica = AgentState(config), AgentState(config)
    for command in commands:
        before = copy.deepcopy(state)
        try:
            state.apply(command)
        except DpError:
            assert state == before, f"{command} failed but changed the state"
            continue
        replica.apply(command)
        assert replica == state
        check_invariants(state)


UL1 = IPv6Address("fc00:1::d000:0:0:1")


def test_versions_bump_on_every_change() -> None:
    state = AgentState(Topology("0000").config())
    v0 = state.version
    state.apply(cmd.CreateInterface("vm1", "net_tap2", 100, IPv4Address("10.0.0.1"), None, UL1))
    tables = state.vnis[100]
    assert state.version > v0 and state.vnf_version > 0 and tables.version > 0
    route_version = tables.version
    state.apply(cmd.CreateRoute(100, IPv4Address("1.0.0.0"), 8, IPv6Address("fc00::1")))
    assert tables.version > route_version
    fw = state.firewall_version
    rule = _fw_rule("r", Action.ACCEPT, IPv4Address("1.1.1.0"))
    state.apply(cmd.CreateFirewallRule("vm1", rule, IPv4Address(0), IPv4Address(0)))
    assert state.firewall_version > fw
    nat, lb = state.nat_version, state.lb_version
    state.apply(cmd.CreateVip("vm1", IPv4Address("5.5.5.5"), IPv6Address("fc00:1::d000:0:0:2")))
    state.apply(
        cmd.CreateLoadBalancer("lb", 100, IPv4Address("6.6.6.6"), (), IPv6Address("fc00:1::d000:0:0:3"))
    )
    assert state.nat_version > nat and state.lb_version > lb


def test_fw_drop_compat_rejects_drop_rules() -> None:
    state = AgentState(Topology("0000").config(fw_drop_compat=True))
    state.apply(cmd.CreateInterface("vm1", "net_tap2", 100, IPv4Address("10.0.0.1"), None, UL1))
    rule = _fw_rule("r", Action.DROP, IPv4Address("1.1.1.0"))
    try:
        state.apply(cmd.CreateFirewallRule("vm1", rule, IPv4Address(0), IPv4Address(0)))
    except DpError as exc:
        assert int(exc.code) == 441
    else:
        raise AssertionError("DROP accepted with fw_drop_compat")
