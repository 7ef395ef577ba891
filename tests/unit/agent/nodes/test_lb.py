"""lb node: target choice (dpservice's hash and Maglev), stickiness, recirculation, echo, drops, removal.

Frames arrive on pf0 for the load balancer's underlay and go through ``cls`` and ``ipip_decap``;
their flows are resolved in a real :class:`FlowTable` from the classified columns (the key of
uplink traffic to an LB has VNF type 0, as dpservice's ``dp_mark_vnf_type`` makes it), and then
the ``lb`` node runs alone. Addresses are dpservice's test ones (DPSERVICE.md §6.3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.ipip_decap import IpipDecap
from kubevpc_agent.nodes.lb import Lb, Next
from kubevpc_agent.protocols.ipv6 import join, split
from kubevpc_agent.protocols.jhash import jhash
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import Dir, FlowFlag, FlowTable, NatType, make_keys
from kubevpc_agent.tables.lb_select import LbTable
from kubevpc_agent.tables.maglev import MAGLEV_SIZE, build_maglev, sort_targets
from kubevpc_agent.tables.model import LbPort, Protocol
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs
from kubevpc_agent.tables.vnf_map import VnfMap
from testkit.dp_topology import PF0, PF1, PORTS, VM1
from testkit.overlay import NodeRun, build_state, receive, resolve_flows, run_node

LB_IP, LB_IP6 = "172.22.2.1", "2a10:defe:e01f:f4::2"
LB_UL = IPv6Address("fc00:1::4c:0:0:1")
LB6_UL = IPv6Address("fc00:1::4c:0:0:2")
LB_PREFIX_UL = IPv6Address("fc00:1::4c:0:0:3")  # VM1's LB prefix 172.22.2.1/32: a local target
NEIGH_UL = IPv6Address("fc00:2::1")  # dpservice's neighbour host, a remote target
PUBLIC_IP, PUBLIC_IP6 = "45.86.6.6", "2001:4860:4860::8888"
ROUTER = "fc00::ffff"
REMOTES = [IPv6Address(f"fc00:{n}::64:0:1") for n in range(2, 6)]


@dataclass
class Rig:
    state: AgentState = field(default_factory=build_state)
    flows: FlowTable = field(default_factory=lambda: FlowTable(4096))

    def __post_init__(self) -> None:
        self.ports = PortTable(self.state)
        self.vnf = VnfMap(self.state)
        self.cls = Cls(self.ports)
        self.decap = IpipDecap(self.vnf, self.ports, PortMacs(PORTS))
        self.node = Lb(LbTable(self.state), self.flows, self.vnf)

    def lb(self, lb_id: str, ip: str, underlay: IPv6Address, *ports: tuple[Protocol, int]) -> None:
        lb_ports = tuple(LbPort(p, n) for p, n in ports)
        self.state.apply(cmd.CreateLoadBalancer(lb_id, 100, ip_address(ip), lb_ports, underlay))

    def targets(self, lb_id: str, *add: IPv6Address) -> None:
        for target in add:
            now = sort_targets([*self.state.load_balancers[lb_id].targets, target])
            self.state.apply(cmd.CreateLbTarget(lb_id, target, build_maglev(now)))

    def remove_target(self, lb_id: str, target: IPv6Address) -> None:
        rest = [t for t in self.state.load_balancers[lb_id].targets if t != target]
        self.state.apply(cmd.DeleteLbTarget(lb_id, target, build_maglev(sort_targets(rest))))

    def batch(self, pkts: list[Packet], port: int = PF0) -> Batch:
        batch = receive([bytes(p) for p in pkts], port)
        assert set(np.atleast_1d(self.cls.process(batch)).tolist()) == {4}  # ipip_decap
        assert set(np.atleast_1d(self.decap.process(batch)).tolist()) == {1}
        return resolve_flows(self.flows, batch)

    def send(self, pkts: list[Packet], port: int = PF0) -> NodeRun:
        return run_node(self.node, self.batch(pkts, port))


def to_lb(inner: Packet, underlay: IPv6Address = LB_UL, src: str = ROUTER) -> Packet:
    return Ether(dst="22:22:22:22:22:00", src="33:33:00:00:00:01") / IPv6(src=src, dst=str(underlay)) / inner


def tcp_in(sport: int, dport: int = 80, src: str = PUBLIC_IP, flags: str = "S") -> Packet:
    return to_lb(IP(src=src, dst=LB_IP) / TCP(sport=sport, dport=dport, flags=flags))


def next_hop(run: NodeRun, i: int = 0) -> IPv6Address:
    return join(int(run.batch.nh_hi[i]), int(run.batch.nh_lo[i]))


def dpservice_target(
    targets: list[IPv6Address], src: str, sport: int, dport: int, vni: int = 100
) -> IPv6Address:
    """The target dpservice picks: its packed flow key, rte_jhash, the Maglev slot (not via lb)."""
    key = (
        struct.pack("<I12xB", int(IPv4Address(LB_IP)), 0)
        + struct.pack("<BH", 6, dport)
        + struct.pack("<I12xB", int(IPv4Address(src)), 0)
        + struct.pack("<BHI", 0, sport, vni)
    )
    ordered = sort_targets(targets)
    return ordered[build_maglev(ordered)[jhash(key, 0xFEE1900D) % MAGLEV_SIZE]]


# --- dpservice's test_lb / xtratest cases -------------------------------------------------------------


def test_external_lb_relay() -> None:
    """TCP to the LB underlay leaves pf0 again towards the remote target, from the host underlay."""
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    run = rig.send([tcp_in(8989)])
    assert run.edges == [Next.IPIP_ENCAP]
    assert next_hop(run) == NEIGH_UL
    assert run.batch.tx_port.tolist() == [PF0]
    assert (run.batch.ul_src_hi[0], run.batch.ul_src_lo[0]) == (0, 0)  # ipip_encap: the host --ipv6
    assert run.batch.nat[0] != NatType.LB_RECIRC
    assert run.counters == {"forwarded": 1}
    flow = int(run.batch.flow[0])
    assert rig.flows.flags[flow] & FlowFlag.DST_LB
    assert rig.flows.nat_type[flow] == NatType.LB_FORWARD


def test_external_lb_relay_ipv6() -> None:
    rig = Rig()
    rig.lb("my_lb6", LB_IP6, LB6_UL, (Protocol.TCP, 8080))
    rig.targets("my_lb6", NEIGH_UL)
    pkt = to_lb(IPv6(src=PUBLIC_IP6, dst=LB_IP6) / TCP(sport=8989, dport=8080), LB6_UL)
    run = rig.send([pkt])
    assert run.edges == [Next.IPIP_ENCAP]
    assert next_hop(run) == NEIGH_UL


def test_relay_leaves_through_the_uplink_it_came_in_on() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    run = rig.send([tcp_in(8989)], port=PF1)
    assert run.batch.tx_port.tolist() == [PF1]


@pytest.mark.parametrize(
    "pkt",
    [
        to_lb(IP(src=PUBLIC_IP, dst=LB_IP) / ICMP(type=8, id=0x40)),
        to_lb(IPv6(src=PUBLIC_IP6, dst=LB_IP6) / ICMPv6EchoRequest(id=0x40), LB6_UL),
    ],
    ids=["icmp", "icmpv6"],
)
def test_echo_to_the_lb_ip_goes_to_packet_relay(pkt: Packet) -> None:
    """test_network_lb_external_icmp(v6)_echo: answered (twice), even without targets."""
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.lb("my_lb6", LB_IP6, LB6_UL, (Protocol.TCP, 443))
    for _ in range(2):
        run = rig.send([pkt])
        assert run.edges == [Next.PACKET_RELAY]
        assert run.counters == {"echo_request": 1}
        assert run.batch.nh_lo[0] == split(IPv6Address(ROUTER))[1]  # untouched: where the reply goes


def test_local_target_is_recirculated_without_dnat() -> None:
    """test_pf_to_vf_lb_tcp: VM1's LB prefix is the target; the packet goes round, dst still the LB IP."""
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.state.apply(cmd.CreateLbPrefix(VM1.name, IPv4Address(LB_IP), 32, LB_PREFIX_UL))
    rig.targets("my_lb", LB_PREFIX_UL)
    run = rig.send([tcp_in(1234)])
    assert run.edges == [Next.IPIP_ENCAP]
    assert next_hop(run) == LB_PREFIX_UL
    assert run.batch.nat[0] == NatType.LB_RECIRC
    assert join(int(run.batch.ul_src_hi[0]), int(run.batch.ul_src_lo[0])) == LB_UL  # outer src: the LB's
    assert run.counters == {"recirculated": 1}
    assert run.frames[0][14 + 16 : 14 + 20] == IPv4Address(LB_IP).packed  # inner dst untouched


