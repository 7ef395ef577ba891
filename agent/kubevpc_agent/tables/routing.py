"""What ``ipv4_lookup`` and ``ipv6_lookup`` share: turning route matches into next hops (DPSERVICE.md §3.1).

Given each packet's matched route (or MISS) and the uplink each underlay-bound packet would take,
``resolve_routes`` writes ``tx_port``, the underlay next hop (``nh_*``) and, towards a VM, the
Ethernet header (dst = the VM's learned MAC, src = the out port's own MAC), marks packets a
default route matched as south-north (``PacketMark.SOUTH_NORTH`` in ``nat``: ``snat`` translates
only those, §4.6), and reports which packets go to the underlay and why the others are dropped;
:meth:`Resolved.edges` turns that into both nodes' next edges. Packets arriving from an uplink
are never routed back to the underlay (dpservice drops routed PF→PF traffic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.tables.conntrack import PacketMark
from kubevpc_agent.tables.lpm import RouteTargets
from kubevpc_agent.tables.model import NextHopKind
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.reasons import first_reason
from kubevpc_agent.tables.vm_mac import PortMacs

BoolArray = npt.NDArray[np.bool_]
UNDERLAY = int(NextHopKind.UNDERLAY)
_SOUTH_NORTH = np.uint8(PacketMark.SOUTH_NORTH)


class RouteCounter(IntEnum):
    """The counters of both lookup nodes."""

    TO_VM = 0
    TO_UNDERLAY = 1
    NO_ROUTE = 2
    UPLINK_TO_UPLINK = 3
    BAD_NEXT_HOP = 4


ROUTE_COUNTER_HELP: Mapping[IntEnum, str] = {
    RouteCounter.TO_VM: "Packets routed to a VM port",
    RouteCounter.TO_UNDERLAY: "Packets routed to an underlay next hop",
    RouteCounter.NO_ROUTE: "Packets without a route in their VNI (dropped)",
    RouteCounter.UPLINK_TO_UPLINK: "Uplink packets routed back to the underlay (dropped)",
    RouteCounter.BAD_NEXT_HOP: "Routes to a port the agent does not have (dropped)",
}


class RouteNext(IntEnum):
    """The edges of both lookup nodes: to a VM port (TX) or to an underlay next hop (IPIP_ENCAP)."""

    DROP = 0
    TX = 1
    IPIP_ENCAP = 2


@dataclass
class Resolved:
    """The outcome for a batch."""

    to_underlay: BoolArray  # routed to an underlay next hop (and not dropped)
    dropped: BoolArray | None  # None: nothing dropped
    counts: npt.NDArray[np.uint64]  # per RouteCounter, to add to the node's counters

    def edges(self) -> npt.NDArray[np.intp] | int:
        """One edge for the batch when all packets go the same way, else one per packet."""
        if self.dropped is None:
            if not self.to_underlay.any():
                return RouteNext.TX
            if self.to_underlay.all():
                return RouteNext.IPIP_ENCAP
        edges = np.where(self.to_underlay, RouteNext.IPIP_ENCAP, RouteNext.TX).astype(np.intp)
        if self.dropped is not None:
            edges[self.dropped] = RouteNext.DROP
        return edges


def resolve_routes(
    batch: Batch,
    route: npt.NDArray[np.int32],
    targets: RouteTargets,
    ports: PortTable,
    macs: PortMacs,
    *,
    uplink: npt.NDArray[np.int16] | int,
) -> Resolved:
    """Apply matched routes to ``batch`` (see the module docstring); ``uplink``: per packet or one port."""
    kind = targets.kind[route]  # MISS reads the pad row
    to_underlay = kind == UNDERLAY
    any_underlay = bool(to_underlay.any())
    out = np.where(to_underlay, uplink, targets.port[route]) if any_underlay else targets.port[route]
    out_idx, out_ok = ports.index(out)
    rx_idx, _ = ports.index(batch.rx_port)
    hit = route >= 0
    bad = ~(hit & out_ok)
    if any_underlay:
        bad |= to_underlay & ports.is_pf[rx_idx]
    any_bad = bool(bad.any())

    # Ethernet towards the VM, written for every row: underlay-bound rows get a new outer header in
    # ipip_encap and dropped rows are freed, so this saves a row selection
    ether = np.concatenate([macs.peer, macs.own], axis=1)
    batch.write(0, ether[out_idx])
    batch.tx_port = (
        out.astype(np.int16) if not any_bad else np.where(bad, batch.tx_port, out).astype(np.int16)
    )
    default_route = targets.length[route] == 0
    if default_route.any():
        batch.nat = batch.nat | np.where(default_route, _SOUTH_NORTH, 0).astype(np.uint8)
    counts = np.zeros(len(RouteCounter), dtype=np.uint64)
    if any_underlay:
        batch.nh_hi = np.where(to_underlay, targets.nh_hi[route], batch.nh_hi)
        batch.nh_lo = np.where(to_underlay, targets.nh_lo[route], batch.nh_lo)
    if not any_bad:
        n_under = int(np.count_nonzero(to_underlay)) if any_underlay else 0
        counts[RouteCounter.TO_UNDERLAY] = n_under
        counts[RouteCounter.TO_VM] = len(batch) - n_under
        return Resolved(to_underlay, None, counts)
    reason = first_reason(
        [
            (~hit, RouteCounter.NO_ROUTE + 1),
            (~out_ok, RouteCounter.BAD_NEXT_HOP + 1),
            (to_underlay & ports.is_pf[rx_idx], RouteCounter.UPLINK_TO_UPLINK + 1),
        ]
    )
    counts += np.bincount(reason, minlength=len(RouteCounter) + 1)[1:].astype(np.uint64)
    sent_under = to_underlay & ~bad
    counts[RouteCounter.TO_UNDERLAY] = int(np.count_nonzero(sent_under))
    counts[RouteCounter.TO_VM] = int(np.count_nonzero(~bad)) - int(counts[RouteCounter.TO_UNDERLAY])
    return Resolved(sent_under, bad, counts)
