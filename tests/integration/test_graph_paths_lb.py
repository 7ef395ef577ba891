"""Load balancer and firewall through the whole pipeline over memory ports, byte for byte.

dpservice's test_lb, test_pf_to_vf and the firewall cases of test_vf_to_pf / test_vf_to_vf
(DPSERVICE.md §6.5, addresses §6.3), plus what they leave out: Maglev spread, stickiness, target
removal, direct server return, recirculation through the VM's firewall, drops per reason and
``--fw-drop-compat``. Table commands are applied the way the dataplane worker applies them
(nodes' ``before_command`` hooks first). Every emitted frame passes ``testkit.packets``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.errors import DpError, ErrorCode
from kubevpc_agent.tables.maglev import build_maglev, sort_targets
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, LbPort, PortRange, Protocol
from kubevpc_agent.tables.state import AgentState
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VM1, VM2, VM3, Vm
from testkit.overlay import ROUTER_MAC, Harness, add_route, build_state, underlay_of

LOCAL_UL = IPv6Address("fc00:1::1")  # --ipv6
ROUTER_UL = IPv6Address("fc00::ffff")
NEIGH_UL = IPv6Address("fc00:2::1")
PUBLIC_IP, PUBLIC_IP6 = "45.86.6.6", "2001:4860:4860::8888"
LB_IP, LB_IP6 = "172.22.2.1", "2a10:defe:e01f:f4::2"
LB_UL, LB6_UL = IPv6Address("fc00:1::4c:0:0:1"), IPv6Address("fc00:1::4c:0:0:2")
LB_PFX_UL, LB6_PFX_UL = IPv6Address("fc00:1::4c:0:0:3"), IPv6Address("fc00:1::4c:0:0:4")
NAT_IP, VIP_IP = "172.21.1.1", "172.20.0.1"
NAT1_UL, NAT2_UL, NAT3_UL, VIP3_UL = (IPv6Address(f"fc00:1::4e:0:0:{i}") for i in range(1, 5))
MULTICAST_MAC = "33:33:00:00:00:01"
REMOTES = [IPv6Address(f"fc00:{n}::64:0:1") for n in range(2, 6)]


# --- the rig -----------------------------------------------------------------------------------


def make_harness(state: AgentState | None = None) -> Harness:
    """dpservice's prepare_ifaces: VM1..VM4 and the default routes of VNI 100 and 200 to the router."""
    state = state or build_state()
    for vni in (100, 200):
        add_route(state, vni, "0.0.0.0/0", ROUTER_UL)
        add_route(state, vni, "::/0", ROUTER_UL)
    return Harness(state)


def create_lb(
    h: Harness, ip: str = LB_IP, underlay: IPv6Address = LB_UL, *ports: tuple[Protocol, int]
) -> None:
    lb_ports = tuple(LbPort(p, n) for p, n in (ports or ((Protocol.TCP, 80),)))
    h.apply(cmd.CreateLoadBalancer("my_lb", 100, ip_address(ip), lb_ports, underlay))


def add_targets(h: Harness, *targets: IPv6Address) -> None:
    for target in targets:
        now = sort_targets([*h.state.load_balancers["my_lb"].targets, target])
        h.apply(cmd.CreateLbTarget("my_lb", target, build_maglev(now)))


def delete_target(h: Harness, target: IPv6Address) -> None:
    rest = [t for t in h.state.load_balancers["my_lb"].targets if t != target]
    h.apply(cmd.DeleteLbTarget("my_lb", target, build_maglev(sort_targets(rest))))


