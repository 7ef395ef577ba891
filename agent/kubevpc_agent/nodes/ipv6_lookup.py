"""ipv6_lookup: longest-prefix match in the packet's VNI and next-hop resolution (DPSERVICE.md §3.1, §4.6).

In:  IPv6 packets with ``vni`` set (the interface's VNI for VM traffic, the underlay's VNI for
     uplink traffic; dpservice routes uplink traffic here only after ``dnat``).
Out: ``snat`` (then ``firewall``, ``tx`` / ``ipip_encap``), as dpservice: towards a VM port the
     Ethernet header is rewritten (dst = the VM's learned MAC, src = the port's own MAC),
     ``tx_port`` set; towards an underlay next hop ``nh_*`` = the route's next hop, ``tx_port`` =
     pf0 (dpservice has no WCMP for the IPv6 overlay, §4.14); a default route marks the packet
     south-north (NAT64); drop on a miss and for uplink-to-uplink routing. The edges keep their
     names (TX, IPIP_ENCAP) and counters; both lead to ``snat``.
The hop limit is not decremented (dpservice does not either).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.tables.lpm import Lpm6
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.routing import ROUTE_COUNTER_HELP, RouteCounter, RouteNext, resolve_routes
from kubevpc_agent.tables.vm_mac import PortMacs

Counter = RouteCounter  # to_vm, to_underlay, no_route, uplink_to_uplink, bad_next_hop
COUNTER_HELP = ROUTE_COUNTER_HELP
Next = RouteNext  # DROP, TX, IPIP_ENCAP


class Ipv6Lookup(Node):
    """IPv6 routing; see the module docstring."""

    name = "ipv6_lookup"
    NEXT_NODES = {Next.TX: "snat", Next.IPIP_ENCAP: "snat"}  # snat → firewall → tx / ipip_encap
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, lpm: Lpm6, ports: PortTable, macs: PortMacs) -> None:
        super().__init__()
        self.lpm = lpm
        self.ports = ports
        self.macs = macs

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        self.lpm.refresh()
        self.ports.refresh()
        route = self.lpm.lookup(batch.vni, batch.dst_hi, batch.dst_lo)
        uplink = self.ports.pf_ids[0] if self.ports.pf_ids else -1
        resolved = resolve_routes(batch, route, self.lpm.targets, self.ports, self.macs, uplink=uplink)
        self.counters += resolved.counts
        return resolved.edges()
