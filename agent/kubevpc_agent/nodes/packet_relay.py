"""packet_relay: send uplink packets straight back to the underlay (DPSERVICE.md §3.1, §4.5, §4.8).

In:  uplink packets from ``dnat`` (neighbour-NAT flows, echo requests to a NAT IP) and from
     ``lb`` (echo requests to a load balancer IP), decapsulated, with ``nh_*`` still holding the
     outer source they came from (``ipip_decap`` leaves it there).
Out: ``ipip_encap`` out of the uplink they arrived on (``tx_port`` := ``rx_port``); the outer
     source is the host's ``--ipv6`` (encap's default for packets received on an uplink); drop.

* A neighbour-NAT flow (``nat_type`` NETWORK_NEIGH): the inner packet leaves untouched, the outer
  destination is the neighbour's underlay stored in the flow (dpservice's ``underlay_dst``).
* An ICMP or ICMPv6 echo request: answered in place, type := echo reply, source and destination
  swapped, checksums updated; the outer destination is the request's outer source.
* Anything else (or anything that did not arrive on an uplink) is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, rewrite
from kubevpc_agent.protocols.ether import ETHER_LEN
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv4 import OFF_DST as V4_DST
from kubevpc_agent.protocols.ipv4 import OFF_SRC as V4_SRC
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.protocols.ipv6 import OFF_DST as V6_DST
from kubevpc_agent.protocols.ipv6 import OFF_SRC as V6_SRC
from kubevpc_agent.tables.conntrack import FlowTable, NatType
from kubevpc_agent.tables.port_table import PortTable


class Next(IntEnum):
    DROP = 0
    IPIP_ENCAP = 1


class Counter(IntEnum):
    RELAYED = 0
    ECHO_REPLIED = 1
    NOT_RELAYABLE = 2
    NOT_FROM_UPLINK = 3


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.RELAYED: "Packets relayed to a neighbour NAT's underlay",
    Counter.ECHO_REPLIED: "ICMP/ICMPv6 echo requests to a NAT or LB IP answered",
    Counter.NOT_RELAYABLE: "Packets that are neither a relayed flow nor an echo request (dropped)",
    Counter.NOT_FROM_UPLINK: "Packets that did not arrive on an uplink (dropped)",
}


class PacketRelay(Node):
    """Relay and echo replies; see the module docstring."""

    name = "packet_relay"
    NEXT_NODES = {Next.IPIP_ENCAP: "ipip_encap"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, flows: FlowTable, ports: PortTable) -> None:
        super().__init__()
        self.flows = flows
        self.ports = ports

    def process(self, batch: Batch) -> npt.NDArray[np.intp]:
        flows, ports = self.flows, self.ports
        ports.refresh()
        f = batch.flow
        idx, known = ports.index(batch.rx_port)
        uplink = known & ports.is_pf[idx]
        neighbor = uplink & (flows.nat_type[f] == NatType.NETWORK_NEIGH)
        v4 = batch.l3 == L3.IPV4
        ping = (
            uplink
            & ~neighbor
            & (
                (v4 & (batch.proto == icmp.PROTO) & (batch.sport == icmp.IcmpType.ECHO_REQUEST))
                | (~v4 & (batch.proto == icmpv6.PROTO) & (batch.sport == icmpv6.Icmpv6Type.ECHO_REQUEST))
            )
        )
        ok = neighbor | ping
        if neighbor.any():
            rows = np.flatnonzero(neighbor)
            batch.nh_hi[rows] = flows.underlay_hi[f[rows]]
            batch.nh_lo[rows] = flows.underlay_lo[f[rows]]
        if ping.any():
            self._answer(batch, np.flatnonzero(ping & v4), np.flatnonzero(ping & ~v4))
        batch.tx_port = np.where(ok, batch.rx_port, batch.tx_port).astype(np.int16)
        self.count(Counter.RELAYED, int(np.count_nonzero(neighbor)))
        self.count(Counter.ECHO_REPLIED, int(np.count_nonzero(ping)))
        self.count(Counter.NOT_FROM_UPLINK, int(np.count_nonzero(~uplink)))
        self.count(Counter.NOT_RELAYABLE, int(np.count_nonzero(uplink & ~ok)))
        return np.where(ok, Next.IPIP_ENCAP, Next.DROP).astype(np.intp)

    @staticmethod
    def _answer(batch: Batch, rows4: npt.NDArray[np.intp], rows6: npt.NDArray[np.intp]) -> None:
        """Turn echo requests into replies in place (nh_* already holds the requester's underlay)."""
        for rows, ip_len, src_at, dst_at, width, reply_type in (
            (rows4, IPV4_LEN, V4_SRC, V4_DST, 4, icmp.IcmpType.ECHO_REPLY),
            (rows6, IPV6_LEN, V6_SRC, V6_DST, 16, icmpv6.Icmpv6Type.ECHO_REPLY),
        ):
            if len(rows) == 0:
                continue
            sub = batch.part(rows)
            hdr = sub.read(ETHER_LEN, ip_len + icmp.ICMP_LEN)
            # swapping the addresses changes neither the IPv4 header sum nor a pseudo-header sum
            src = hdr[:, src_at : src_at + width].copy()
            hdr[:, src_at : src_at + width] = hdr[:, dst_at : dst_at + width]
            hdr[:, dst_at : dst_at + width] = src
            old = rewrite.get16(hdr, ip_len)
            new = (old & np.uint16(0x00FF)) | np.uint16(reply_type << 8)
            rewrite.put16(hdr, ip_len, new)
            csum = ip_len + icmp.OFF_CHECKSUM  # ICMP and ICMPv6 alike
            rewrite.put16(
                hdr, csum, rewrite.apply_delta(rewrite.get16(hdr, csum), rewrite.word_delta(old, new))
            )
            sub.write(ETHER_LEN, hdr)
            for a, b in ((batch.src_hi, batch.dst_hi), (batch.src_lo, batch.dst_lo)):
                a[rows], b[rows] = b[rows], a[rows]
            batch.sport[rows] = reply_type