def fw_rule(
    h: Harness,
    vm: Vm,
    rule_id: str,
    direction: Direction = Direction.INGRESS,
    *,
    action: Action = Action.ACCEPT,
    src: str = "0.0.0.0/0",
    dst: str = "0.0.0.0/0",
    protocol: Protocol | None = None,
    dports: tuple[int, int] = (-1, -1),
    priority: int = 1000,
) -> None:
    rule = FirewallRule(
        rule_id,
        direction,
        action,
        priority,
        ip_network(src, strict=False),
        ip_network(dst, strict=False),
        protocol,
        dst_ports=PortRange(*dports),
    )
    given = (ip_address(src.split("/", maxsplit=1)[0]), ip_address(dst.split("/", maxsplit=1)[0]))
    h.apply(cmd.CreateFirewallRule(vm.name, rule, *given))


def from_router(underlay: IPv6Address, inner: Packet, port: int = PF0) -> bytes:
    """What the underlay router sends us: ``inner`` tunnelled to ``underlay`` (dpservice's test framing)."""
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(dst=PORTS[port].mac, src=MULTICAST_MAC)
        / IPv6(src=str(ROUTER_UL), dst=str(underlay), nh=nh)
        / inner
    )


def from_vm(vm: Vm, inner: Packet) -> bytes:
    return bytes(Ether(dst=PORTS[vm.port].mac, src=vm.mac) / inner)


def tunnelled(src: IPv6Address, dst: IPv6Address, inner: bytes, port: int = PF0) -> bytes:
    """The exact frame we emit towards the underlay: ``inner`` (an IP packet) in Ether + IPv6."""
    nh = 4 if inner[0] >> 4 == 4 else 41
    outer = Ether(dst=ROUTER_MAC, src=PORTS[port].mac) / IPv6(src=str(src), dst=str(dst), nh=nh, hlim=64)
    return bytes(outer / inner)


def to_vm(vm: Vm, inner: bytes) -> bytes:
    """The exact frame a VM receives: its learned MAC, the port's own MAC, ``inner`` unchanged."""
    ethertype = 0x0800 if inner[0] >> 4 == 4 else 0x86DD
    return bytes(Ether(dst=vm.mac, src=PORTS[vm.port].mac, type=ethertype)) + inner


def only(out: dict[int, list[bytes]], port: int) -> bytes:
    assert list(out) == [port], f"sent on {sorted(out)}, expected only on {port}"
    assert len(out[port]) == 1
    return out[port][0]


def tcp_to_lb(sport: int, dport: int = 80, src: str = PUBLIC_IP, flags: str = "S") -> Packet:
    return IP(src=src, dst=LB_IP) / TCP(sport=sport, dport=dport, flags=flags)


def lb_setup(h: Harness, *targets: IPv6Address) -> None:
    create_lb(h)
    add_targets(h, *targets)


# --- test_lb.py --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lb_ip", "underlay", "request_"),
    [
        (LB_IP, LB_UL, IP(src=PUBLIC_IP, dst=LB_IP) / ICMP(type=8, id=0x40, seq=1)),
        (LB_IP6, LB6_UL, IPv6(src=PUBLIC_IP6, dst=LB_IP6) / ICMPv6EchoRequest(id=0x40, seq=1)),
    ],
    ids=["test_network_lb_external_icmp_echo", "test_network_lb_external_icmpv6_echo"],
)
def test_echo_to_the_lb_ip_is_answered(lb_ip: str, underlay: IPv6Address, request_: Packet) -> None:
    h = make_harness()
    create_lb(h, lb_ip, underlay, (Protocol.TCP, 80 if ":" not in lb_ip else 443))
    for _ in range(2):
        frame = only(h.send(PF0, [from_router(underlay, request_)]), PF0)
        pkt = Ether(frame)
        assert (pkt.dst, pkt.src) == (ROUTER_MAC, PORTS[PF0].mac)
        assert (pkt[IPv6].src, pkt[IPv6].dst) == (str(LOCAL_UL), str(ROUTER_UL))
        inner = pkt[IPv6].payload
        assert (inner.src, inner.dst) == (lb_ip, request_.src)
        if isinstance(inner, IP):
            assert (inner[ICMP].type, inner[ICMP].code, inner[ICMP].id) == (0, 0, 0x40)
        else:
            assert isinstance(inner.payload, ICMPv6EchoReply) and inner.payload.id == 0x40
    assert h.counters()["lb.echo_request"] == 2


