"""cls: classify every received frame once and fill the batch's header columns (DPSERVICE.md §3.1).

In:  frames from the rx ports (and, later, LB recirculation from ``ipip_encap``).
Out: ``arp`` for ARP-shaped payloads (hardware 1, protocol 0x0800, lengths 6/4 after the Ethernet
     header; the ether type itself is not checked, as in dpservice); ``ipv6_nd`` for neighbour and
     router solicitations from a VM; ``conntrack`` for other IPv4/IPv6 from a VM; ``ipip_decap``
     for IP-in-IPv6 (next header 4 or 41) from an uplink; drop otherwise, one counter per reason.

Columns written: ``l3``, ``proto``, ``src_*``, ``dst_*``, ``sport``, ``dport`` (ICMP/ICMPv6:
type and identifier, dpservice's flow-key convention), ``vni`` (the interface's, for VF ports) and
``length``, trimmed to the IP packet (Ethernet padding removed, so later length arithmetic such as
the encap payload length holds). For IP-in-IPv6 from an uplink the columns describe the *inner*
packet: every later node reads the inner header, and ``ipip_decap`` reads the outer destination.

Validation, beyond dpservice (which trusts DPDK's ptype and assumes 20-byte IPv4 and
extension-free IPv6 headers): truncated or inconsistent headers, IPv4 options and IPv4
fragments are dropped and counted instead of being misparsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch, be16, be32, be64
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, ipv4, ipv6, tcp, udp
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.tables.port_table import PortTable

TUNNEL_L3 = ETHER_LEN + ipv6.IPV6_LEN  # 54: inner header of an IP-in-IPv6 frame
L3_READ = ipv6.IPV6_LEN + 8  # an IP header plus the first 8 transport bytes (ports, ICMP id)
READ_LEN = TUNNEL_L3 + L3_READ  # 102 bytes read per frame, enough for the tunnelled case
ARP_SHAPE = np.array([0, 1, 8, 0, 6, 4], dtype=np.uint8)  # htype 1, ptype 0x0800, hlen 6, plen 4
ARP_LEN = ETHER_LEN + 28

# minimum transport header per IP protocol: what later nodes read (TCP flags at 13, ICMP id at 4)
L4_MIN = np.zeros(256, dtype=np.int32)
L4_MIN[tcp.PROTO] = tcp.TCP_LEN
L4_MIN[udp.PROTO] = udp.UDP_LEN
L4_MIN[icmp.PROTO] = icmp.ICMP_LEN
L4_MIN[icmpv6.PROTO] = icmpv6.ICMPV6_LEN


class Next(IntEnum):
    DROP = 0
    ARP = 1
    IPV6_ND = 2
    CONNTRACK = 3
    IPIP_DECAP = 4


class Counter(IntEnum):
    """Drop reasons; zero means 'not dropped' inside the node."""

    RUNT = 0
    UNKNOWN_PORT = 1
    PORT_NOT_ATTACHED = 2
    UNKNOWN_ETHERTYPE = 3
    TRUNCATED_ARP = 4
    IPV4_FROM_UPLINK = 5
    TRUNCATED_IPV4 = 6
    BAD_IPV4_HEADER = 7
    IPV4_OPTIONS = 8
    BAD_IPV4_LENGTH = 9
    IPV4_FRAGMENT = 10
    TRUNCATED_IPV6 = 11
    BAD_IPV6_HEADER = 12
    BAD_IPV6_LENGTH = 13
    ND_FROM_UPLINK = 14
    NOT_TUNNELLED = 15
    TRUNCATED_L4 = 16


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.RUNT: "Frames shorter than an Ethernet header",
    Counter.UNKNOWN_PORT: "Frames from a port id the agent does not know",
    Counter.PORT_NOT_ATTACHED: "Frames from a VF without an interface (a port dpservice has not started)",
    Counter.UNKNOWN_ETHERTYPE: "Frames that are neither IPv4, IPv6 nor ARP-shaped",
    Counter.TRUNCATED_ARP: "ARP-shaped frames shorter than Ethernet + 28 bytes",
    Counter.IPV4_FROM_UPLINK: "Plain IPv4 arriving on an uplink (only IP-in-IPv6 is accepted there)",
    Counter.TRUNCATED_IPV4: "IPv4 frames shorter than a 20-byte header",
    Counter.BAD_IPV4_HEADER: "IPv4 headers with version != 4 or IHL < 5",
    Counter.IPV4_OPTIONS: "IPv4 headers with options (IHL > 5), which the dataplane does not parse",
    Counter.BAD_IPV4_LENGTH: "IPv4 total length below 20 or beyond the frame",
    Counter.IPV4_FRAGMENT: "IPv4 fragments (MF set or non-zero offset)",
    Counter.TRUNCATED_IPV6: "IPv6 frames shorter than a 40-byte header",
    Counter.BAD_IPV6_HEADER: "IPv6 headers with version != 6",
    Counter.BAD_IPV6_LENGTH: "IPv6 payload length beyond the frame",
    Counter.ND_FROM_UPLINK: "Neighbour/router solicitations arriving on an uplink",
    Counter.NOT_TUNNELLED: "IPv6 on an uplink whose next header is not 4 or 41",
    Counter.TRUNCATED_L4: "TCP/UDP/ICMP/ICMPv6 packets too short for their transport header",
}

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


class Cls(Node):
    """Classifier; see the module docstring."""

    name = "cls"
    NEXT_NODES = {
        Next.ARP: "arp",
        Next.IPV6_ND: "ipv6_nd",
        Next.CONNTRACK: "conntrack",
        Next.IPIP_DECAP: "ipip_decap",
    }
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, ports: PortTable) -> None:
        super().__init__()
        self.ports = ports

    def process(self, batch: Batch) -> npt.NDArray[np.intp]:
        ports = self.ports
        ports.refresh()
        hdr = batch.read(0, READ_LEN)
        length = batch.length.astype(np.int64)
        port_idx, port_known = ports.index(batch.rx_port)
        from_pf = ports.is_pf[port_idx]
        attached = ports.attached[port_idx]

        ether_type = be16(hdr, 12)
        is_v4 = ether_type == EtherType.IPV4
        is_v6 = ether_type == EtherType.IPV6
        is_ip = is_v4 | is_v6
        is_arp = ~is_ip & (hdr[:, ETHER_LEN : ETHER_LEN + 6] == ARP_SHAPE).all(axis=1)

        # outer IPv6 header at 14 (the packet itself from a VF, the tunnel header from an uplink)
        v6_reason, v6_end = _check_ipv6(hdr[:, ETHER_LEN:], length - ETHER_LEN)
        next_header = hdr[:, ETHER_LEN + ipv6.OFF_NEXT_HEADER]
        icmp6_type = hdr[:, ETHER_LEN + ipv6.IPV6_LEN]
        is_nd = (next_header == icmpv6.PROTO) & (
            (icmp6_type == icmpv6.Icmpv6Type.NEIGHBOR_SOLICITATION)
            | (icmp6_type == icmpv6.Icmpv6Type.ROUTER_SOLICITATION)
        )
        tunnel = from_pf & is_v6 & ((next_header == ipv6.NH_IPIP) | (next_header == ipv6.NH_IPV6))

        # the header every later node reads: at 14, or at 54 inside a tunnel
        inner = hdr[:, ETHER_LEN : TUNNEL_L3 + 8].copy()
        inner_v4 = is_v4.copy()
        if tunnel.any():
            inner[tunnel] = hdr[tunnel, TUNNEL_L3:]
            inner_v4 = np.where(tunnel, next_header == ipv6.NH_IPIP, is_v4)
        l3_start = np.where(tunnel, TUNNEL_L3, ETHER_LEN)
        l3_avail = np.where(tunnel, v6_end - ipv6.IPV6_LEN, length - ETHER_LEN)  # inner: the outer payload
        proto = np.where(inner_v4, inner[:, ipv4.OFF_PROTO], inner[:, ipv6.OFF_NEXT_HEADER])
        in4_reason, in4_end = _check_ipv4(inner, l3_avail, proto)
        in6_reason, in6_end = _check_ipv6(inner, l3_avail, proto)
        inner_reason = np.where(inner_v4, in4_reason, in6_reason)
        inner_end = np.where(inner_v4, in4_end, in6_end)

        from_vf = ~from_pf
        reason = np.select(
            [
                length < ETHER_LEN,
                ~port_known,
                ~attached,
                ~is_ip & ~is_arp,
                is_arp & (length < ARP_LEN),
                is_arp,
                is_v4 & from_pf,
                is_v6 & (v6_reason > 0),
                is_v6 & from_pf & is_nd,
                is_v6 & from_pf & ~tunnel,
                is_ip,
            ],
            [
                Counter.RUNT + 1,
                Counter.UNKNOWN_PORT + 1,
                Counter.PORT_NOT_ATTACHED + 1,
                Counter.UNKNOWN_ETHERTYPE + 1,
                Counter.TRUNCATED_ARP + 1,
                0,
                Counter.IPV4_FROM_UPLINK + 1,
                v6_reason,
                Counter.ND_FROM_UPLINK + 1,
                Counter.NOT_TUNNELLED + 1,
                inner_reason,
            ],
            0,
        )
        ok = reason == 0
        ip_ok = ok & is_ip
        edges = np.select(
            [~ok, is_arp, tunnel, from_vf & is_v6 & is_nd],
            [Next.DROP, Next.ARP, Next.IPIP_DECAP, Next.IPV6_ND],
            Next.CONNTRACK,
        ).astype(np.intp)

        # columns, from the header every later node reads
        v4 = inner_v4
        batch.l3 = np.select([~ok, is_arp, v4], [L3.NONE, L3.ARP, L3.IPV4], L3.IPV6).astype(np.uint8)
        batch.proto = np.where(ip_ok, proto, 0).astype(np.uint8)
        zero = np.uint64(0)
        batch.src_hi = np.where(v4, zero, be64(inner, ipv6.OFF_SRC))
        batch.dst_hi = np.where(v4, zero, be64(inner, ipv6.OFF_DST))
        batch.src_lo = np.where(
            v4, be32(inner, ipv4.OFF_SRC).astype(np.uint64), be64(inner, ipv6.OFF_SRC + 8)
        )
        batch.dst_lo = np.where(
            v4, be32(inner, ipv4.OFF_DST).astype(np.uint64), be64(inner, ipv6.OFF_DST + 8)
        )
        l4 = np.where(v4[:, None], inner[:, ipv4.IPV4_LEN : ipv4.IPV4_LEN + 8], inner[:, ipv6.IPV6_LEN :])
        is_icmp = (proto == icmp.PROTO) | (proto == icmpv6.PROTO)
        has_ports = (proto == tcp.PROTO) | (proto == udp.PROTO)
        batch.sport = np.select([has_ports, is_icmp], [be16(l4, 0), l4[:, 0].astype(np.uint16)], 0).astype(
            np.uint16
        )
        batch.dport = np.select([has_ports, is_icmp], [be16(l4, 2), be16(l4, 4)], 0).astype(np.uint16)
        batch.vni = np.where(from_pf, 0, ports.vni[port_idx]).astype(np.uint32)
        batch.length = np.where(ip_ok, l3_start + inner_end, batch.length).astype(np.int32)

        self.counters += np.bincount(reason, minlength=len(Counter) + 1)[1:].astype(np.uint64)
        return edges


def _check_ipv4(
    h: npt.NDArray[np.uint8], avail: IntArray, proto: npt.NDArray[np.uint8]
) -> tuple[IntArray, IntArray]:
    """Drop reason (counter + 1, 0 = fine) and the header-declared packet end for IPv4 at column 0."""
    ihl = (h[:, 0] & 0x0F).astype(np.int64)
    total = be16(h, ipv4.OFF_TOTAL_LENGTH).astype(np.int64)
    fragment = (be16(h, ipv4.OFF_FLAGS_FRAG) & ipv4.FRAGMENT_MASK) != 0
    reason = np.select(
        [
            avail < ipv4.IPV4_LEN,
            ((h[:, 0] >> 4) != ipv4.VERSION) | (ihl < 5),
            ihl > 5,
            (total < ipv4.IPV4_LEN) | (total > avail),
            fragment,
            total - ipv4.IPV4_LEN < L4_MIN[proto],
        ],
        [
            Counter.TRUNCATED_IPV4 + 1,
            Counter.BAD_IPV4_HEADER + 1,
            Counter.IPV4_OPTIONS + 1,
            Counter.BAD_IPV4_LENGTH + 1,
            Counter.IPV4_FRAGMENT + 1,
            Counter.TRUNCATED_L4 + 1,
        ],
        0,
    )
    return reason, total


def _check_ipv6(
    h: npt.NDArray[np.uint8], avail: IntArray, proto: npt.NDArray[np.uint8] | None = None
) -> tuple[IntArray, IntArray]:
    """Drop reason and packet end for IPv6 at column 0; ``proto`` given: also check its L4 header."""
    payload = be16(h, ipv6.OFF_PAYLOAD_LENGTH).astype(np.int64)
    conditions = [avail < ipv6.IPV6_LEN, (h[:, 0] >> 4) != ipv6.VERSION, ipv6.IPV6_LEN + payload > avail]
    reasons = [Counter.TRUNCATED_IPV6 + 1, Counter.BAD_IPV6_HEADER + 1, Counter.BAD_IPV6_LENGTH + 1]
    if proto is not None:
        conditions.append(payload < L4_MIN[proto])
        reasons.append(Counter.TRUNCATED_L4 + 1)
    return np.select(conditions, reasons, 0), ipv6.IPV6_LEN + payload