@pytest.mark.parametrize(
    ("pkt", "counter"),
    [
        (tcp_in(1, dport=81), "port_not_balanced"),
        (to_lb(IP(src=PUBLIC_IP, dst=LB_IP) / UDP(sport=1, dport=80)), "port_not_balanced"),
        (to_lb(IP(src=PUBLIC_IP, dst="172.22.2.9") / TCP(sport=1, dport=80)), "not_an_lb_address"),
        (to_lb(IP(src=PUBLIC_IP, dst=LB_IP) / ICMP(type=0, id=1)), "icmp_not_balanced"),
        (to_lb(IPv6(src=PUBLIC_IP6, dst=LB_IP6) / TCP(sport=1, dport=80)), "not_an_lb_address"),
    ],
    ids=["tcp port", "udp on a tcp port", "not the LB IP", "echo reply", "no IPv6 LB"],
)
def test_drops_are_counted_by_reason(pkt: Packet, counter: str) -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    run = rig.send([pkt])
    assert run.edges == [Next.DROP]
    assert run.counters == {counter: 1}


def test_no_targets_drops() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    run = rig.send([tcp_in(5)])
    assert (run.edges, run.counters) == ([Next.DROP], {"no_targets": 1})


def test_targets_are_dpservices_maglev_choice() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", *REMOTES)
    sports = list(range(20000, 20200))
    run = rig.send([tcp_in(s) for s in sports])
    got = [next_hop(run, i) for i in range(len(sports))]
    assert got == [dpservice_target(REMOTES, PUBLIC_IP, s, 80) for s in sports]
    assert set(got) == set(REMOTES)