@pytest.mark.parametrize(
    ("lb_ip", "underlay", "inner"),
    [
        (LB_IP, LB_UL, IP(src=PUBLIC_IP, dst=LB_IP) / TCP(sport=8989, dport=80)),
        (LB_IP6, LB6_UL, IPv6(src=PUBLIC_IP6, dst=LB_IP6) / TCP(sport=8989, dport=80)),
    ],
    ids=["test_external_lb_relay", "test_external_lb_relay_ipv6"],
)
def test_external_lb_relay(lb_ip: str, underlay: IPv6Address, inner: Packet) -> None:
    """Relayed out pf0 to the remote target, from the host underlay, inner packet byte for byte."""
    h = make_harness()
    create_lb(h, lb_ip, underlay)
    add_targets(h, NEIGH_UL)
    frame = only(h.send(PF0, [from_router(underlay, inner)]), PF0)
    assert frame == tunnelled(LOCAL_UL, NEIGH_UL, bytes(inner))
    assert h.counters()["lb.forwarded"] == 1


def test_relay_leaves_through_the_uplink_it_arrived_on() -> None:
    h = make_harness()
    lb_setup(h, NEIGH_UL)
    frame = only(h.send(PF1, [from_router(LB_UL, tcp_to_lb(1), PF1)]), PF1)
    assert frame == tunnelled(LOCAL_UL, NEIGH_UL, bytes(tcp_to_lb(1)), PF1)


def test_external_lb_icmp_error_relay() -> None:
    """ICMP 3/4 about a balanced connection (embedded: LB:8080 -> public:8989) follows it to its target.

    dpservice's test sends the error without any connection first and still expects the relay;
    our conntrack drops errors about unknown flows (docs/network-functions.md), so the connection
    comes first here.
    """
    h = make_harness()
    create_lb(h, LB_IP, LB_UL, (Protocol.TCP, 8080))
    add_targets(h, *REMOTES)
    first = Ether(only(h.send(PF0, [from_router(LB_UL, tcp_to_lb(8989, 8080))]), PF0))
    target = first[IPv6].dst
    error = (
        IP(src=PUBLIC_IP, dst=LB_IP)
        / ICMP(type=3, code=4)
        / IP(src=LB_IP, dst=PUBLIC_IP)
        / TCP(sport=8080, dport=8989)
    )
    frame = only(h.send(PF0, [from_router(LB_UL, error)]), PF0)
    assert frame == tunnelled(LOCAL_UL, IPv6Address(target), bytes(error))


def router_loop(h: Harness, frame: bytes, underlay: IPv6Address) -> dict[int, list[bytes]]:
    """dpservice's router_loopback: what left pf0 comes back tunnelled to ``underlay``."""
    pkt = Ether(frame)
    inner = pkt[IPv6].payload
    return h.send(PF0, [from_router(underlay, inner)])


def communicate_vip_lb(h: Harness, vm: Vm, back_ul: IPv6Address, public_src: str, sport: int) -> None:
    """dpservice's communicate_vip_lb: ``vm`` (VIP or NAT) -> LB IP:80 via the router -> VM1, and back."""
    out = only(h.send(vm.port, [from_vm(vm, IP(src=vm.ip, dst=LB_IP) / TCP(sport=sport, dport=80))]), PF0)
    request = Ether(out)
    assert request[IPv6].dst == str(ROUTER_UL)
    assert (request[IP].src, request[IP].dst) == (public_src, LB_IP)
    delivered = Ether(only(router_loop(h, out, LB_UL), VM1.port))
    assert (delivered[IP].dst, delivered[TCP].dport) == (LB_IP, 80)  # no DNAT: VM1 owns the LB IP
    assert delivered[IP].src == public_src
    reply = IP(src=LB_IP, dst=delivered[IP].src) / TCP(sport=80, dport=delivered[TCP].sport, flags="SA")
    out = only(h.send(VM1.port, [from_vm(VM1, reply)]), PF0)
    dsr = Ether(out)
    assert (dsr[IPv6].src, dsr[IPv6].dst) == (str(underlay_of(VM1)), str(ROUTER_UL))  # VM1's own underlay
    assert (dsr[IP].src, dsr[IP].dst) == (LB_IP, public_src)  # direct server return from the LB IP
    back = Ether(only(router_loop(h, out, back_ul), vm.port))
    assert (back[IP].dst, back[TCP].dport, back[TCP].sport) == (vm.ip, sport, 80)


