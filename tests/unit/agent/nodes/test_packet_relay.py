"""packet_relay: echo replies for NAT/LB IPs and neighbour-NAT relays, exact frames and next hops."""

from __future__ import annotations

from ipaddress import IPv6Address

from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.nodes.packet_relay import Next
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables import commands as cmd
from testkit.dp_topology import PF0, PF1, PORTS, VM1, VM2
from testkit.nat_rig import NAT_IP, NAT_UL, NatRig
from testkit.overlay import ROUTER_MAC, run_node, underlay_of
from testkit.packets import assert_valid

PUBLIC = "45.86.6.6"
ASKER = IPv6Address("fc00:9::42")  # the underlay address the request came from
NEIGH_UL = IPv6Address("fc00:2::64:0:1")


def from_router(dst: IPv6Address, inner: Packet, port: int = PF0) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(src=ROUTER_MAC, dst=PORTS[port].mac) / IPv6(src=str(ASKER), dst=str(dst), nh=nh) / inner
    )


def test_echo_request_to_the_nat_ip_is_answered_towards_the_asker() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    batch = rig.upto(
        rig.relay,
        [
            from_router(
                NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP), ttl=50) / ICMP(type=8, id=0x40, seq=5) / b"abc"
            )
        ],
        PF0,
    )
    run = run_node(rig.relay, batch)
    assert run.edges == [Next.IPIP_ENCAP]
    pkt = assert_valid(run.frames[0]).payload
    assert bytes(pkt) == bytes(
        IP(bytes(IP(src=str(NAT_IP), dst=PUBLIC, ttl=50) / ICMP(type=0, id=0x40, seq=5) / b"abc"))
    )
    assert (int(batch.nh_hi[0]), int(batch.nh_lo[0])) == split(ASKER)
    assert int(batch.tx_port[0]) == PF0
    assert run.counters == {"echo_replied": 1}


def test_icmpv6_echo_is_answered_on_the_uplink_it_came_in() -> None:
    rig = NatRig()
    request = IPv6(src="2001:db8::1", dst=VM2.ipv6, hlim=9) / ICMPv6EchoRequest(id=3, seq=4) / b"v6"
    batch = rig.upto(rig.relay, [from_router(underlay_of(VM2), request, port=PF1)], PF1)
    run = run_node(rig.relay, batch)
    assert run.edges == [Next.IPIP_ENCAP]
    pkt = assert_valid(run.frames[0]).payload
    assert (pkt.src, pkt.dst, pkt.hlim) == (VM2.ipv6, "2001:db8::1", 9)
    assert (pkt[ICMPv6EchoReply].id, pkt[ICMPv6EchoReply].seq) == (3, 4)
    assert int(batch.tx_port[0]) == PF1


def test_neighbour_flow_is_relayed_untouched() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    rig.apply(cmd.CreateNeighborNat(NAT_IP, 100, 500, 520, NEIGH_UL))
    inner = IP(src=PUBLIC, dst=str(NAT_IP)) / TCP(sport=8989, dport=510)
    batch = rig.upto(rig.relay, [from_router(NAT_UL, inner)], PF0)
    run = run_node(rig.relay, batch)
    assert run.edges == [Next.IPIP_ENCAP]
    assert bytes(assert_valid(run.frames[0]).payload) == bytes(inner)
    assert (int(batch.nh_hi[0]), int(batch.nh_lo[0])) == split(NEIGH_UL)
    assert run.counters == {"relayed": 1}


def test_what_is_neither_is_dropped() -> None:
    rig = NatRig()
    tcp = IP(src=PUBLIC, dst=VM1.ip) / TCP()
    from_uplink = rig.upto(rig.relay, [from_router(underlay_of(VM1), tcp)], PF0)
    assert run_node(rig.relay, from_uplink).counters == {"not_relayable": 1}
    ping = Ether(src=VM1.mac, dst=PORTS[VM1.port].mac) / IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=8)
    from_vm = rig.upto(rig.relay, [bytes(ping)], VM1.port)
    run = run_node(rig.relay, from_vm)
    assert run.edges == [Next.DROP] and run.counters == {"not_from_uplink": 1}
