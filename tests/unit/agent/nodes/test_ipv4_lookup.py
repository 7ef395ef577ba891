"""ipv4_lookup: longest prefix per VNI, Ethernet rewrite towards VMs, next hops and WCMP to the underlay."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.ipv4_lookup import Ipv4Lookup, Next
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.protocols.jhash import jhash
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.lpm import Lpm4
from kubevpc_agent.tables.multipath import Multipath
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VF0, VF1, VF2, VM1, VM2, VM3
from testkit.overlay import REMOTE_UNDERLAY, add_route, build_state, receive, run_node

NH_24, NH_DEFAULT, NH_VNI200 = IPv6Address("fc00:3::1"), IPv6Address("fc00:9::1"), IPv6Address("fc00:4::1")
VM2_MAC = "52:54:00:00:00:02"  # learned MAC behind VF1, distinct from the port's own MAC


def make_state(wcmp: int = 100) -> AgentState:
    state = build_state(replace(CONFIG, wcmp_percent=wcmp))
    add_route(state, 100, "192.168.0.0/16")
    add_route(state, 100, "192.168.7.0/24", NH_24)
    add_route(state, 100, "0.0.0.0/0", NH_DEFAULT)
    add_route(state, 200, "192.168.0.0/16", NH_VNI200)
    state.apply(cmd.CreatePrefix(VM2.name, IPv4Address("10.100.2.0"), 24, IPv6Address("fc00:1::d0:0:1:1")))
    return state


def make_node(state: AgentState) -> tuple[Cls, Ipv4Lookup]:
    ports = PortTable(state)
    macs = PortMacs(PORTS)
    macs.learn(VF1, mac_bytes(VM2_MAC))
    return Cls(ports), Ipv4Lookup(
        Lpm4(state), ports, macs, Multipath(ports.pf_ids, state.config.wcmp_percent)
    )


@dataclass
class Row:
    description: str
    src_vm_port: int
    src: str
    dst: str
    edge: Next
    tx_port: int = -1
    nexthop: IPv6Address | None = None
    counters: dict[str, int] | None = None


ROWS = [
    Row("VM to VM in one VNI", VF0, VM1.ip, VM2.ip, Next.TX, VF1, counters={"to_vm": 1}),
    Row(
        "VM to an alias prefix of another VM", VF0, VM1.ip, "10.100.2.5", Next.TX, VF1, counters={"to_vm": 1}
    ),
    Row("VM to itself (hairpin)", VF0, VM1.ip, VM1.ip, Next.TX, VF0, counters={"to_vm": 1}),
    Row(
        "longest prefix wins: /24 over /16",
        VF0,
        VM1.ip,
        "192.168.7.9",
        Next.IPIP_ENCAP,
        PF0,
        NH_24,
        {"to_underlay": 1},
    ),
    Row("a /16 route", VF0, VM1.ip, "192.168.1.1", Next.IPIP_ENCAP, PF0, REMOTE_UNDERLAY, {"to_underlay": 1}),
    Row("the default route", VF0, VM1.ip, "8.8.8.8", Next.IPIP_ENCAP, PF0, NH_DEFAULT, {"to_underlay": 1}),
    Row(
        "another VNI's route for the same prefix",
        VF2,
        VM3.ip,
        "192.168.1.1",
        Next.IPIP_ENCAP,
        PF0,
        NH_VNI200,
        {"to_underlay": 1},
    ),
    Row(
        "VNI isolation: another VPC's VM address has no route here",
        VF2,
        VM3.ip,
        VM2.ip,
        Next.DROP,
        counters={"no_route": 1},
    ),
]


def frame(row: Row) -> bytes:
    return bytes(
        Ether(src="52:54:00:00:00:99", dst="ff:ff:ff:ff:ff:ff") / IP(src=row.src, dst=row.dst) / TCP()
    )


@pytest.mark.parametrize("row", ROWS, ids=[r.description for r in ROWS])
def test_route(row: Row) -> None:
    cls, lookup = make_node(make_state())
    batch = receive([frame(row)], row.src_vm_port)
    run_node(cls, batch)
    run = run_node(lookup, batch)
    assert run.edges == [row.edge]
    assert run.counters == row.counters
    if row.edge == Next.DROP:
        return
    assert int(batch.tx_port[0]) == row.tx_port
    if row.nexthop is not None:
        assert (int(batch.nh_hi[0]), int(batch.nh_lo[0])) == split(row.nexthop)
    else:
        dst_mac = VM2_MAC if row.tx_port == VF1 else VM1.mac
        own = PORTS[row.tx_port].mac
        assert run.frames[0] == mac_bytes(dst_mac) + mac_bytes(own) + frame(row)[12:]


def test_uplink_traffic_is_never_routed_back_to_the_underlay() -> None:
    cls, lookup = make_node(make_state())
    batch = receive([frame(ROWS[4])], VF0)
    run_node(cls, batch)
    batch.rx_port[:] = PF0  # as if it had come decapsulated from pf0 (dnat's path to lookup)
    run = run_node(lookup, batch)
    assert run.edges == [Next.DROP]
    assert run.counters == {"uplink_to_uplink": 1}


def test_unknown_vni_has_no_routes() -> None:
    cls, lookup = make_node(make_state())
    batch = receive([frame(ROWS[0])], VF0)
    run_node(cls, batch)
    batch.vni[:] = 4242
    assert run_node(lookup, batch).counters == {"no_route": 1}


def test_route_changes_apply_to_the_next_batch() -> None:
    state = make_state()
    cls, lookup = make_node(state)
    row = Row("", VF0, VM1.ip, "172.16.0.1", Next.IPIP_ENCAP)

    def nexthop() -> tuple[int, int] | None:
        batch = receive([frame(row)], VF0)
        run_node(cls, batch)
        run = run_node(lookup, batch)
        return (int(batch.nh_hi[0]), int(batch.nh_lo[0])) if run.edges == [Next.IPIP_ENCAP] else None

    assert nexthop() == split(NH_DEFAULT)
    add_route(state, 100, "172.16.0.0/12", NH_24)
    assert nexthop() == split(NH_24)
    state.apply(cmd.DeleteRoute(100, IPv4Address("172.16.0.0"), 12))
    state.apply(cmd.DeleteRoute(100, IPv4Address("0.0.0.0"), 0))
    assert nexthop() is None


def dpservice_flow_hash(src: str, dst: str, proto: int, sport: int, dport: int, vni: int) -> int:
    """dpservice's flow key packed by hand (include/dp_flow.h) and hashed with rte_jhash."""

    def addr(ip: str) -> bytes:
        return struct.pack("<I12xB", int(IPv4Address(ip)), 0)

    key = addr(dst) + struct.pack("<BH", proto, dport) + addr(src) + struct.pack("<BHI", 0, sport, vni)
    assert len(key) == 44
    return jhash(key, 0xFEE1900D)


