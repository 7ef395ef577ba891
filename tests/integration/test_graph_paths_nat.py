"""VIP, NAT gateway, neighbour NAT and NAT64 through the whole pipeline over memory ports.

dpservice's test_flows, test_nat, test_vf_to_pf (NAT/VIP cases), test_vf_to_vf_vip_dnat and the
flow-timeout suite (DPSERVICE.md §6.5) with dpservice's addresses (§6.3): exact addresses, ports,
ICMP identifiers (the NAT port a flow gets is dpservice's, from its jhash), outer headers, and
valid checksums on every frame (``Harness.send`` runs ``testkit.packets`` on all of them). Table
commands go through the nodes' ``before_command`` hooks first, as the dataplane worker applies
them, so the flow purges of DeleteNat / DeleteVip / DeleteNeighborNat / DeleteInterface happen.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.nodes.conntrack import Conntrack
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, PortRange, Protocol
from kubevpc_agent.tables.state import AgentState
from testkit.dp_topology import PF0, PORTS, VM1, VM2, VM3, Vm
from testkit.overlay import ROUTER_MAC, Harness, add_route, build_state, underlay_of

LOCAL_UL = IPv6Address("fc00:1::1")  # --ipv6
ROUTER_UL = IPv6Address("fc00::ffff")
NEIGH_VNI1_UL = IPv6Address("fc00:2::64:0:1")
PUBLIC_IP, PUBLIC_IP2, PUBLIC_IP3 = "45.86.6.6", "45.86.6.106", "45.86.6.206"
PUBLIC_NAT64 = "64:ff9b::2d56:606"
NAT_IP, VIP_IP = "172.21.1.1", "172.20.0.1"
NAT_MIN, NAT_MAX = 100, 102
NEIGH_MIN, NEIGH_MAX = 500, 520
NAT_UL, NAT2_UL, VIP_UL, VIP2_UL = (IPv6Address(f"fc00:1::d000:4e:0:{i}") for i in range(1, 5))


# --- the rig -----------------------------------------------------------------------------------


class Clock:
    """The conntrack node's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def h(clock: Clock) -> Harness:
    """dpservice's prepare_ifaces: VM1..VM4, default routes to the router, the neighbour's /24."""
    state: AgentState = build_state()
    for vni in (100, 200):
        add_route(state, vni, "0.0.0.0/0", ROUTER_UL)
        add_route(state, vni, "::/0", ROUTER_UL)
    add_route(state, 100, "10.100.2.0/24", NEIGH_VNI1_UL)
    harness = Harness(state)
    conntrack = harness.graph.node("conntrack")
    assert isinstance(conntrack, Conntrack)
    conntrack.clock = clock
    return harness


def add_nat(h: Harness, vm: Vm, lo: int = NAT_MIN, hi: int = NAT_MAX, ul: IPv6Address = NAT_UL) -> None:
    h.apply(cmd.CreateNat(vm.name, IPv4Address(NAT_IP), lo, hi, ul))


def add_vip(h: Harness, vm: Vm, ul: IPv6Address = VIP_UL) -> None:
    h.apply(cmd.CreateVip(vm.name, IPv4Address(VIP_IP), ul))


def from_vm(vm: Vm, payload: Packet) -> bytes:
    return bytes(Ether(src=vm.mac, dst=PORTS[vm.port].mac) / payload)


def from_router(dst: IPv6Address, inner: Packet, src: IPv6Address = ROUTER_UL) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac) / IPv6(src=str(src), dst=str(dst), nh=nh) / inner)


def only(out: dict[int, list[bytes]], port: int) -> Ether:
    """The single frame sent (on ``port``, and nowhere else)."""
    assert list(out) == [port], f"frames left on ports {sorted(out)}, expected only {port}"
    assert len(out[port]) == 1, f"{len(out[port])} frames on port {port}"
    return Ether(out[port][0])