def test_nat_to_lb_nat() -> None:
    h = make_harness()
    create_lb(h)
    h.apply(cmd.CreateLbPrefix(VM1.name, IPv4Address(LB_IP), 32, LB_PFX_UL))
    add_targets(h, LB_PFX_UL)
    h.apply(cmd.CreateNat(VM1.name, IPv4Address(NAT_IP), 100, 101, NAT1_UL))
    fw_rule(h, VM1, "fw0-vm1", protocol=Protocol.TCP, dports=(80, 80))
    h.apply(cmd.CreateNat(VM2.name, IPv4Address(NAT_IP), 400, 401, NAT2_UL))
    communicate_vip_lb(h, VM2, NAT2_UL, NAT_IP, 2400)


def test_vip_nat_to_lb_on_another_vni() -> None:
    h = make_harness()
    create_lb(h)
    h.apply(cmd.CreateLbPrefix(VM1.name, IPv4Address(LB_IP), 32, LB_PFX_UL))
    add_targets(h, LB_PFX_UL)
    h.apply(cmd.CreateVip(VM3.name, IPv4Address(VIP_IP), VIP3_UL))
    fw_rule(h, VM1, "fw0-vm1", protocol=Protocol.TCP, dports=(80, 80))
    communicate_vip_lb(h, VM3, VIP3_UL, VIP_IP, 1252)
    communicate_vip_lb(h, VM3, VIP3_UL, VIP_IP, 1252)
    h.apply(cmd.DeleteVip(VM3.name))
    h.apply(cmd.CreateNat(VM3.name, IPv4Address(NAT_IP), 100, 102, NAT3_UL))
    communicate_vip_lb(h, VM3, NAT3_UL, NAT_IP, 1234)


# --- test_pf_to_vf.py: local targets, recirculation ---------------------------------------------


@pytest.mark.parametrize(
    ("lb_ip", "underlay", "prefix_ul", "inner"),
    [
        (LB_IP, LB_UL, LB_PFX_UL, IP(src=PUBLIC_IP, dst=LB_IP) / TCP(sport=1234, dport=80)),
        (LB_IP6, LB6_UL, LB6_PFX_UL, IPv6(src=PUBLIC_IP6, dst=LB_IP6) / TCP(sport=1234, dport=80)),
    ],
    ids=["test_pf_to_vf_lb_tcp", "test_pf_to_vf_lb_ipv6_tcp"],
)
def test_pf_to_vf_lb(lb_ip: str, underlay: IPv6Address, prefix_ul: IPv6Address, inner: Packet) -> None:
    """A local target: recirculated, delivered to VM1 unchanged (dst = the LB IP), nothing on the wire."""
    h = make_harness()
    create_lb(h, lb_ip, underlay)
    h.apply(cmd.CreateLbPrefix(VM1.name, ip_address(lb_ip), 32 if ":" not in lb_ip else 128, prefix_ul))
    add_targets(h, prefix_ul)
    any_prefix = "0.0.0.0/0" if ":" not in lb_ip else "::/0"
    fw_rule(h, VM1, "fw0-vm1", src=any_prefix, dst=any_prefix, protocol=Protocol.TCP, dports=(80, 80))
    frame = only(h.send(PF0, [from_router(underlay, inner)]), VM1.port)
    assert frame == to_vm(VM1, bytes(inner))
    c = h.counters()
    assert (c["lb.recirculated"], c["ipip_encap.recirculated"], c["firewall.accepted"]) == (1, 1, 1)


