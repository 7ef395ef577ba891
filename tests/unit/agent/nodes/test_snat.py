"""snat: VIP and NAT-gateway source translation, NAT64, reply source restore (exact frames)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.nodes.snat import Next
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, jhash
from kubevpc_agent.tables.conntrack import FlowFlag, NatType
from testkit.dp_topology import PF0, PORTS, VM1, VM2, Vm
from testkit.nat_rig import NAT_IP, NAT_UL, VIP_IP, VIP_UL, NatRig
from testkit.overlay import ROUTER_MAC, add_route, run_node
from testkit.packets import assert_valid

PUBLIC = "45.86.6.6"


def from_vm(vm: Vm, payload: Packet) -> bytes:
    return bytes(Ether(src=vm.mac, dst=PORTS[vm.port].mac) / payload)


def expected(vm: Vm, payload: Packet) -> bytes:
    """The frame as snat leaves it for an uplink: the lookup's Ethernet, checksums recomputed."""
    pkt = Ether(dst=ROUTER_MAC, src=PORTS[PF0].mac) / payload
    return bytes(pkt.__class__(bytes(pkt)))


def test_first_packet_gets_the_nat_ip_and_dpservices_port() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    batch = rig.upto(
        rig.snat,
        [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC, ttl=64) / TCP(sport=12345, dport=443, flags="S"))],
        VM1.port,
    )
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.FIREWALL]
    want = IP(src=str(NAT_IP), dst=PUBLIC, ttl=64) / TCP(sport=101, dport=443, flags="S")
    assert run.frames == [expected(VM1, want)]
    assert_valid(run.frames[0])
    assert run.counters == {"nat_snat": 1}
    f = int(batch.flow[0])
    assert rig.flows.nat_type[f] == NatType.NETWORK_LOCAL
    assert rig.flows.flags[f] & FlowFlag.SRC_NAT
    assert rig.nat_ports.used_by_port == {VM1.port: 1}
    assert (int(batch.src_lo[0]), int(batch.sport[0])) == (int(NAT_IP), 101)


def test_icmp_identifier_is_the_nat_port() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    batch = rig.upto(
        rig.snat, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / ICMP(type=8, id=0x40, seq=9))], VM1.port
    )
    run = run_node(rig.snat, batch)
    pkt = assert_valid(run.frames[0])
    assert (pkt[IP].src, pkt[ICMP].id, pkt[ICMP].seq) == (str(NAT_IP), 100, 9)


def test_packets_of_one_new_flow_in_one_batch_share_the_port() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    frame = from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / UDP(sport=5000, dport=53) / b"q")
    batch = rig.upto(rig.snat, [frame, frame, frame], VM1.port)
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.FIREWALL] * 3
    ports = {assert_valid(f)[UDP].sport for f in run.frames}
    assert len(ports) == 1
    assert rig.nat_ports.used_by_port == {VM1.port: 1}


def test_no_free_port_drops_and_counts() -> None:
    rig = NatRig()
    rig.add_nat(VM1, 100, 101)
    rig.through([from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / TCP(sport=1, dport=443))], VM1.port)
    batch = rig.upto(rig.snat, [from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / TCP(sport=2, dport=443))], VM1.port)
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.DROP]
    assert run.counters == {"no_nat_port": 1}


def test_vip_source() -> None:
    rig = NatRig()
    rig.add_vip(VM2)
    batch = rig.upto(
        rig.snat, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC) / TCP(sport=1240, dport=100))], VM2.port
    )
    run = run_node(rig.snat, batch)
    assert run.frames == [expected(VM2, IP(src=str(VIP_IP), dst=PUBLIC) / TCP(sport=1240, dport=100))]
    assert rig.flows.nat_type[int(batch.flow[0])] == NatType.VIP
    assert run.counters == {"vip_snat": 1}


def test_west_east_traffic_is_not_translated() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    add_route(rig.state, 100, "10.100.2.0/24")
    frame = from_vm(VM1, IP(src=VM1.ip, dst="10.100.2.7") / TCP(sport=1, dport=2))
    batch = rig.upto(rig.snat, [frame], VM1.port)
    before = batch.frames()
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.FIREWALL] and run.frames == before and run.counters == {}


def nat64_port(vm: Vm, sport: int) -> int:
    """dpservice's choice for an IPv6 portmap key, from the scalar rte_jhash (an independent path)."""
    key = struct.pack("<I", vm.vni) + IPv6Address(vm.ipv6).packed + b"\x01" + struct.pack("<H", sport)
    return 100 + jhash(key, DPSERVICE_INITVAL) % 2


def test_nat64_first_packet() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    syn = IPv6(src=VM1.ipv6, dst="64:ff9b::2d56:606", hlim=33, tc=0x10) / TCP(
        sport=1246, dport=443, flags="S"
    )
    batch = rig.upto(rig.snat, [from_vm(VM1, syn)], VM1.port)
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.FIREWALL]
    want = IP(src=str(NAT_IP), dst=PUBLIC, ttl=33, tos=0x10, id=0, flags=0) / TCP(
        sport=nat64_port(VM1, 1246), dport=443, flags="S"
    )
    assert run.frames == [expected(VM1, want)]
    f = int(batch.flow[0])
    assert rig.flows.flags[f] & FlowFlag.SRC_NAT64
    assert run.counters == {"nat64": 1}


def test_nat64_refuses_icmpv6_other_than_echo_and_frees_the_port() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    frame = from_vm(
        VM1, IPv6(src=VM1.ipv6, dst="64:ff9b::2d56:606") / ICMPv6EchoRequest(id=5).__class__(type=1)
    )
    batch = rig.upto(rig.snat, [frame], VM1.port)
    run = run_node(rig.snat, batch)
    assert run.edges == [Next.DROP]
    assert run.counters == {"nat64_untranslatable": 1}
    assert rig.nat_ports.used_by_port == {} and not rig.nat_ports.overload


def test_reply_of_a_vip_flow_leaves_from_the_vip() -> None:
    rig = NatRig()
    rig.add_vip(VM2)
    inbound = Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac) / IPv6(src="fc00::ffff", dst=str(VIP_UL), nh=4)
    rig.through([bytes(inbound / IP(src=PUBLIC, dst=str(VIP_IP)) / TCP(sport=9, dport=22, flags="S"))], PF0)
    batch = rig.upto(
        rig.snat, [from_vm(VM2, IP(src=VM2.ip, dst=PUBLIC) / TCP(sport=22, dport=9, flags="SA"))], VM2.port
    )
    run = run_node(rig.snat, batch)
    assert run.frames == [expected(VM2, IP(src=str(VIP_IP), dst=PUBLIC) / TCP(sport=22, dport=9, flags="SA"))]
    assert run.counters == {"reply_source_restored": 1}


def test_established_nat_flow_keeps_its_port() -> None:
    rig = NatRig()
    rig.add_nat(VM1)
    frame = from_vm(VM1, IP(src=VM1.ip, dst=PUBLIC) / TCP(sport=777, dport=443))
    first = rig.through([frame], VM1.port)
    port = int(first.sport[0])
    batch = rig.upto(rig.snat, [frame], VM1.port)
    run = run_node(rig.snat, batch)
    assert assert_valid(run.frames[0])[TCP].sport == port
    assert rig.nat_ports.used_by_port == {VM1.port: 1}
    assert str(NAT_UL)  # the slice's underlay, where the replies of these flows arrive
