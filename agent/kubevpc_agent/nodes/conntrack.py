"""conntrack: the flow stage between classification and the network functions (DPSERVICE.md §3.1, §4.12).

In:  IPv4/IPv6 packets from ``cls`` (VM traffic) and from ``ipip_decap`` (uplink traffic, already
     decapsulated, with ``vni``, ``vnf_type`` and ``tx_port`` set from the underlay address).
Out: ``dhcp`` for IPv4 UDP to port 67 and ``dhcpv6`` for IPv6 UDP to port 547 from a VM;
     VM traffic on to routing, ``ipv4_lookup`` / ``ipv6_lookup`` (dpservice: ``dnat`` first);
     uplink traffic for an interface, alias prefix or LB prefix straight to ``tx`` on the port the
     underlay belongs to (dpservice: ``firewall`` first); drop otherwise, counted per reason.

What is here today is dpservice's protocol gate: only TCP, UDP, ICMP and ICMPv6 pass, ICMP only as
echo or as destination-unreachable with codes 2, 3, 4 (DPSERVICE.md §4.5). Flow tracking (the flow
table, TCP state, timeouts) and the network-function nodes it dispatches to (``dnat``, ``lb``,
``firewall``) belong to the network-functions issue; until they exist, uplink traffic for a VIP,
a NAT slice or a load balancer has no stage to go to and is dropped as ``no_network_function``.
Where they slot in: ``NEXT_NODES`` below names today's targets; each is one line to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, tcp, udp
from kubevpc_agent.protocols.ether import ETHER_LEN
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.port_table import PortTable


class Next(IntEnum):
    DROP = 0
    DHCP = 1
    DHCPV6 = 2
    IPV4_LOOKUP = 3  # dpservice: dnat, then ipv4_lookup
    IPV6_LOOKUP = 4  # dpservice: dnat, then ipv6_lookup
    DELIVER = 5  # uplink traffic for a local interface; dpservice: firewall, then tx


class Counter(IntEnum):
    UNSUPPORTED_PROTOCOL = 0
    ICMP_TYPE_DROPPED = 1
    DHCP_FROM_UPLINK = 2
    NO_NETWORK_FUNCTION = 3
    UNDEFINED_UNDERLAY = 4


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.UNSUPPORTED_PROTOCOL: "Packets whose IP protocol is not TCP, UDP, ICMP or ICMPv6",
    Counter.ICMP_TYPE_DROPPED: "ICMP other than echo and destination unreachable (codes 2, 3, 4)",
    Counter.DHCP_FROM_UPLINK: "DHCP/DHCPv6 server-port packets arriving through an uplink",
    Counter.NO_NETWORK_FUNCTION: "Uplink packets for a VIP, NAT or LB underlay (no such stage yet)",
    Counter.UNDEFINED_UNDERLAY: "Uplink packets whose underlay type is undefined",
}

TRACKED = np.zeros(256, dtype=bool)
TRACKED[[tcp.PROTO, udp.PROTO, icmp.PROTO, icmpv6.PROTO]] = True
ICMP_FORWARDED = np.zeros(256, dtype=bool)
ICMP_FORWARDED[list(icmp.FORWARDED_TYPES)] = True
UNREACHABLE_CODE_FORWARDED = np.zeros(256, dtype=bool)
UNREACHABLE_CODE_FORWARDED[list(icmp.FORWARDED_UNREACHABLE_CODES)] = True
LOCAL_VNF = np.zeros(256, dtype=bool)  # underlay types delivered to a local port
LOCAL_VNF[[VnfType.INTERFACE_IP, VnfType.ALIAS_PFX, VnfType.LB_ALIAS_PFX]] = True
FUNCTION_VNF = np.zeros(256, dtype=bool)  # underlay types that need dnat or lb
FUNCTION_VNF[[VnfType.VIP, VnfType.NAT, VnfType.LB]] = True
ICMP_CODE_AT = ETHER_LEN + IPV4_LEN + icmp.OFF_CODE  # in IPv6 (proto 1 there is odd but legal) 20 bytes later
ICMP_CODE_V6_SHIFT = IPV6_LEN - IPV4_LEN


class Conntrack(Node):
    """Protocol gate and dispatch; see the module docstring."""

    name = "conntrack"
    NEXT_NODES = {
        Next.DHCP: "dhcp",
        Next.DHCPV6: "dhcpv6",
        Next.IPV4_LOOKUP: "ipv4_lookup",
        Next.IPV6_LOOKUP: "ipv6_lookup",
        Next.DELIVER: "tx",
    }
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, ports: PortTable) -> None:
        super().__init__()
        self.ports = ports

    def process(self, batch: Batch) -> npt.NDArray[np.intp]:
        ports = self.ports
        ports.refresh()
        idx, _ = ports.index(batch.rx_port)
        from_pf = ports.is_pf[idx]
        proto = batch.proto
        v4 = batch.l3 == L3.IPV4
        udp_dport = np.where(proto == udp.PROTO, batch.dport, 0)
        dhcp = v4 & (udp_dport == udp.DHCP_SERVER_PORT)
        dhcpv6 = ~v4 & (udp_dport == udp.DHCPV6_SERVER_PORT)

        is_icmp = proto == icmp.PROTO
        icmp_ok = ~is_icmp
        if is_icmp.any():
            # ICMP type is in the sport column; unreachable needs the code byte too
            codes = batch.read(ICMP_CODE_AT, ICMP_CODE_V6_SHIFT + 1)
            code = np.where(v4, codes[:, 0], codes[:, ICMP_CODE_V6_SHIFT])
            icmp_type = batch.sport.astype(np.intp) & 0xFF
            icmp_ok = ~is_icmp | (
                ICMP_FORWARDED[icmp_type]
                & ((icmp_type != icmp.IcmpType.DEST_UNREACHABLE) | UNREACHABLE_CODE_FORWARDED[code])
            )
        vnf = batch.vnf_type
        reason = np.select(
            [
                ~TRACKED[proto],
                ~icmp_ok,
                from_pf & (dhcp | dhcpv6),
                from_pf & FUNCTION_VNF[vnf],
                from_pf & ~LOCAL_VNF[vnf],
            ],
            [
                Counter.UNSUPPORTED_PROTOCOL + 1,
                Counter.ICMP_TYPE_DROPPED + 1,
                Counter.DHCP_FROM_UPLINK + 1,
                Counter.NO_NETWORK_FUNCTION + 1,
                Counter.UNDEFINED_UNDERLAY + 1,
            ],
            0,
        )
        edges = np.select(
            [reason > 0, dhcp, dhcpv6, from_pf, v4],
            [Next.DROP, Next.DHCP, Next.DHCPV6, Next.DELIVER, Next.IPV4_LOOKUP],
            Next.IPV6_LOOKUP,
        ).astype(np.intp)
        self.counters += np.bincount(reason, minlength=len(Counter) + 1)[1:].astype(np.uint64)
        return edges
