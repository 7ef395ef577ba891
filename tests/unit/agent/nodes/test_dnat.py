"""dnat: VIP translation, NAT-IP echo / neighbour relay / premature drops, NAT and NAT64 reply restore."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.graph.batch import L3
from kubevpc_agent.nodes.dnat import Next
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import Dir, FlowFlag, NatType, make_keys
from testkit.dp_topology import PF0, PORTS, VM1, VM2, Vm
from testkit.nat_rig import NAT_IP, NAT_UL, VIP_IP, VIP_UL, NatRig
from testkit.overlay import ROUTER_MAC, run_node
from testkit.packets import assert_valid

PUBLIC = "45.86.6.6"
NEIGH_UL = IPv6Address("fc00:2::64:0:1")


def from_vm(vm: Vm, payload: Packet) -> bytes:
    return bytes(Ether(src=vm.mac, dst=PORTS[vm.port].mac) / payload)


def from_router(dst: IPv6Address, inner: Packet) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac) / IPv6(src="fc00::ffff", dst=str(dst), nh=nh) / inner
    )


def inner(frame: bytes) -> Packet:
    """The IP packet of a frame dnat produced (decapsulated, Ethernet to the VM port)."""
    return assert_valid(frame).payload


def test_inbound_to_a_vip_becomes_the_vm_and_expects_its_replies() -> None:
    rig = NatRig()
    rig.add_vip(VM2)
    batch = rig.upto(
        rig.dnat, [from_router(VIP_UL, IP(src=PUBLIC, dst=str(VIP_IP)) / TCP(sport=9, dport=22))], PF0
    )
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.IPV4_LOOKUP]
    pkt = inner(run.frames[0])
    assert (pkt.src, pkt.dst, pkt[TCP].dport) == (PUBLIC, VM2.ip, 22)
    assert run.counters == {"vip_dnat": 1}
    f = int(batch.flow[0])
    assert rig.flows.flags[f] & FlowFlag.DST_NAT
    # the reply key now names the VM as its source
    reply = make_keys(
        l3=batch.l3[:1], proto=batch.proto[:1], src_hi=batch.dst_hi[:1], src_lo=batch.dst_lo[:1],
        dst_hi=batch.src_hi[:1], dst_lo=batch.src_lo[:1], sport=batch.dport[:1], dport=batch.sport[:1],
        vni=batch.vni[:1], vnf_type=batch.vnf_type[:1] * 0,
    )  # fmt: skip
    assert rig.flows.lookup(reply) == ([f], [Dir.REPLY])


def test_echo_to_the_nat_ip_goes_to_packet_relay() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    ping = from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / ICMP(type=8, id=0x40))
    batch = rig.upto(rig.dnat, [ping], PF0)
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.PACKET_RELAY]
    assert rig.flows.nat_type[int(batch.flow[0])] == NatType.NAT_AS_TARGET
    again = run_node(rig.dnat, rig.upto(rig.dnat, [ping], PF0))  # the flow answers again
    assert again.edges == [Next.PACKET_RELAY]
    assert (run.counters, again.counters) == ({"echo_to_nat_ip": 1}, {"echo_to_nat_ip": 1})


def test_a_neighbours_port_is_relayed_and_an_unknown_one_dropped() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    rig.apply(cmd.CreateNeighborNat(NAT_IP, 100, 500, 520, NEIGH_UL))
    frames = [
        from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / TCP(sport=8989, dport=510)),
        from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / TCP(sport=8989, dport=520)),
    ]
    batch = rig.upto(rig.dnat, frames, PF0)
    flows = batch.flow.copy()
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.PACKET_RELAY, Next.DROP]
    assert run.counters == {"neighbor_relay": 1, "premature": 1}
    relayed = int(flows[0])
    assert rig.flows.nat_type[relayed] == NatType.NETWORK_NEIGH
    assert rig.flows.flags[relayed] & FlowFlag.DST_NAT_FWD
    assert (int(rig.flows.underlay_hi[relayed]), int(rig.flows.underlay_lo[relayed])) == split(NEIGH_UL)
    assert not rig.flows.live[int(flows[1])]  # the premature flow is gone at once


def test_nat_reply_gets_the_vms_address_and_port_back() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    out = rig.through([from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / UDP(sport=12345, dport=53))], VM1.port)
    nat_port = int(out.sport[0])
    batch = rig.upto(
        rig.dnat,
        [from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / UDP(sport=53, dport=nat_port) / b"a")],
        PF0,
    )
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.IPV4_LOOKUP]
    pkt = inner(run.frames[0])
    assert (pkt.src, pkt.dst, pkt[UDP].sport, pkt[UDP].dport) == (PUBLIC, VM1.ip, 53, 12345)
    assert run.counters == {"nat_restored": 1}
    assert (int(batch.dst_lo[0]), int(batch.dport[0])) == (int(IPv4Address(VM1.ip)), 12345)


def test_icmp_error_about_a_nat_flow_is_made_about_the_vms_packet() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    sent = IP(src=VM1.ip, dst=PUBLIC, ttl=64) / UDP(sport=4444, dport=53) / b"question"
    out = rig.through([from_vm(VM1, sent)], VM1.port)
    nat_port = int(out.sport[0])
    seen_by_router = IP(src=str(NAT_IP), dst=PUBLIC, ttl=61) / UDP(sport=nat_port, dport=53) / b"question"
    error = (
        IP(src="10.0.0.254", dst=str(NAT_IP)) / ICMP(type=3, code=3) / bytes(IP(bytes(seen_by_router)))[:28]
    )
    batch = rig.upto(rig.dnat, [from_router(NAT_UL, error)], PF0)
    assert int(batch.flow_dir[0]) == Dir.REPLY
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.IPV4_LOOKUP]
    pkt = inner(run.frames[0])  # the ICMP checksum is valid (assert_valid)
    assert (pkt.dst, pkt[ICMP].type, pkt[ICMP].code) == (VM1.ip, 3, 3)
    assert (pkt[IPerror].src, pkt[IPerror].ttl, pkt[UDPerror].sport) == (VM1.ip, 61, 4444)
    embedded = IP(bytes(pkt[IPerror])[:20])
    probe = embedded.copy()
    probe.chksum = None
    assert embedded.chksum == IP(bytes(probe)).chksum  # updated, despite the router's TTL change


def test_nat64_reply_becomes_ipv6() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    ping = IPv6(src=VM1.ipv6, dst="64:ff9b::2d56:606") / ICMPv6EchoRequest(id=7, seq=3) / b"x"
    out = rig.through([from_vm(VM1, ping)], VM1.port)
    nat_id = int(out.dport[0])
    reply = from_router(
        NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP), ttl=40) / ICMP(type=0, id=nat_id, seq=3) / b"x"
    )
    batch = rig.upto(rig.dnat, [reply], PF0)
    length = int(batch.length[0])
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.IPV6_LOOKUP]
    pkt = inner(run.frames[0])
    assert isinstance(pkt, IPv6)
    assert (pkt.src, pkt.dst, pkt.hlim) == ("64:ff9b::2d56:606", VM1.ipv6, 40)
    assert (pkt.payload.type, pkt.payload.id, pkt.payload.seq) == (129, 7, 3)
    assert int(batch.length[0]) == length + 20 and int(batch.l3[0]) == L3.IPV6
    assert run.counters == {"nat64_restored": 1}


def test_nat64_reply_that_cannot_be_translated_is_dropped() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    out = rig.through(
        [from_vm(VM1, IPv6(src=VM1.ipv6, dst="64:ff9b::2d56:606") / UDP(sport=7, dport=53))], VM1.port
    )
    nat_port = int(out.sport[0])
    seen = IP(src=str(NAT_IP), dst=PUBLIC) / UDP(sport=nat_port, dport=53)
    error = from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / ICMP(type=3, code=3) / bytes(seen)[:28])
    run = run_node(rig.dnat, rig.upto(rig.dnat, [error], PF0))
    assert run.edges == [Next.DROP]
    assert run.counters == {"nat64_untranslatable": 1}


def test_vm_to_a_vip_in_its_own_vni() -> None:
    rig = NatRig()
    rig.add_vip(VM2)
    batch = rig.upto(
        rig.dnat, [from_vm(VM1, IP(src=VM1.ip, dst=str(VIP_IP)) / TCP(sport=1200, dport=80))], VM1.port
    )
    run = run_node(rig.dnat, batch)
    assert run.edges == [Next.IPV4_LOOKUP]
    assert inner(run.frames[0]).dst == VM2.ip


def test_delete_neighbor_nat_removes_its_relayed_flows() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    rig.apply(cmd.CreateNeighborNat(NAT_IP, 100, 500, 520, NEIGH_UL))
    frame = from_router(NAT_UL, IP(src=PUBLIC, dst=str(NAT_IP)) / TCP(sport=8989, dport=510))
    key = rig.upto(rig.dnat, [frame], PF0)
    run_node(rig.dnat, key)
    flow = int(key.flow[0])
    rig.apply(cmd.DeleteNeighborNat(NAT_IP, 100, 500, 520))
    assert not rig.flows.live[flow]
    assert rig.conntrack.counter_values()["flows_purged"] == 1
