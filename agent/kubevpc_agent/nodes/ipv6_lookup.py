"""ipv6_lookup: longest-prefix match in the packet's VNI and next-hop resolution (DPSERVICE.md §3.1, §4.6).

In:  IPv6 packets with ``vni`` set (the interface's VNI for VM traffic, the underlay's VNI for
     uplink traffic; dpservice routes uplink traffic here only after ``dnat``).
Out: ``tx`` when the route leads to a VM port: the Ethernet header is rewritten (dst = the VM's
     learned MAC, src = the port's own MAC), ``tx_port`` set; ``ipip_encap`` when it leads to an
     underlay next hop: ``nh_*`` = the route's next hop, ``tx_port`` = pf0 (dpservice has no
     WCMP for the IPv6 overlay, §4.14); drop on a miss and for uplink-to-uplink routing.
     dpservice sends both on through ``snat`` and ``firewall``; those slot in front of tx/encap.
The hop limit is not decremented (dpservice does not either).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.tables.lpm import Lpm6
from kubevpc_agent.tables.model import NextHopKind
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.vm_mac import PortMacs


class Next(IntEnum):
    DROP = 0
    TX = 1
    IPIP_ENCAP = 2


class Counter(IntEnum):
    TO_VM = 0
    TO_UNDERLAY = 1
    NO_ROUTE = 2
    UPLINK_TO_UPLINK = 3
    BAD_NEXT_HOP = 4


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.TO_VM: "Packets routed to a VM port",
    Counter.TO_UNDERLAY: "Packets routed to an underlay next hop",
    Counter.NO_ROUTE: "Packets without a route in their VNI (dropped)",
    Counter.UPLINK_TO_UPLINK: "Uplink packets routed back to the underlay (dropped)",
    Counter.BAD_NEXT_HOP: "Routes to a port the agent does not have (dropped)",
}


class Ipv6Lookup(Node):
    """IPv6 routing; see the module docstring."""

    name = "ipv6_lookup"
    NEXT_NODES = {Next.TX: "tx", Next.IPIP_ENCAP: "ipip_encap"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, lpm: Lpm6, ports: PortTable, macs: PortMacs) -> None:
        super().__init__()
        self.lpm = lpm
        self.ports = ports
        self.macs = macs

    def process(self, batch: Batch) -> npt.NDArray[np.intp]:
        self.lpm.refresh()
        self.ports.refresh()
        route = self.lpm.lookup(batch.vni, batch.dst_hi, batch.dst_lo)
        hit = route >= 0
        if not hit.any():
            self.count(Counter.NO_ROUTE, len(batch))
            return np.zeros(len(batch), dtype=np.intp)
        targets = self.lpm.targets
        r = np.where(hit, route, 0)
        to_underlay = hit & (targets.kind[r] == NextHopKind.UNDERLAY)
        pf0 = self.ports.pf_ids[0] if self.ports.pf_ids else -1
        out = np.where(to_underlay, pf0, targets.port[r]).astype(np.int16)
        return self._resolve(batch, r, hit, to_underlay, out)

    def _resolve(
        self,
        batch: Batch,
        route: npt.NDArray[np.int32],
        hit: npt.NDArray[np.bool_],
        to_underlay: npt.NDArray[np.bool_],
        out: npt.NDArray[np.int16],
    ) -> npt.NDArray[np.intp]:
        """Write next hops and Ethernet headers, count, and return the edges."""
        ports, macs = self.ports, self.macs
        out_idx, out_ok = ports.index(out)
        rx_idx, _ = ports.index(batch.rx_port)
        reason = np.select(
            [~hit, ~out_ok, to_underlay & ports.is_pf[rx_idx]],
            [Counter.NO_ROUTE + 1, Counter.BAD_NEXT_HOP + 1, Counter.UPLINK_TO_UPLINK + 1],
            0,
        )
        ok = reason == 0
        # Ethernet towards the VM; rows going to the underlay get a new outer header in ipip_encap
        # and dropped rows are freed, so writing every row is harmless and saves a gather
        batch.write(0, np.concatenate([macs.peer[out_idx], macs.own[out_idx]], axis=1))
        batch.tx_port = np.where(ok, out, batch.tx_port).astype(np.int16)
        targets = self.lpm.targets
        batch.nh_hi = np.where(to_underlay, targets.nh_hi[route], batch.nh_hi)
        batch.nh_lo = np.where(to_underlay, targets.nh_lo[route], batch.nh_lo)
        edges = np.where(ok, np.where(to_underlay, Next.IPIP_ENCAP, Next.TX), Next.DROP).astype(np.intp)
        counts = np.bincount(reason, minlength=len(Counter) + 1)
        n_under = int(np.count_nonzero(ok & to_underlay))
        counts[Counter.TO_VM + 1] = int(counts[0]) - n_under
        counts[Counter.TO_UNDERLAY + 1] = n_under
        self.counters += counts[1:].astype(np.uint64)
        return edges