def uplink(out: dict[int, list[bytes]], vm: Vm | None = None, dst: IPv6Address = ROUTER_UL) -> Packet:
    """The inner packet of the single frame leaving pf0, checking its outer header."""
    pkt = only(out, PF0)
    assert pkt[IPv6].dst == str(dst)
    assert pkt[IPv6].src == str(underlay_of(vm) if vm is not None else LOCAL_UL)
    assert pkt[IPv6].hlim == 64
    return pkt[IPv6].payload


def to_vm(out: dict[int, list[bytes]], vm: Vm) -> Packet:
    pkt = only(out, vm.port)
    assert (pkt.dst, pkt.src) == (vm.mac, PORTS[vm.port].mac)
    return pkt.payload


# --- NAT gateway -------------------------------------------------------------------------------


def tcp_session(h: Harness, vm: Vm, sport: int, dst: str, dport: int, nat_port: int) -> None:
    """SYN out through the NAT, SYN|ACK back, ACK out, FIN both ways: every frame checked."""
    syn = uplink(
        h.send(vm.port, [from_vm(vm, IP(src=vm.ip, dst=dst) / TCP(sport=sport, dport=dport, flags="S"))]), vm
    )
    assert (syn.src, syn.dst, syn[TCP].sport, syn[TCP].dport, syn[TCP].flags) == (
        NAT_IP,
        dst,
        nat_port,
        dport,
        "S",
    )
    back = from_router(NAT_UL, IP(src=dst, dst=NAT_IP) / TCP(sport=dport, dport=nat_port, flags="SA"))
    synack = to_vm(h.send(PF0, [back]), vm)
    assert (synack.src, synack.dst, synack[TCP].sport, synack[TCP].dport) == (dst, vm.ip, dport, sport)
    for flags in ("A", "FA"):
        out = uplink(
            h.send(
                vm.port, [from_vm(vm, IP(src=vm.ip, dst=dst) / TCP(sport=sport, dport=dport, flags=flags))]
            ),
            vm,
        )
        assert (out.src, out[TCP].sport, out[TCP].flags) == (NAT_IP, nat_port, flags)
    finack = to_vm(
        h.send(
            PF0, [from_router(NAT_UL, IP(src=dst, dst=NAT_IP) / TCP(sport=dport, dport=nat_port, flags="FA"))]
        ),
        vm,
    )
    assert finack[TCP].dport == sport


def test_nat_table_flush(h: Harness) -> None:
    """test_flows.test_nat_table_flush: a one-port NAT re-created with another port moves the session."""
    add_nat(h, VM1, 1024, 1025)
    tcp_session(h, VM1, 12345, PUBLIC_IP, 443, nat_port=1024)
    h.apply(cmd.DeleteNat(VM1.name))
    add_nat(h, VM1, 1025, 1026)
    tcp_session(h, VM1, 12345, PUBLIC_IP, 443, nat_port=1025)


def bounce(dport: int, ul: IPv6Address = NAT_UL) -> bytes:
    """dpservice's send_bounce_pkt_to_pf: TCP from the internet to the NAT IP through its underlay."""
    return from_router(ul, IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=8989, dport=dport))


def test_neighnat_table_flush(h: Harness) -> None:
    """test_flows.test_neighnat_table_flush, with the port dpservice's jhash picks (101)."""
    add_nat(h, VM1)
    tcp_session(h, VM1, 12345, PUBLIC_IP, 443, nat_port=101)
    h.apply(cmd.CreateNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MIN, NEIGH_MAX, NEIGH_VNI1_UL))
    for _ in range(2):  # the second packet follows the relayed flow
        relayed = uplink(h.send(PF0, [bounce(510)]), dst=NEIGH_VNI1_UL)
        assert bytes(relayed) == bytes(IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=8989, dport=510))
    h.apply(cmd.DeleteNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MIN, NEIGH_MAX))
    h.apply(cmd.DeleteNat(VM1.name))
    add_nat(h, VM1, NEIGH_MIN, NEIGH_MIN + 1)
    assert h.send(PF0, [bounce(510)]) == {}  # no longer relayed: premature inbound, dropped
    tcp_session(h, VM1, 12345, PUBLIC_IP, 443, nat_port=NEIGH_MIN)


