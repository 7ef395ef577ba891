"""arp: answer VMs' ARP requests for the gateway 169.254.0.1 and learn VM MACs (DPSERVICE.md §4.1).

In:  frames ``cls`` found to hold an Ethernet/IPv4 ARP packet after the Ethernet header.
Out: ``tx`` back to the rx port for a request for the gateway, rewritten in place into the reply
     (Ether dst = requester's sha, Ether src and sha = the port's own MAC, sip = the gateway,
     tha/tip = the requester's sha/sip); drop otherwise.

While an interface's "ARP cycle" is pending (from its creation until its VM first sends an ARP with
its own IPv4 as sender address, which the periodic GARP asks for), such an ARP packet teaches the
port's VM MAC. dpservice then reflects that packet back to the VM unchanged, so a VM's first ARP
request for the gateway goes unanswered; we process it on after learning instead (a request for the
gateway is answered, anything else dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.protocols.arp import (
    ARP_LEN,
    OFF_OPCODE,
    OFF_SHA,
    OFF_SPA,
    OFF_THA,
    OFF_TPA,
    ArpOp,
    parse_arp,
)
from kubevpc_agent.protocols.ether import ETHER_LEN, OFF_DST, OFF_SRC
from kubevpc_agent.tables.model import GATEWAY_IPV4
from kubevpc_agent.tables.responder import GatewayResponder, ReplyNext

GATEWAY = GATEWAY_IPV4.packed


Next = ReplyNext  # DROP, TX


class Counter(IntEnum):
    REPLIED = 0
    LEARNED = 1
    NOT_FOR_GATEWAY = 2
    NOT_VF = 3
    MALFORMED = 4


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.REPLIED: "ARP requests for the gateway answered",
    Counter.LEARNED: "VM MACs learned from the VM's ARP during its ARP cycle",
    Counter.NOT_FOR_GATEWAY: "ARP packets that are not a request for the gateway (dropped)",
    Counter.NOT_VF: "ARP packets from a port that is not a VF (dropped)",
    Counter.MALFORMED: "Truncated frames or ARP for another hardware/protocol type (dropped)",
}


class Arp(GatewayResponder):
    """ARP responder for the gateway address; see the module docstring."""

    name = "arp"
    COUNTER_HELP = COUNTER_HELP

    def next_for(self, batch: Batch, i: int) -> int:
        counts = self.tally
        port_id = int(batch.rx_port[i])
        if not self.from_vf(port_id):
            counts[Counter.NOT_VF] += 1
            return Next.DROP
        frame = batch.frame(i)
        arp = parse_arp(bytes(frame[ETHER_LEN : ETHER_LEN + ARP_LEN]))
        if arp is None:
            counts[Counter.MALFORMED] += 1
            return Next.DROP

        # the VM speaking for its own address while its ARP cycle is pending: learn its MAC
        iface = self.state.interface_by_port(port_id)
        if (
            iface is not None
            and iface.ipv4 is not None
            and arp.spa == iface.ipv4.packed
            and self.macs.is_arp_cycle_pending(port_id, iface)
        ):
            self.macs.learn(port_id, bytes(frame[OFF_SRC : OFF_SRC + 6]))
            self.macs.end_arp_cycle(port_id, iface)
            counts[Counter.LEARNED] += 1

        # anything but a request for the gateway
        if arp.op != ArpOp.REQUEST or arp.tpa != GATEWAY:
            counts[Counter.NOT_FOR_GATEWAY] += 1
            return Next.DROP

        own = self.macs.own_mac(port_id)
        arp_at = ETHER_LEN
        frame[OFF_DST : OFF_DST + 6] = list(arp.sha)
        frame[OFF_SRC : OFF_SRC + 6] = list(own)
        frame[arp_at + OFF_OPCODE : arp_at + OFF_OPCODE + 2] = [0, ArpOp.REPLY]
        frame[arp_at + OFF_SHA : arp_at + OFF_SHA + 6] = list(own)
        frame[arp_at + OFF_SPA : arp_at + OFF_SPA + 4] = list(arp.tpa)
        frame[arp_at + OFF_THA : arp_at + OFF_THA + 6] = list(arp.sha)
        frame[arp_at + OFF_TPA : arp_at + OFF_TPA + 4] = list(arp.spa)
        batch.tx_port[i] = port_id
        counts[Counter.REPLIED] += 1
        return Next.TX
