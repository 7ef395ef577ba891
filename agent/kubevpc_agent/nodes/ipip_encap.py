"""ipip_encap: put routed overlay packets into an IPv6 underlay header (RFC 2473; DPSERVICE.md §3.3).

In:  IPv4/IPv6 packets whose ``tx_port`` is an uplink and ``nh_*`` the underlay next hop.
Out: ``tx``, each frame now ``Ether / IPv6 / inner IP``, or ``cls`` for a load balancer's
     recirculation (``nat`` = ``NatType.LB_RECIRC``: the target is an LB prefix of a local
     interface, so the packet enters the graph again as if it came back from the underlay):

* Ether dst = the uplink's router MAC (learned; zeros until known), src = the uplink's own MAC,
  type 0x86DD;
* IPv6 ``0x60000000`` (traffic class and flow label 0), payload length = the inner packet's length,
  next header 4 (inner IPv4) or 41 (inner IPv6), hop limit 64;
* source = ``ul_src_*`` when a network function set it (relays, LB), otherwise the rx port's
  underlay: the interface's on a VF, the host ``--ipv6`` on an uplink; destination = ``nh_*``.

The inner Ethernet header is replaced, not kept: the frame start moves back 40 bytes into the
headroom (Ether 14 + IPv6 40 - inner Ether 14), so no packet bytes are copied. The LB
recirculation edge back to ``cls`` clears the mark, so a packet recirculates at most once.
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
from kubevpc_agent.tables.conntrack import NatType
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.reasons import add_reasons, first_reason
from kubevpc_agent.tables.vm_mac import PortMacs

OUTER_LEN = ETHER_LEN + ipv6.IPV6_LEN  # 54 bytes written in front of the inner IP packet
GROWTH = ipv6.IPV6_LEN  # the frame grows by 40: the inner Ethernet header is reused for the outer
L3_IPV4, L3_IPV6 = int(L3.IPV4), int(L3.IPV6)
NAT_LB_RECIRC = int(NatType.LB_RECIRC)

# bytes 12..21 of the outer header: ether type, version/class/flow, (payload length), next header, hop limit
_FIXED = np.frombuffer(
    EtherType.IPV6.to_bytes(2, "big") + ipv6.VTC_FLOW_DEFAULT.to_bytes(4, "big"), dtype=np.uint8
)


class Next(IntEnum):
    DROP = 0
    TX = 1
    CLS = 2


class Counter(IntEnum):
    ENCAPSULATED = 0
    NO_HEADROOM = 1
    NOT_IP = 2
    NOT_AN_UPLINK = 3
    RECIRCULATED = 4


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.ENCAPSULATED: "Packets encapsulated into the IPv6 underlay",
    Counter.NO_HEADROOM: "Frames without 40 bytes of headroom (dropped)",
    Counter.NOT_IP: "Frames that are not IPv4/IPv6 (dropped)",
    Counter.NOT_AN_UPLINK: "Packets whose tx port is not an uplink (dropped)",
    Counter.RECIRCULATED: "Encapsulated packets handed back to cls (load balancer to a local target)",
}


def _be_bytes(hi: npt.NDArray[np.uint64], lo: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """``(n, 16)`` network-order bytes of 128-bit values given as (hi, lo) halves."""
    halves = np.stack([hi, lo], axis=1).astype(">u8")
    return halves.view(np.uint8).reshape(len(hi), 16)


class IpipEncap(Node):
    """IP-in-IPv6 encapsulation; see the module docstring."""

    name = "ipip_encap"
    NEXT_NODES = {Next.TX: "tx", Next.CLS: "cls"}
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
        l3 = batch.l3
        v4 = l3 == L3_IPV4
        ok = (batch.off >= GROWTH) & tx_ok & ports.is_pf[tx_idx] & (v4 | (l3 == L3_IPV6))
        all_ok = bool(ok.all())
        if all_ok:
            self.counters[Counter.ENCAPSULATED] += np.uint64(n)
        else:
            reason = first_reason(
                [
                    (batch.off < GROWTH, Counter.NO_HEADROOM + 1),
                    (~(v4 | (l3 == L3_IPV6)), Counter.NOT_IP + 1),
                    (~(tx_ok & ports.is_pf[tx_idx]), Counter.NOT_AN_UPLINK + 1),
                ]
            )
            self.counters[Counter.ENCAPSULATED] += np.uint64(np.count_nonzero(ok))
            add_reasons(self.counters, reason)

        # source: set by a network function, else the rx port's underlay
        src_hi, src_lo = ports.ul_hi[rx_idx], ports.ul_lo[rx_idx]
        custom = (batch.ul_src_hi | batch.ul_src_lo) != 0
        if custom.any():
            src_hi = np.where(custom, batch.ul_src_hi, src_hi)
            src_lo = np.where(custom, batch.ul_src_lo, src_lo)
        payload = (batch.length - ETHER_LEN).astype(">u2")  # cls trimmed frames to the IP packet

        header = np.empty((n, OUTER_LEN), dtype=np.uint8)
        header[:, 0:18] = np.concatenate(
            [macs.peer, macs.own, np.broadcast_to(_FIXED, (len(macs.own), 6))], 1
        )[tx_idx]
        header[:, 18:20] = payload.view(np.uint8).reshape(n, 2)
        header[:, 20] = np.where(v4, ipv6.NH_IPIP, ipv6.NH_IPV6)
        header[:, 21] = ipv6.DEFAULT_HOP_LIMIT
        header[:, 22:38] = _be_bytes(src_hi, src_lo)
        header[:, 38:54] = _be_bytes(batch.nh_hi, batch.nh_lo)
        if all_ok:
            batch.write(-GROWTH, header)
            batch.off -= GROWTH
            batch.length += GROWTH
        else:
            # some rows are dropped (e.g. no headroom): write through a view of the others only
            batch.select(ok).write(-GROWTH, header[ok])
            batch.off = np.where(ok, batch.off - GROWTH, batch.off).astype(np.int32)
            batch.length = np.where(ok, batch.length + GROWTH, batch.length).astype(np.int32)

        # load-balancer recirculation: back to cls once, the mark cleared
        recirc = ok & (batch.nat == NAT_LB_RECIRC)
        if recirc.any():
            batch.nat = np.where(recirc, 0, batch.nat).astype(np.uint8)
            self.counters[Counter.RECIRCULATED] += np.uint64(np.count_nonzero(recirc))
            return np.where(ok, np.where(recirc, Next.CLS, Next.TX), Next.DROP).astype(np.intp)
        return Next.TX if all_ok else np.where(ok, Next.TX, Next.DROP).astype(np.intp)
