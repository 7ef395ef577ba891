"""ipip_encap: the exact outer Ether + IPv6 header of DPSERVICE.md §3.3, written into the headroom."""

from __future__ import annotations

from ipaddress import IPv6Address

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.graph.batch import HEADROOM
from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.ipip_encap import IpipEncap, Next
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VF0, VF1, VM1
from testkit.overlay import ROUTER_MAC, build_state, receive, run_node, underlay_of
from testkit.packets import assert_valid

NEXT_HOP = IPv6Address("fc00:2::64")
INNER_V4 = IP(src=VM1.ip, dst="192.168.1.1", ttl=17) / TCP(sport=1, dport=2) / b"payload"
INNER_V6 = IPv6(src=VM1.ipv6, dst="2001:db8::1", hlim=9) / TCP(sport=1, dport=2) / b"payload"


def encapsulate(
    inner: object, rx: int = VF0, tx: int = PF0, off_shift: int = 0
) -> tuple[list[int], list[bytes], dict[str, int]]:
    ports = PortTable(build_state())
    macs = PortMacs(PORTS)
    macs.learn(PF0, mac_bytes(ROUTER_MAC))
    cls, encap = Cls(ports), IpipEncap(ports, macs)
    batch = receive([bytes(Ether(src=VM1.mac, dst=PORTS[VF0].mac) / inner)], VF0)
    run_node(cls, batch)
    batch.rx_port[:] = rx
    batch.tx_port[:] = tx
    batch.nh_hi[:], batch.nh_lo[:] = split(NEXT_HOP)
    batch.off -= off_shift
    run = run_node(encap, batch)
    return run.edges, run.frames, run.counters


@pytest.mark.parametrize(
    "inner, next_header", [(INNER_V4, 4), (INNER_V6, 41)], ids=["IPv4 inside (4)", "IPv6 inside (41)"]
)
def test_outer_header_is_exact(inner: IP | IPv6, next_header: int) -> None:
    edges, frames, counters = encapsulate(inner)
    assert edges == [Next.TX]
    assert counters == {"encapsulated": 1}
    expected = Ether(dst=ROUTER_MAC, src=PORTS[PF0].mac, type=0x86DD) / IPv6(
        tc=0, fl=0, plen=len(inner), nh=next_header, hlim=64, src=str(underlay_of(VM1)), dst=str(NEXT_HOP)
    )
    assert frames[0] == bytes(expected) + bytes(inner)  # inner unchanged: no TTL/hop-limit decrement
    assert_valid(frames[0])


def test_uplink_originated_traffic_uses_the_host_underlay() -> None:
    _, frames, _ = encapsulate(INNER_V4, rx=PF1, tx=PF1)
    outer = Ether(frames[0])[IPv6]
    assert outer.src == str(CONFIG.underlay_ipv6)
    assert Ether(frames[0]).dst == "00:00:00:00:00:00"  # pf1's router MAC is not known yet
    assert Ether(frames[0]).src == PORTS[PF1].mac


def test_frames_without_headroom_are_dropped_not_corrupted() -> None:
    edges, _, counters = encapsulate(INNER_V4, off_shift=HEADROOM - 20)
    assert edges == [Next.DROP]
    assert counters == {"no_headroom": 1}


def test_only_uplinks_carry_the_underlay() -> None:
    edges, _, counters = encapsulate(INNER_V4, tx=VF1)
    assert edges == [Next.DROP]
    assert counters == {"not_an_uplink": 1}


def test_a_network_function_may_choose_the_source() -> None:
    ports = PortTable(build_state())
    cls, encap = Cls(ports), IpipEncap(ports, PortMacs(PORTS))
    frames = [bytes(Ether() / INNER_V4), bytes(Ether() / INNER_V6)]
    batch = receive(frames, VF0)
    run_node(cls, batch)
    batch.tx_port[:] = PF0
    lb = IPv6Address("fc00:1::d0:0:0:77")
    batch.ul_src_hi[0], batch.ul_src_lo[0] = split(lb)
    run = run_node(encap, batch)
    assert [Ether(f)[IPv6].src for f in run.frames] == [str(lb), str(underlay_of(VM1))]
    assert np.all(batch.off == HEADROOM - 40)