def test_icmp_error_about_a_new_flow_is_balanced_like_that_flow() -> None:
    """test_external_lb_icmp_error_relay: ICMP 3/4 about LB:8080 -> public:8989 goes where that flow goes.

    conntrack keys an ICMP error by its embedded header, reversed; here the stand-in builds that key.
    """
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 8080))
    rig.targets("my_lb", *REMOTES)
    error = to_lb(
        IP(src=PUBLIC_IP, dst=LB_IP)
        / ICMP(type=3, code=4)
        / IP(src=LB_IP, dst=PUBLIC_IP)
        / TCP(sport=8080, dport=8989)
    )
    batch = receive([bytes(error)], PF0)
    rig.cls.process(batch)
    rig.decap.process(batch)
    keys = make_keys(
        l3=batch.l3,
        proto=np.array([6], dtype=np.uint8),
        src_hi=batch.src_hi,
        src_lo=batch.src_lo,
        dst_hi=batch.dst_hi,
        dst_lo=batch.dst_lo,
        sport=np.array([8989], dtype=np.uint16),
        dport=np.array([8080], dtype=np.uint16),
        vni=batch.vni,
        vnf_type=np.zeros(1, dtype=np.uint8),
    )
    resolved = rig.flows.resolve(keys, 0.0, batch.rx_port)
    batch.flow, batch.flow_dir = resolved.flow, resolved.dir
    run = run_node(rig.node, batch)
    assert run.edges == [Next.IPIP_ENCAP]
    assert next_hop(run) == dpservice_target(REMOTES, PUBLIC_IP, 8989, 8080)


# --- stickiness, removal, DSR ----------------------------------------------------------------------


def test_flows_stick_to_their_target_when_targets_are_added() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", *REMOTES[:2])
    sports = list(range(30000, 30100))
    first = rig.send([tcp_in(s) for s in sports])
    before = [next_hop(first, i) for i in range(len(sports))]
    rig.targets("my_lb", *REMOTES[2:])
    later = rig.send([tcp_in(s, flags="A") for s in sports])
    assert [next_hop(later, i) for i in range(len(sports))] == before
    assert later.counters == {"followed": len(sports)}
    fresh = rig.send([tcp_in(s) for s in range(40000, 40200)])
    assert {next_hop(fresh, i) for i in range(200)} == set(REMOTES)  # new flows see the new table


def test_removing_a_target_moves_only_its_flows() -> None:
    """DeleteLoadBalancerTarget: its flows are removed and re-balanced, every other flow keeps its target."""
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", *REMOTES)
    sports = list(range(50000, 50400))
    first = rig.send([tcp_in(s) for s in sports])
    before = [next_hop(first, i) for i in range(len(sports))]
    gone = REMOTES[1]
    rig.remove_target("my_lb", gone)
    later = rig.send([tcp_in(s, flags="A") for s in sports])
    after = [next_hop(later, i) for i in range(len(sports))]
    moved = [i for i in range(len(sports)) if before[i] != after[i]]
    assert moved == [i for i in range(len(sports)) if before[i] == gone]
    assert gone not in after
    n_moved = len(moved)
    assert later.counters == {
        "target_flows_removed": n_moved,
        "forwarded": n_moved,
        "followed": 400 - n_moved,
    }


def test_deleting_the_lb_removes_its_flows() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    run = rig.send([tcp_in(7)])
    flow = int(run.batch.flow[0])
    rig.state.apply(cmd.DeleteLoadBalancer("my_lb"))
    rig.node.refresh()
    assert not rig.flows.live[flow]
    assert rig.node.counter_values()["target_flows_removed"] == 1


def test_reply_direction_of_a_balanced_flow_is_refused() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    rig.send([tcp_in(4711)])
    reply = to_lb(IP(src=LB_IP, dst=PUBLIC_IP) / TCP(sport=80, dport=4711, flags="SA"))
    run = rig.send([reply])
    assert run.batch.flow_dir.tolist() == [Dir.REPLY]
    assert (run.edges, run.counters) == ([Next.DROP], {"reply_refused": 1})


def test_a_batch_mixing_every_case() -> None:
    rig = Rig()
    rig.lb("my_lb", LB_IP, LB_UL, (Protocol.TCP, 80))
    rig.targets("my_lb", NEIGH_UL)
    pkts = [
        tcp_in(1),
        to_lb(IP(src=PUBLIC_IP, dst=LB_IP) / ICMP(type=8, id=3)),
        tcp_in(2, dport=22),
        tcp_in(1, flags="A"),  # the first packet's flow, same batch
    ]
    run = rig.send(pkts)
    assert run.edges == [Next.IPIP_ENCAP, Next.PACKET_RELAY, Next.DROP, Next.IPIP_ENCAP]
    assert next_hop(run, 3) == NEIGH_UL
