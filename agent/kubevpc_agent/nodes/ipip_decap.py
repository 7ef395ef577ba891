"""ipip_decap: strip the outer Ethernet + IPv6 underlay header (RFC 2473; DPSERVICE.md §3.1, §3.3).

In:  frames from an uplink whose outer IPv6 next header is 4 (IPv4) or 41 (IPv6); ``cls`` has
     validated both headers and filled the columns from the inner packet.
Out: ``conntrack``, with ``vni``, ``vnf_type`` and ``tx_port`` taken from the VNF entry of the
     outer destination (exact 128-bit match; the outer source is not checked, as in dpservice) and a
     new Ethernet header (dst = the learned MAC behind that port, src = the port's own MAC, type
     by the inner packet); drop when the destination is none of our underlay addresses.
     ``nh_*`` is left holding the outer source: where an answer goes (``packet_relay`` echo
     replies; dpservice keeps it as ``tun_info.ul_src_addr6``). Routing overwrites it.

The frame start moves forward 40 bytes (the inner packet keeps its place, the new Ethernet header
overwrites the end of the old IPv6 header), so no packet bytes are copied.
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
from kubevpc_agent.protocols.fields import u64
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.reasons import add_reasons, first_reason
from kubevpc_agent.tables.vm_mac import PortMacs
from kubevpc_agent.tables.vnf_map import VnfMap

OUTER_SRC = ETHER_LEN + ipv6.OFF_SRC  # 22, followed by the destination at 38
SHRINK = ipv6.IPV6_LEN  # 40 bytes fewer: outer Ether + IPv6 out, new Ether in
L3_IPV4 = int(L3.IPV4)
_V4_TYPE = np.frombuffer(EtherType.IPV4.to_bytes(2, "big"), dtype=np.uint8)
_V6_TYPE = np.frombuffer(EtherType.IPV6.to_bytes(2, "big"), dtype=np.uint8)


class Next(IntEnum):
    DROP = 0
    CONNTRACK = 1


class Counter(IntEnum):
    DECAPSULATED = 0
    NO_UNDERLAY_MATCH = 1
    BAD_PORT = 2


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.DECAPSULATED: "Packets decapsulated",
    Counter.NO_UNDERLAY_MATCH: "Outer destination is not one of our underlay addresses (dropped)",
    Counter.BAD_PORT: "Underlay address bound to a port the agent does not have (dropped)",
}


class IpipDecap(Node):
    """IP-in-IPv6 decapsulation; see the module docstring."""

    name = "ipip_decap"
    NEXT_NODES = {Next.CONNTRACK: "conntrack"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, vnf: VnfMap, ports: PortTable, macs: PortMacs) -> None:
        super().__init__()
        self.vnf = vnf
        self.ports = ports
        self.macs = macs

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        vnf, ports, macs = self.vnf, self.ports, self.macs
        vnf.refresh()
        ports.refresh()
        outer = batch.read(OUTER_SRC, 32)  # source, then destination
        entry = vnf.lookup(u64(outer, 16), u64(outer, 24))  # MISS (-1) reads the pad entry
        port = vnf.port[entry]
        port_idx, port_ok = ports.index(port)
        ok = (entry >= 0) & port_ok
        all_ok = bool(ok.all())
        if all_ok:
            self.counters[Counter.DECAPSULATED] += np.uint64(len(batch))
            batch.vni = vnf.vni[entry]
            batch.vnf_type = vnf.vnf_type[entry]
            batch.tx_port = port
        else:
            reason = first_reason(
                [(entry < 0, Counter.NO_UNDERLAY_MATCH + 1), (~port_ok, Counter.BAD_PORT + 1)]
            )
            self.counters[Counter.DECAPSULATED] += np.uint64(np.count_nonzero(ok))
            add_reasons(self.counters, reason)
            batch.vni = np.where(ok, vnf.vni[entry], batch.vni).astype(np.uint32)
            batch.vnf_type = np.where(ok, vnf.vnf_type[entry], batch.vnf_type).astype(np.uint8)
            batch.tx_port = np.where(ok, port, batch.tx_port).astype(np.int16)
        batch.nh_hi = u64(outer, 0)
        batch.nh_lo = u64(outer, 8)

        ether = np.empty((len(batch), ETHER_LEN), dtype=np.uint8)
        ether[:, 0:12] = np.concatenate([macs.peer, macs.own], axis=1)[port_idx]
        ether[:, 12:14] = np.where((batch.l3 == L3_IPV4)[:, None], _V4_TYPE, _V6_TYPE)
        if all_ok:
            batch.write(SHRINK, ether)
            batch.off += SHRINK
            batch.length -= SHRINK
            return Next.CONNTRACK
        batch.select(ok).write(SHRINK, ether[ok])
        batch.off = np.where(ok, batch.off + SHRINK, batch.off).astype(np.int32)
        batch.length = np.where(ok, batch.length - SHRINK, batch.length).astype(np.int32)
        return np.where(ok, Next.CONNTRACK, Next.DROP).astype(np.intp)
