"""Periodic frames to every VM: GARP, and with ``--enable-ipv6-overlay`` RA and unsolicited NA.

dpservice's maintenance timer (DPSERVICE.md §4.1, §4.4) reminds each VM where its gateways are:
every allocated VF with an IPv4 address gets a gratuitous ARP request from 169.254.0.1 (Ether and
ARP source = the port's own MAC). While the interface's ARP cycle is pending, the GARP asks for the
VM's own address instead, so that the VM answers and the ``arp`` node learns its MAC. VFs with an
IPv6 address get an RA (as the ``ipv6_nd`` node answers an RS) and an unsolicited NA for fe80::1
(R=1, S=0, O=1, no option), both from fe80::1 to ff02::1 / 33:33:00:00:00:01.

Schedule: every 5 s until the agent is initialized, then 5 more times every 5 s, then every 30 s
(:class:`MaintenanceSchedule`). :func:`build_periodic_frames` is pure; :class:`PeriodicMessages`
is what the dataplane worker runs on its timer and sends straight to the ports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from kubevpc_agent.graph.batch import HEADROOM, Batch, PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.port import Port, PortKind
from kubevpc_agent.protocols.arp import ArpOp, build_arp
from kubevpc_agent.protocols.ether import BROADCAST, EtherType, build_ether
from kubevpc_agent.protocols.nd import (
    ALL_NODES,
    ALL_NODES_MAC,
    NA_OVERRIDE,
    NA_ROUTER,
    build_na,
    build_nd_frame,
    build_ra,
)
from kubevpc_agent.tables.model import GATEWAY_IPV4, GATEWAY_IPV6
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs

STARTUP_INTERVAL = 5.0  # seconds between rounds until initialized, and a while after
INTERVAL = 30.0  # seconds between rounds in steady state
CYCLES_AFTER_INIT = 5  # startup-interval rounds still run once initialized
NO_MAC = bytes(6)


def build_periodic_frames(state: AgentState, macs: PortMacs) -> list[tuple[int, bytes]]:
    """One round of periodic frames as ``(VF port id, frame)``, in dpservice's order.

    RAs to every VF whose interface has IPv6, then unsolicited NAs to the same VFs (both only with
    ``enable_ipv6_overlay``), then GARPs to every VF whose interface has IPv4; ports ascending.
    """
    bound = []
    for port_id in sorted(state.ports):
        iface = state.interface_by_port(port_id)
        if state.ports[port_id].kind is PortKind.VF and iface is not None:
            bound.append((port_id, iface))
    out: list[tuple[int, bytes]] = []
    if state.config.enable_ipv6_overlay:
        with_ipv6 = [port_id for port_id, iface in bound if iface.ipv6 is not None]
        for port_id in with_ipv6:
            own = macs.own_mac(port_id)
            ra = build_ra(own)
            out.append((port_id, _to_all_nodes(own, ra)))
        na = build_na(GATEWAY_IPV6, NA_ROUTER | NA_OVERRIDE)
        for port_id in with_ipv6:
            out.append((port_id, _to_all_nodes(macs.own_mac(port_id), na)))
    for port_id, iface in bound:
        if iface.ipv4 is None:
            continue
        own = macs.own_mac(port_id)
        # while the ARP cycle is pending, ask for the VM's own address so that the VM answers
        target = iface.ipv4 if macs.is_arp_cycle_pending(port_id, iface) else GATEWAY_IPV4
        arp = build_arp(ArpOp.REQUEST, own, GATEWAY_IPV4.packed, NO_MAC, target.packed)
        out.append((port_id, build_ether(BROADCAST, own, EtherType.ARP) + arp))
    return out


def _to_all_nodes(own_mac: bytes, message: bytes) -> bytes:
    return build_nd_frame(
        eth_dst=ALL_NODES_MAC, eth_src=own_mac, ip_src=GATEWAY_IPV6, ip_dst=ALL_NODES, message=message
    )


class MaintenanceSchedule:
    """When the next round is due (dpservice ``dp_timers.c``): 5 s steps, 30 s after init + 5 rounds."""

    def __init__(self, start: float) -> None:
        self.due = start + STARTUP_INTERVAL
        self._rounds_after_init = 0

    @property
    def interval(self) -> float:
        return INTERVAL if self._rounds_after_init >= CYCLES_AFTER_INIT else STARTUP_INTERVAL

    def ran(self, now: float, initialized: bool) -> None:
        """Record a round run at ``now`` and schedule the next (never in the past: no bursts)."""
        if initialized and self._rounds_after_init < CYCLES_AFTER_INIT:
            self._rounds_after_init += 1
        self.due += self.interval
        if self.due <= now:
            self.due = now + self.interval


class PeriodicMessages:
    """The worker's periodic-frame timer: builds a round when due and sends it to the VF ports.

    Frames go straight to the ports (through a small pool of their own), not through the graph:
    they need no processing, like dpservice's ``rx_periodic`` → ``tx`` path.
    """

    def __init__(
        self,
        state: AgentState,
        macs: PortMacs,
        ports: Sequence[Port],
        graph: Graph | None = None,
        *,
        now: float | None = None,
    ) -> None:
        self.state = state
        self.macs = macs
        self.ports = {p.spec.port_id: p for p in ports}
        self.schedule = MaintenanceSchedule(time.monotonic() if now is None else now)
        # a round holds at most 3 frames per VF (RA, NA, GARP)
        self.pool = PacketPool(max(8, 3 * len(self.ports)))
        self.frames_sent = 0
        self.frames_dropped = 0  # not accepted by the port

    def next_due(self) -> float:
        return self.schedule.due

    def run_due(self, now: float) -> None:
        """Send one round if it is due at ``now``."""
        if now < self.schedule.due:
            return
        self.schedule.ran(now, self.state.initialized)
        by_port: dict[int, list[bytes]] = {}
        for port_id, frame in build_periodic_frames(self.state, self.macs):
            by_port.setdefault(port_id, []).append(frame)
        for port_id, frames in by_port.items():
            port = self.ports.get(port_id)
            if port is None:
                self.frames_dropped += len(frames)
                continue
            batch = self._batch(port_id, frames)
            try:
                accepted = port.send(batch)
            finally:
                self.pool.free(batch.slot)
            self.frames_sent += accepted
            self.frames_dropped += len(frames) - accepted

    def _batch(self, port_id: int, frames: list[bytes]) -> Batch:
        batch = Batch(self.pool, len(frames))
        batch.slot[:] = self.pool.alloc(len(frames))
        batch.off[:] = HEADROOM
        batch.rx_port[:] = port_id
        batch.tx_port[:] = port_id
        for i, frame in enumerate(frames):
            self.pool.data[batch.slot[i], HEADROOM : HEADROOM + len(frame)] = np.frombuffer(
                frame, dtype=np.uint8
            )
            batch.length[i] = len(frame)
        return batch