def test_nat_default_route(h: Harness) -> None:
    """test_nat.test_nat_default_route: only traffic a default route carries is translated."""
    add_nat(h, VM1)
    for prefix, cases in (
        ("128.0.0.0/1", [("127.255.255.255", True), ("128.0.0.0", False)]),
        ("0.0.0.0/1", [("0.0.0.0", False), ("128.0.0.2", True)]),
    ):
        add_route(h.state, 100, prefix, NEIGH_VNI1_UL)
        for dst, natted in cases:
            out = h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=dst) / UDP(dport=1234))])
            pkt = uplink(out, VM1, dst=ROUTER_UL if natted else NEIGH_VNI1_UL)
            assert (pkt.src == NAT_IP) is natted, (prefix, dst, pkt.src)
        h.apply(cmd.DeleteRoute(100, IPv4Address(prefix.split("/")[0]), int(prefix.split("/")[1])))


def external_ping(dst_ip: str, ul: IPv6Address) -> bytes:
    return from_router(ul, IP(src=PUBLIC_IP, dst=dst_ip) / ICMP(type=8, id=0x40, seq=7) / b"ping")


def test_network_nat_external_icmp_echo(h: Harness) -> None:
    """test_nat.test_network_nat_external_icmp_echo: the agent answers pings to the NAT IP."""
    add_nat(h, VM1)
    for _ in range(2):
        reply = uplink(h.send(PF0, [external_ping(NAT_IP, NAT_UL)]))  # outer src: the host's --ipv6
        assert (reply.src, reply.dst) == (NAT_IP, PUBLIC_IP)
        assert (reply[ICMP].type, reply[ICMP].id, reply[ICMP].seq, bytes(reply[ICMP].payload)) == (
            0,
            0x40,
            7,
            b"ping",
        )
    assert h.counters()["packet_relay.echo_replied"] == 2


def test_network_nat_pkt_relay(h: Harness) -> None:
    """test_nat.test_network_nat_pkt_relay: other ranges and NAT users coming and going keep the relay."""
    add_nat(h, VM1)
    h.apply(cmd.CreateNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MIN, NEIGH_MAX, NEIGH_VNI1_UL))
    h.apply(cmd.CreateNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MAX + 1, NEIGH_MAX + 2, NEIGH_VNI1_UL))
    add_nat(h, VM2, NAT_MAX + 10, NAT_MAX + 11, NAT2_UL)
    h.apply(cmd.DeleteNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MAX + 1, NEIGH_MAX + 2))
    h.apply(cmd.DeleteNat(VM2.name))
    relayed = uplink(h.send(PF0, [bounce(510)]), dst=NEIGH_VNI1_UL)
    assert relayed[TCP].dport == 510
    assert h.counters().get("packet_relay.relayed") == 1


def test_relayed_flow_refuses_reply_direction(h: Harness) -> None:
    """A reply-direction packet of a neighbour-NAT flow is dropped by conntrack (dpservice rule)."""
    add_nat(h, VM1)
    h.apply(cmd.CreateNeighborNat(IPv4Address(NAT_IP), 100, NEIGH_MIN, NEIGH_MAX, NEIGH_VNI1_UL))
    uplink(h.send(PF0, [bounce(510)]), dst=NEIGH_VNI1_UL)
    reply = from_router(NAT_UL, IP(src=NAT_IP, dst=PUBLIC_IP) / TCP(sport=510, dport=8989))
    assert h.send(PF0, [reply]) == {}
    assert h.counters()["conntrack.relayed_reply"] == 1


def test_network_nat_foreign_ip(h: Harness) -> None:
    """test_nat.test_network_nat_foreign_ip: traffic to the NAT underlay for another IP is dropped."""
    add_nat(h, VM1)
    foreign = from_router(NAT_UL, IP(src=PUBLIC_IP, dst="1.2.3.4") / TCP(sport=8989, dport=510))
    assert h.send(PF0, [foreign]) == {}


