"""ipip_encap: put routed overlay packets into an IPv6 underlay header (RFC 2473; DPSERVICE.md §3.3).

In:  IPv4/IPv6 packets whose ``tx_port`` is an uplink and ``nh_*`` the underlay next hop.
Out: ``tx``, each frame now ``Ether / IPv6 / inner IP``:

* Ether dst = the uplink's router MAC (learned; zeros until known), src = the uplink's own MAC,
  type 0x86DD;
* IPv6 ``0x60000000`` (traffic class and flow label 0), payload length = the inner packet's length,
  next header 4 (inner IPv4) or 41 (inner IPv6), hop limit 64;
* source = ``ul_src_*`` when a network function set it (relays, LB), otherwise the rx port's
  underlay: the interface's on a VF, the host ``--ipv6`` on an uplink; destination = ``nh_*``.

The inner Ethernet header is replaced, not kept: the frame start moves back 40 bytes into the
headroom (Ether 14 + IPv6 40 - inner Ether 14), so no packet bytes are copied. dpservice's LB
recirculation edge back to ``cls`` comes with the load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import ipv6
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.vm_mac import PortMacs

OUTER_LEN = ETHER_LEN + ipv6.IPV6_LEN  # 54 bytes written in front of the inner IP packet
GROWTH = ipv6.IPV6_LEN  # the frame grows by 40: the inner Ethernet header is reused for the outer

# bytes 12..21 of the outer header: ether type, version/class/flow, (payload length), next header, hop limit
_FIXED = np.frombuffer(
    EtherType.IPV6.to_bytes(2, "big") + ipv6.VTC_FLOW_DEFAULT.to_bytes(4, "big"), dtype=np.uint8
)


class Next(IntEnum):
    DROP = 0
    TX = 1


class Counter(IntEnum):
    ENCAPSULATED = 0
    NO_HEADROOM = 1
    NOT_IP = 2
    NOT_AN_UPLINK = 3


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.ENCAPSULATED: "Packets encapsulated into the IPv6 underlay",
    Counter.NO_HEADROOM: "Frames without 40 bytes of headroom (dropped)",
    Counter.NOT_IP: "Frames that are not IPv4/IPv6 (dropped)",
    Counter.NOT_AN_UPLINK: "Packets whose tx port is not an uplink (dropped)",
}


def _be_bytes(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """``(n, 16)`` network-order bytes of 128-bit values given as (hi, lo) halves."""
    halves = np.stack([hi, lo], axis=1).astype(">u8")
    return halves.view(np.uint8).reshape(len(hi), 16)


class IpipEncap(Node):
    """IP-in-IPv6 encapsulation; see the module docstring."""

    name = "ipip_encap"
    NEXT_NODES = {Next.TX: "tx"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, ports: PortTable, macs: PortMacs) -> None:
        super().__init__()
        self.ports = ports
        self.macs = macs

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        ports, macs = self.ports, self.macs
        ports.refresh()
        n = len(batch)
        tx_idx, tx_ok = ports.index(batch.tx_port)
        rx_idx, _ = ports.index(batch.rx_port)
        v4 = batch.l3 == L3.IPV4
        reason = np.select(
            [batch.off < GROWTH, ~(v4 | (batch.l3 == L3.IPV6)), ~(tx_ok & ports.is_pf[tx_idx])],
            [Counter.NO_HEADROOM, Counter.NOT_IP, Counter.NOT_AN_UPLINK],
            Counter.ENCAPSULATED,
        )
        ok = reason == Counter.ENCAPSULATED
        self.counters += np.bincount(reason, minlength=len(Counter)).astype(np.uint64)

        # source: set by a network function, else the rx port's underlay
        custom = (batch.ul_src_hi | batch.ul_src_lo) != 0
        src_hi = np.where(custom, batch.ul_src_hi, ports.ul_hi[rx_idx])
        src_lo = np.where(custom, batch.ul_src_lo, ports.ul_lo[rx_idx])
        payload = (batch.length - ETHER_LEN).astype(np.uint16)  # cls trimmed frames to the IP packet

        header = np.empty((n, OUTER_LEN), dtype=np.uint8)
        header[:, 0:6] = macs.peer[tx_idx]
        header[:, 6:12] = macs.own[tx_idx]
        header[:, 12:18] = _FIXED
        header[:, 18] = payload >> np.uint16(8)
        header[:, 19] = payload & np.uint16(0xFF)
        header[:, 20] = np.where(v4, ipv6.NH_IPIP, ipv6.NH_IPV6)
        header[:, 21] = ipv6.DEFAULT_HOP_LIMIT
        header[:, 22:38] = _be_bytes(src_hi, src_lo)
        header[:, 38:54] = _be_bytes(batch.nh_hi, batch.nh_lo)
        if ok.all():
            batch.write(-GROWTH, header)
            batch.off -= GROWTH
            batch.length += GROWTH
            return Next.TX
        # some rows are dropped (e.g. no headroom): write through a view of the others only
        batch.select(ok).write(-GROWTH, header[ok])
        batch.off = np.where(ok, batch.off - GROWTH, batch.off).astype(np.int32)
        batch.length = np.where(ok, batch.length + GROWTH, batch.length).astype(np.int32)
        return np.where(ok, Next.TX, Next.DROP).astype(np.intp)