@pytest.mark.parametrize("percent, pf0_slots", [(50, 5), (25, 3), (0, 0), (94, 9)])
def test_wcmp_splits_flows_by_dpservice_flow_hash(percent: int, pf0_slots: int) -> None:
    cls, lookup = make_node(make_state(wcmp=percent))
    rng = np.random.default_rng(percent)
    sports = rng.integers(1024, 65535, 400).tolist()
    frames = [bytes(Ether() / IP(src=VM1.ip, dst="192.168.1.1") / UDP(sport=s, dport=443)) for s in sports]
    batch: Batch = receive(frames, VF0)
    run_node(cls, batch)
    run = run_node(lookup, batch)
    assert set(run.edges) == {Next.IPIP_ENCAP}
    expected = [
        PF0 if dpservice_flow_hash(VM1.ip, "192.168.1.1", 17, s, 443, 100) % 10 < pf0_slots else PF1
        for s in sports
    ]
    assert batch.tx_port.tolist() == expected
    share = expected.count(PF0) / len(expected)
    assert abs(share - pf0_slots / 10) < 0.1


def test_without_wcmp_everything_leaves_through_pf0() -> None:
    cls, lookup = make_node(make_state(wcmp=100))
    frames = [bytes(Ether() / IP(src=VM1.ip, dst="192.168.1.1") / UDP(sport=s)) for s in range(1000, 1100)]
    batch = receive(frames, VF0)
    run_node(cls, batch)
    run_node(lookup, batch)
    assert set(batch.tx_port.tolist()) == {PF0}