def test_premature_inbound_is_dropped_and_leaves_no_flow(h: Harness) -> None:
    """Inbound to a NAT IP before anything went out is dropped, and cannot block a later NAT flow."""
    add_nat(h, VM1)
    assert h.send(PF0, [from_router(NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=443, dport=101))]) == {}
    assert h.counters()["dnat.premature"] == 1
    tcp_session(h, VM1, 12345, PUBLIC_IP, 443, nat_port=101)


def test_network_nat_to_vip_on_another_vni(h: Harness) -> None:
    """test_nat.test_network_nat_to_vip_on_another_vni: NAT (VNI 100) to a VIP (VNI 200) via the router."""
    add_nat(h, VM1)
    add_vip(h, VM3)
    h.apply(
        cmd.CreateFirewallRule(
            VM3.name,
            FirewallRule(
                "fw0-vm3",
                Direction.INGRESS,
                Action.ACCEPT,
                1000,
                ip_network("0.0.0.0/0"),
                ip_network("0.0.0.0/0"),
                Protocol.TCP,
                dst_ports=PortRange(1024, 1024),
            ),
            IPv4Address("0.0.0.0"),
            IPv4Address("0.0.0.0"),
        ),
    )
    out = uplink(
        h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=VIP_IP) / TCP(sport=4321, dport=1024))]), VM1
    )
    assert (out.src, out.dst) == (NAT_IP, VIP_IP)
    nat_port = out[TCP].sport
    # the router loops it to the VIP's underlay, unchanged
    delivered = to_vm(h.send(PF0, [from_router(VIP_UL, out)]), VM3)
    assert (delivered.src, delivered.dst, delivered[TCP].dport) == (NAT_IP, VM3.ip, 1024)
    answer = uplink(
        h.send(
            VM3.port, [from_vm(VM3, IP(src=VM3.ip, dst=NAT_IP) / TCP(sport=1024, dport=nat_port, flags="SA"))]
        ),
        VM3,
    )
    assert (answer.src, answer.dst) == (VIP_IP, NAT_IP)
    back = to_vm(h.send(PF0, [from_router(NAT_UL, answer)]), VM1)
    assert (back.src, back.dst, back[TCP].sport, back[TCP].dport) == (VIP_IP, VM1.ip, 1024, 4321)


def icmp_echo_through_nat(h: Harness, ident: int, dst: str) -> int:
    """Ping ``dst`` from VM1 through the NAT, answer it; returns the NATed identifier."""
    out = uplink(
        h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=dst) / ICMP(type=8, id=ident, seq=1))]), VM1
    )
    assert (out.src, out.dst, out[ICMP].type) == (NAT_IP, dst, 8)
    nat_id = int(out[ICMP].id)
    reply = from_router(NAT_UL, IP(src=dst, dst=NAT_IP) / ICMP(type=0, id=nat_id, seq=1))
    back = to_vm(h.send(PF0, [reply]), VM1)
    assert (back.src, back.dst, back[ICMP].type, back[ICMP].id) == (dst, VM1.ip, 0, ident)
    return nat_id


def test_vf_to_pf_network_nat_icmp(h: Harness) -> None:
    add_nat(h, VM1)
    assert icmp_echo_through_nat(h, 0x50, PUBLIC_IP3) == 101  # dpservice's jhash of (100, VM1, 0x50)


def test_vf_to_pf_network_nat_icmp_identifier_check(h: Harness) -> None:
    """Two pings with different identifiers to different hosts get different NAT identifiers."""
    add_nat(h, VM1)
    first = icmp_echo_through_nat(h, 0x40, PUBLIC_IP3)
    second = icmp_echo_through_nat(h, 0x50, PUBLIC_IP2)
    assert (first, second) == (100, 101)


