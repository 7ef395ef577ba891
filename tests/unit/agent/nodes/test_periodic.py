"""Periodic GARP/RA/NA frames (DPSERVICE.md §4.1, §4.4): bytes, order, ARP cycle, schedule, sending."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from kubevpc_agent.dataplane.periodic import MaintenanceSchedule, PeriodicMessages, build_periodic_frames
from kubevpc_agent.nodes.arp import Arp
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs
from testkit.dp_topology import (
    CONFIG,
    PORTS,
    VF0,
    VF1,
    VF2,
    VF3,
    VM1,
    VM2,
    VM3,
    VM4,
    bind,
    interface_of,
    run_node,
)
from testkit.packets import assert_valid

GW = "169.254.0.1"


def garp(port: int, target: str = GW) -> bytes:
    own = PORTS[port].mac
    return bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=own)
        / ARP(op=1, hwsrc=own, psrc=GW, hwdst="00:00:00:00:00:00", pdst=target)
    )


def ra(port: int) -> bytes:
    own = PORTS[port].mac
    return bytes(
        Ether(dst="33:33:00:00:00:01", src=own)
        / IPv6(src="fe80::1", dst="ff02::1", hlim=255)
        / ICMPv6ND_RA(chlim=255, M=1, O=1, prf=0, routerlifetime=0xFFFF, reachabletime=0, retranstimer=0)
        / ICMPv6NDOptSrcLLAddr(lladdr=own)
    )


def na(port: int) -> bytes:
    return bytes(
        Ether(dst="33:33:00:00:00:01", src=PORTS[port].mac)
        / IPv6(src="fe80::1", dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(R=1, S=0, O=1, tgt="fe80::1")
    )


def test_round_order_and_bytes_with_pending_arp_cycles(state: AgentState, macs: PortMacs) -> None:
    """Fresh interfaces: every GARP asks for the VM's own address (ARP cycle pending)."""
    frames = build_periodic_frames(state, macs)
    assert frames == [
        (VF0, ra(VF0)), (VF1, ra(VF1)), (VF2, ra(VF2)),
        (VF0, na(VF0)), (VF1, na(VF1)), (VF2, na(VF2)),
        (VF0, garp(VF0, VM1.ip)), (VF1, garp(VF1, VM2.ip)), (VF2, garp(VF2, VM3.ip)),
    ]  # fmt: skip
    for _, frame in frames:
        assert_valid(frame)
    assert len(frames[-1][1]) == 42  # Ether + ARP, unpadded like dpservice's


def test_garp_asks_for_the_gateway_once_the_vm_answered(state: AgentState, macs: PortMacs) -> None:
    arp = Arp(state, macs, CONFIG)
    vm_mac = "12:34:56:78:9a:bc"
    answer = bytes(Ether(src=vm_mac, dst=PORTS[VF0].mac) / ARP(op=2, hwsrc=vm_mac, psrc=VM1.ip, pdst=GW))
    assert run_node(arp, [answer], VF0).counters["learned"] == 1
    garps = [f for port, f in build_periodic_frames(state, macs) if Ether(f).type == 0x0806]
    assert garps == [garp(VF0), garp(VF1, VM2.ip), garp(VF2, VM3.ip)]


def test_overlay_disabled_sends_only_garps(state: AgentState, macs: PortMacs) -> None:
    state.config = replace(CONFIG, enable_ipv6_overlay=False)
    assert [Ether(f).type for _, f in build_periodic_frames(state, macs)] == [0x0806] * 3


def test_only_bound_vfs_with_the_address_family(macs: PortMacs) -> None:
    state = AgentState(CONFIG)
    bind(state, interface_of(VM1, ipv6=False))
    bind(state, interface_of(VM4, ipv4=False))  # VF1, VF2 unbound
    assert build_periodic_frames(state, macs) == [(VF3, ra(VF3)), (VF3, na(VF3)), (VF0, garp(VF0, VM1.ip))]
    assert build_periodic_frames(AgentState(CONFIG), macs) == []


def test_schedule_five_seconds_until_init_then_five_more_then_thirty() -> None:
    schedule = MaintenanceSchedule(start=100.0)
    runs = []
    now = 100.0
    initialized = False
    while len(runs) < 12:
        now = schedule.due
        runs.append(now)
        if len(runs) == 4:
            initialized = True  # Initialize arrived between the 3rd and 4th round
        schedule.ran(now, initialized)
    assert runs == [105, 110, 115, 120, 125, 130, 135, 140, 170, 200, 230, 260]


def test_schedule_does_not_burst_after_a_stall() -> None:
    schedule = MaintenanceSchedule(start=0.0)
    schedule.ran(1000.0, initialized=False)  # the loop was blocked for a long time
    assert schedule.due == 1005.0


def memory_ports() -> list[MemoryPort]:
    return [MemoryPort(replace(spec, driver="memory")) for spec in PORTS]


def test_periodic_messages_send_each_vf_its_frames(state: AgentState, macs: PortMacs) -> None:
    ports = memory_ports()
    periodic = PeriodicMessages(state, macs, ports, now=0.0)
    assert periodic.next_due() == 5.0
    periodic.run_due(4.9)
    assert all(not p.sent for p in ports)
    periodic.run_due(5.0)
    assert ports[VF0].take_sent() == [ra(VF0), na(VF0), garp(VF0, VM1.ip)]
    assert ports[VF2].take_sent() == [ra(VF2), na(VF2), garp(VF2, VM3.ip)]
    assert [p.take_sent() for p in (ports[0], ports[1], ports[VF3])] == [[], [], []]
    assert (periodic.frames_sent, periodic.frames_dropped) == (9, 0)
    assert periodic.pool.available == periodic.pool.capacity
    assert periodic.next_due() == 10.0


def test_periodic_messages_count_frames_for_ports_it_does_not_have(state: AgentState, macs: PortMacs) -> None:
    ports = [p for p in memory_ports() if p.spec.port_id != VF1]
    periodic = PeriodicMessages(state, macs, ports, now=0.0)
    periodic.run_due(5.0)
    assert (periodic.frames_sent, periodic.frames_dropped) == (6, 3)


class RefusingPort(MemoryPort):
    def send(self, batch: object) -> int:
        return 0


def test_periodic_messages_count_refused_frames(state: AgentState, macs: PortMacs) -> None:
    ports: list[MemoryPort] = [RefusingPort(spec) for spec in PORTS]
    periodic = PeriodicMessages(state, macs, ports, now=0.0)
    periodic.run_due(5.0)
    assert (periodic.frames_sent, periodic.frames_dropped) == (0, 9)
    assert periodic.pool.available == periodic.pool.capacity


@pytest.mark.parametrize("initialized", [False, True])
def test_periodic_messages_follow_the_states_initialized_flag(
    state: AgentState, macs: PortMacs, initialized: bool
) -> None:
    state.initialized = initialized
    periodic = PeriodicMessages(state, macs, memory_ports(), now=0.0)
    for _ in range(6):
        periodic.run_due(periodic.next_due())
    # initialized from the start: rounds at 5 .. 25, the 6th 30 s later at 55, the next at 85
    assert periodic.next_due() == (85.0 if initialized else 35.0)


def test_port_spec_kinds_are_respected(macs: PortMacs) -> None:
    """A PF never gets periodic frames even if (wrongly) bound."""
    state = AgentState(CONFIG)
    pf_iface = replace(interface_of(VM1), id="pf", port_id=0)
    bind(state, pf_iface)
    assert build_periodic_frames(state, macs) == []