def test_recirculated_traffic_meets_the_vms_ingress_rules() -> None:
    h = make_harness()
    create_lb(h, LB_IP, LB_UL, (Protocol.TCP, 80), (Protocol.TCP, 443))
    h.apply(cmd.CreateLbPrefix(VM1.name, IPv4Address(LB_IP), 32, LB_PFX_UL))
    add_targets(h, LB_PFX_UL)
    fw_rule(h, VM1, "https-only", protocol=Protocol.TCP, dports=(443, 443))
    assert h.send(PF0, [from_router(LB_UL, tcp_to_lb(1, 80))]) == {}
    assert list(h.send(PF0, [from_router(LB_UL, tcp_to_lb(1, 443))])) == [VM1.port]
    assert h.counters()["firewall.ingress_no_match"] == 1


def test_direct_server_return_and_stickiness_of_a_local_target() -> None:
    """A whole exchange: SYN in, SYN-ACK straight out (src = LB IP), ACK in again to the same VM."""
    h = make_harness()
    create_lb(h)
    h.apply(cmd.CreateLbPrefix(VM1.name, IPv4Address(LB_IP), 32, LB_PFX_UL))
    add_targets(h, LB_PFX_UL)
    assert list(h.send(PF0, [from_router(LB_UL, tcp_to_lb(5555))])) == [VM1.port]
    synack = IP(src=LB_IP, dst=PUBLIC_IP) / TCP(sport=80, dport=5555, flags="SA")
    out = only(h.send(VM1.port, [from_vm(VM1, synack)]), PF0)
    assert out == tunnelled(underlay_of(VM1), ROUTER_UL, bytes(synack))
    ack = tcp_to_lb(5555, flags="A")
    assert only(h.send(PF0, [from_router(LB_UL, ack)]), VM1.port) == to_vm(VM1, bytes(ack))
    assert h.counters()["lb.followed"] == 1


# --- Maglev through the pipeline: spread, stickiness, removal -------------------------------------


def targets_of(out: dict[int, list[bytes]]) -> list[str]:
    return [Ether(f)[IPv6].dst for f in out.get(PF0, [])]


def test_thousand_flows_spread_within_a_quarter_of_even_over_four_targets() -> None:
    h = make_harness()
    lb_setup(h, *REMOTES)
    frames = [from_router(LB_UL, tcp_to_lb(10000 + i)) for i in range(1000)]
    counts = Counter(targets_of(h.send(PF0, frames)))
    assert set(counts) == {str(t) for t in REMOTES}
    assert all(187.5 <= n <= 312.5 for n in counts.values()), counts


def test_removing_a_target_moves_only_its_flows() -> None:
    h = make_harness()
    lb_setup(h, *REMOTES)
    sports = range(20000, 20400)
    before = targets_of(h.send(PF0, [from_router(LB_UL, tcp_to_lb(s)) for s in sports]))
    gone = str(REMOTES[2])
    delete_target(h, REMOTES[2])
    after = targets_of(h.send(PF0, [from_router(LB_UL, tcp_to_lb(s, flags="A")) for s in sports]))
    assert gone not in after
    assert [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a] == [
        i for i, b in enumerate(before) if b == gone
    ]
    added = [*REMOTES[:2], IPv6Address("fc00:9::64:0:1")]
    add_targets(h, added[2])
    again = targets_of(h.send(PF0, [from_router(LB_UL, tcp_to_lb(s, flags="A")) for s in sports]))
    assert again == after  # adding a target moves no established flow