def test_vf_to_pf_network_nat_max_port_tcp(h: Harness) -> None:
    """Two flows whose ports hash to the same NAT port: the second takes the other one of [100, 102)."""
    add_nat(h, VM1)
    ports = []
    for sport in (1246, 1547):
        out = uplink(h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP3) / TCP(sport=sport))]), VM1)
        assert out.src == NAT_IP
        ports.append(int(out[TCP].sport))
        back = to_vm(
            h.send(
                PF0, [from_router(NAT_UL, IP(src=PUBLIC_IP3, dst=NAT_IP) / TCP(sport=80, dport=ports[-1]))]
            ),
            VM1,
        )
        assert (back.dst, back[TCP].dport) == (VM1.ip, sport)
    assert ports == [101, 100]
    # a third flow to the same destination finds no port: dropped and counted
    assert h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP3) / TCP(sport=2000))]) == {}
    assert h.counters()["snat.no_nat_port"] == 1


def test_nat_port_is_endpoint_independent(h: Harness) -> None:
    """One VM port keeps its NAT port for every destination (endpoint-independent mapping)."""
    add_nat(h, VM1)
    seen = set()
    for dst in (PUBLIC_IP, PUBLIC_IP2, PUBLIC_IP3):
        out = uplink(
            h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=dst) / UDP(sport=12345, dport=53))]), VM1
        )
        seen.add(int(out[UDP].sport))
    assert seen == {101}


def test_vf_to_pf_network_nat_tcp_with_ipv6(h: Harness) -> None:
    """NAT64 TCP: an IPv6 VM reaches an IPv4 server from the NAT IP, the reply becomes IPv6 again."""
    add_nat(h, VM1)
    syn = IPv6(src=VM1.ipv6, dst=PUBLIC_NAT64, hlim=60) / TCP(sport=1246, dport=443, flags="S") / b"hi"
    out = uplink(h.send(VM1.port, [from_vm(VM1, syn)]), VM1)
    assert isinstance(out, IP)
    assert (out.src, out.dst, out.ttl, out[TCP].dport) == (NAT_IP, PUBLIC_IP, 60, 443)
    nat_port = int(out[TCP].sport)
    assert NAT_MIN <= nat_port < NAT_MAX
    back = to_vm(
        h.send(
            PF0,
            [
                from_router(
                    NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP, ttl=50) / TCP(sport=443, dport=nat_port, flags="SA")
                )
            ],
        ),
        VM1,
    )
    assert isinstance(back, IPv6)
    assert (back.src, back.dst, back.hlim, back[TCP].sport, back[TCP].dport) == (
        PUBLIC_NAT64,
        VM1.ipv6,
        50,
        443,
        1246,
    )


def test_vf_to_pf_network_nat_icmpv6(h: Harness) -> None:
    """NAT64 ping: ICMPv6 echo out as ICMP echo from the NAT IP; the ICMP reply back as ICMPv6."""
    add_nat(h, VM1)
    out = uplink(
        h.send(
            VM1.port, [from_vm(VM1, IPv6(src=VM1.ipv6, dst=PUBLIC_NAT64) / ICMPv6EchoRequest(id=0x77, seq=1))]
        ),
        VM1,
    )
    assert (out.src, out.dst, out[ICMP].type, out[ICMP].code) == (NAT_IP, PUBLIC_IP, 8, 0)
    nat_id = int(out[ICMP].id)
    back = to_vm(
        h.send(PF0, [from_router(NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP) / ICMP(type=0, id=nat_id, seq=1))]),
        VM1,
    )
    assert (back.src, back.dst) == (PUBLIC_NAT64, VM1.ipv6)
    assert (back[ICMPv6EchoReply].id, back[ICMPv6EchoReply].seq) == (0x77, 1)


def test_vm_nat_async_tcp_icmperr(h: Harness) -> None:
    """test_vf_to_pf.test_vm_nat_async_tcp_icmperr: a fragmentation-needed error about a NATed flow."""
    add_nat(h, VM1)
    sent = uplink(
        h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=1256, dport=503))]), VM1
    )
    error = IP(dst=sent.src, src=sent.dst) / ICMP(type=3, code=4, unused=1280) / sent
    got = to_vm(h.send(PF0, [from_router(NAT_UL, error)]), VM1)
    assert (got.src, got.dst, got[ICMP].type, got[ICMP].code) == (PUBLIC_IP, VM1.ip, 3, 4)
    # the embedded packet is VM1's own again, with valid header and TCP checksums
    assert (got[IPerror].src, got[IPerror].dst, got[TCPerror].sport) == (VM1.ip, PUBLIC_IP, 1256)
    inner = IP(bytes(got[IPerror]))
    assert inner.chksum == IP(bytes(inner.copy().__class__(bytes(inner)))).chksum
    probe = inner.copy()
    probe.chksum = None
    probe[TCP].chksum = None
    fresh = IP(bytes(probe))
    assert (inner.chksum, inner[TCP].chksum) == (fresh.chksum, fresh[TCP].chksum)


# --- VIP ---------------------------------------------------------------------------------------


def test_vf_to_pf_vip_snat(h: Harness) -> None:
    """test_vf_to_pf.test_vf_to_pf_vip_snat: VM2's traffic leaves from its VIP, replies come back."""
    add_vip(h, VM2)
    out = uplink(
        h.send(VM2.port, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC_IP) / TCP(sport=1240, dport=100))]), VM2
    )
    assert (out.src, out.dst, out[TCP].sport) == (VIP_IP, PUBLIC_IP, 1240)
    back = to_vm(
        h.send(PF0, [from_router(VIP_UL, IP(src=PUBLIC_IP, dst=VIP_IP) / TCP(sport=100, dport=1240))]), VM2
    )
    assert (back.src, back.dst, back[TCP].dport) == (PUBLIC_IP, VM2.ip, 1240)


def test_inbound_to_vip_reaches_the_vm_and_replies_leave_from_the_vip(h: Harness) -> None:
    add_vip(h, VM2)
    syn = IP(src=PUBLIC_IP, dst=VIP_IP) / TCP(sport=5555, dport=22, flags="S")
    got = to_vm(h.send(PF0, [from_router(VIP_UL, syn)]), VM2)
    assert (got.src, got.dst, got[TCP].dport) == (PUBLIC_IP, VM2.ip, 22)
    answer = uplink(
        h.send(
            VM2.port, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC_IP) / TCP(sport=22, dport=5555, flags="SA"))]
        ),
        VM2,
    )
    assert (answer.src, answer.dst, answer[TCP].sport) == (VIP_IP, PUBLIC_IP, 22)


def test_vf_to_vf_vip_dnat(h: Harness) -> None:
    """test_vf_to_vf.test_vf_to_vf_vip_dnat: VM1 to VM2's VIP inside VNI 100, and the reply."""
    add_vip(h, VM2)
    got = to_vm(h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=VIP_IP) / TCP(sport=1200, dport=80))]), VM2)
    assert (got.src, got.dst) == (VM1.ip, VM2.ip)
    back = to_vm(
        h.send(VM2.port, [from_vm(VM2, IP(src=VM2.ip, dst=VM1.ip) / TCP(sport=80, dport=1200))]), VM1
    )
    assert (back.src, back.dst) == (VIP_IP, VM1.ip)


def test_nat_wins_over_vip_on_the_same_vm(h: Harness) -> None:
    add_vip(h, VM1)
    add_nat(h, VM1)
    out = uplink(
        h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / UDP(sport=12345, dport=53))]), VM1
    )
    assert (out.src, out[UDP].sport) == (NAT_IP, 101)