def test_drops_are_counted_per_reason() -> None:
    h = make_harness()
    create_lb(h)
    frames = [
        from_router(LB_UL, tcp_to_lb(1)),  # no targets yet
        from_router(LB_UL, tcp_to_lb(2, dport=81)),
        from_router(LB_UL, IP(src=PUBLIC_IP, dst="172.22.2.2") / TCP(sport=3, dport=80)),
    ]
    assert h.send(PF0, frames) == {}
    c = h.counters()
    assert (c["lb.no_targets"], c["lb.port_not_balanced"], c["lb.not_an_lb_address"]) == (1, 1, 1)
    assert h.pool.available == h.pool.capacity


# --- firewall: test_vf_to_pf / test_vf_to_vf cases ------------------------------------------------


def test_vf_to_pf_firewall_tcp_allow_and_block() -> None:
    h = make_harness()
    fw_rule(h, VM1, "fw1-vm1", Direction.EGRESS, protocol=Protocol.TCP, dports=(453, 453))
    allowed = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=1, dport=453)
    assert only(h.send(VM1.port, [from_vm(VM1, allowed)]), PF0) == tunnelled(
        underlay_of(VM1), ROUTER_UL, bytes(allowed)
    )
    assert h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=1, dport=1024))]) == {}
    assert h.counters()["firewall.egress_no_match"] == 1


def test_vf_to_pf_firewall_ipv6_tcp_allow() -> None:
    h = make_harness()
    fw_rule(
        h, VM1, "fw1-vm16", Direction.EGRESS, src="::/0", dst="::/0", protocol=Protocol.TCP, dports=(456, 456)
    )
    allowed = IPv6(src=VM1.ipv6, dst=PUBLIC_IP6) / TCP(sport=1, dport=456)
    assert list(h.send(VM1.port, [from_vm(VM1, allowed)])) == [PF0]


@pytest.mark.parametrize(
    ("src", "delivered"), [(f"{VM1.ip}/32", True), ("1.2.3.4/16", False)], ids=["test1", "test2"]
)
def test_vf_to_vf_firewall_tcp(src: str, delivered: bool) -> None:
    h = make_harness()
    fw_rule(h, VM2, "fw1-vm2", src=src, protocol=Protocol.TCP)
    pkt = IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=1001, dport=1234)
    out = h.send(VM1.port, [from_vm(VM1, pkt)])
    assert out == ({VM2.port: [to_vm(VM2, bytes(pkt))]} if delivered else {})


def test_replies_to_allowed_egress_pass_other_inbound_does_not() -> None:
    h = make_harness()
    fw_rule(h, VM1, "web-out", Direction.EGRESS, protocol=Protocol.TCP, dports=(443, 443))
    fw_rule(h, VM1, "nothing-in", Direction.INGRESS, protocol=Protocol.UDP, dports=(1, 1))
    syn = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=40000, dport=443, flags="S")
    assert list(h.send(VM1.port, [from_vm(VM1, syn)])) == [PF0]
    synack = IP(src=PUBLIC_IP, dst=VM1.ip) / TCP(sport=443, dport=40000, flags="SA")
    assert only(h.send(PF0, [from_router(underlay_of(VM1), synack)]), VM1.port) == to_vm(VM1, bytes(synack))
    unsolicited = IP(src=PUBLIC_IP, dst=VM1.ip) / TCP(sport=443, dport=40001, flags="S")
    assert h.send(PF0, [from_router(underlay_of(VM1), unsolicited)]) == {}


def test_vf_to_vf_icmp_with_icmp_rules_both_ways() -> None:
    h = make_harness()
    for vm in (VM1, VM2):
        fw_rule(h, vm, "fw0-vm-icmp", protocol=Protocol.ICMP)
    request = IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8, id=0x40)
    reply = IP(src=VM2.ip, dst=VM1.ip) / ICMP(type=0, id=0x40)
    for _ in range(2):
        assert list(h.send(VM1.port, [from_vm(VM1, request)])) == [VM2.port]
        assert list(h.send(VM2.port, [from_vm(VM2, reply)])) == [VM1.port]