def test_delete_vip_removes_its_flows(h: Harness) -> None:
    add_vip(h, VM2)
    uplink(h.send(VM2.port, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC_IP) / TCP(sport=1240, dport=100))]), VM2)
    h.apply(cmd.DeleteVip(VM2.name))
    assert h.counters()["conntrack.flows_purged"] == 1
    out = uplink(
        h.send(VM2.port, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC_IP) / TCP(sport=1240, dport=100))]), VM2
    )
    assert out.src == VM2.ip  # a fresh flow, no VIP any more


# --- flow ageing (xtratest_flow_timeout) --------------------------------------------------------


def test_cntrack_nat_timeout_tcp(h: Harness, clock: Clock) -> None:
    """With a single NAT port, the port is free again once the closed session ages out (FIN, then RST)."""
    add_nat(h, VM1, NAT_MIN, NAT_MIN + 1)
    conntrack = h.graph.node("conntrack")
    assert isinstance(conntrack, Conntrack)
    tcp_session(h, VM1, 12344, PUBLIC_IP, 443, nat_port=NAT_MIN)
    # another connection to the same server needs the same (only) port: refused while the flow lives
    rst = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=54321, dport=443, flags="R")
    assert h.send(VM1.port, [from_vm(VM1, rst)]) == {}
    clock.now += 31
    conntrack.age(clock.now)
    out = uplink(h.send(VM1.port, [from_vm(VM1, rst)]), VM1)
    assert out[TCP].sport == NAT_MIN
    clock.now += 31
    conntrack.age(clock.now)
    rst2 = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=54320, dport=443, flags="R")
    assert uplink(h.send(VM1.port, [from_vm(VM1, rst2)]), VM1)[TCP].sport == NAT_MIN


def test_established_tcp_outlives_the_flow_timeout(h: Harness, clock: Clock) -> None:
    add_nat(h, VM1, NAT_MIN, NAT_MIN + 1)
    conntrack = h.graph.node("conntrack")
    assert isinstance(conntrack, Conntrack)
    sport = 40000
    out = uplink(
        h.send(
            VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=sport, dport=443, flags="S"))]
        ),
        VM1,
    )
    h.send(
        PF0,
        [
            from_router(
                NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=443, dport=out[TCP].sport, flags="SA")
            )
        ],
    )
    h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=sport, dport=443, flags="A"))])
    clock.now += 3600
    conntrack.age(clock.now)
    data = from_router(
        NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=443, dport=NAT_MIN, flags="PA") / b"late"
    )
    assert to_vm(h.send(PF0, [data]), VM1)[TCP].dport == sport


def test_syn_scan_flows_age_out(h: Harness, clock: Clock) -> None:
    """SYN-SYNACK-SYN-SYNACK never establishes: the flow expires with the short timeout, freeing the port."""
    add_nat(h, VM1, NAT_MIN, NAT_MIN + 1)
    conntrack = h.graph.node("conntrack")
    assert isinstance(conntrack, Conntrack)
    for _ in range(2):
        h.send(
            VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=12344, dport=443, flags="S"))]
        )
        h.send(
            PF0,
            [from_router(NAT_UL, IP(src=PUBLIC_IP, dst=NAT_IP) / TCP(sport=443, dport=NAT_MIN, flags="SA"))],
        )
    clock.now += 31
    conntrack.age(clock.now)
    rst = IP(src=VM1.ip, dst=PUBLIC_IP) / TCP(sport=54321, dport=443, flags="R")
    assert uplink(h.send(VM1.port, [from_vm(VM1, rst)]), VM1)[TCP].sport == NAT_MIN


def test_delete_interface_removes_its_flows_and_nat_ports(h: Harness) -> None:
    add_nat(h, VM1)
    uplink(h.send(VM1.port, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC_IP) / UDP(sport=1, dport=2))]), VM1)
    snat = h.graph.node("snat")
    assert snat.port_figures() == {"nat_used_ports": {VM1.port: 1}}  # type: ignore[attr-defined]
    h.apply(cmd.DeleteInterface(VM1.name))
    assert snat.port_figures() == {"nat_used_ports": {}}  # type: ignore[attr-defined]
    assert h.counters()["conntrack.flows_purged"] == 1