def test_drop_rules_are_accepted_and_enforced() -> None:
    """A DROP rule ahead of a catch-all ACCEPT that was inserted first: priority decides."""
    h = make_harness()
    fw_rule(h, VM2, "rest", priority=2000)
    fw_rule(h, VM2, "no-ssh", action=Action.DROP, protocol=Protocol.TCP, dports=(22, 22))
    assert h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=5, dport=22))]) == {}
    assert list(h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=VM2.ip) / TCP(sport=5, dport=80))])) == [
        VM2.port
    ]
    assert h.counters()["firewall.ingress_rule_drop"] == 1


def test_fw_drop_compat_refuses_drop_rules_and_enforces_nothing() -> None:
    """--fw-drop-compat is dpservice: DROP rules get 441, and computed drops are only counted."""
    h = make_harness(build_state(replace(CONFIG, fw_drop_compat=True)))
    with pytest.raises(DpError) as refused:
        fw_rule(h, VM2, "no-ssh", action=Action.DROP, protocol=Protocol.TCP, dports=(22, 22))
    assert refused.value.code is ErrorCode.NO_DROP_SUPPORT
    assert int(ErrorCode.NO_DROP_SUPPORT) == 441
    fw_rule(h, VM1, "fw0-vm1", Direction.EGRESS, protocol=Protocol.TCP, dports=(453, 453))
    blocked = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=1, dport=1024)  # test_vf_to_pf_firewall_tcp_block
    assert list(h.send(VM1.port, [from_vm(VM1, blocked)])) == [PF0]
    c = h.counters()
    assert (c["firewall.egress_no_match"], c["firewall.not_enforced"]) == (1, 1)


# --- xtratest_flow_timeout's LB cases -------------------------------------------------------------


def age_out_flows(h: Harness) -> None:
    """dpservice's age_out_flows (sleep flow_timeout + 1): conntrack's ageing at a time that far ahead."""
    conntrack = h.graph.node("conntrack")
    later = conntrack.clock() + h.state.config.flow_timeout + 1  # type: ignore[attr-defined]
    conntrack.age(later)  # type: ignore[attr-defined]
    assert conntrack.flows.count == 0  # type: ignore[attr-defined]


def bounce(h: Harness) -> str:
    """send_bounce_pkt_to_pf + sniff_lb_pkt: the outer destination the relayed packet gets."""
    frame = only(h.send(PF0, [from_router(LB_UL, tcp_to_lb(8989))]), PF0)
    return str(Ether(frame)[IPv6].dst)


def test_external_lb_relay_timeout() -> None:
    h = make_harness()
    lb_setup(h, NEIGH_UL)
    assert bounce(h) == str(NEIGH_UL)
    age_out_flows(h)
    assert bounce(h) == str(NEIGH_UL)


def test_external_lb_relay_algorithm() -> None:
    """Deleted targets are never chosen; the choice survives ageing and other targets' deletion."""
    h = make_harness()
    targets = [IPv6Address(f"fc00:2::{i}") for i in range(1, 7)]
    lb_setup(h, *targets)
    delete_target(h, targets[2])  # "holes" in the target table
    delete_target(h, targets[0])
    chosen = bounce(h)
    assert chosen not in (str(targets[2]), str(targets[0]))
    left = [t for i, t in enumerate(targets) if i not in (0, 2)]
    age_out_flows(h)
    assert bounce(h) == chosen  # the same 5-tuple gets the same target after conntrack forgot it
    age_out_flows(h)
    other = next(t for t in left if str(t) != chosen)
    delete_target(h, other)
    assert bounce(h) == chosen  # Maglev keeps it through another target's deletion
    delete_target(h, IPv6Address(chosen))
    assert bounce(h) != chosen  # no ageing needed: its flow went with it
