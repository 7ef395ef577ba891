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
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, ipv4, ipv6, tcp, udp
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.protocols.fields import u16, u32, u64
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.reasons import add_reasons, first_reason

TUNNEL_L3 = ETHER_LEN + ipv6.IPV6_LEN  # 54: inner header of an IP-in-IPv6 frame
L3_READ = ipv6.IPV6_LEN + 8  # an IP header plus the first 8 transport bytes (ports, ICMP id)
VF_READ_LEN = ETHER_LEN + L3_READ  # 62 bytes read per frame when no uplink frame is in the batch
READ_LEN = TUNNEL_L3 + L3_READ  # 102 bytes, enough for the tunnelled case
ARP_SHAPE_HI, ARP_SHAPE_LO = 0x00010800, 0x0604  # htype 1, ptype 0x0800 | hlen 6, plen 4
ARP_LEN = ETHER_LEN + 28
IPV4_VIHL = 0x45  # version 4, IHL 5: the only IPv4 header the dataplane takes

# plain ints for array comparisons (an IntEnum operand costs numpy a slow conversion per call)
ETH_IPV4, ETH_IPV6 = int(EtherType.IPV4), int(EtherType.IPV6)
ND_SOLICIT = int(icmpv6.Icmpv6Type.NEIGHBOR_SOLICITATION)
ND_ROUTER_SOLICIT = int(icmpv6.Icmpv6Type.ROUTER_SOLICITATION)
L3_NONE, L3_IPV4, L3_IPV6, L3_ARP = int(L3.NONE), int(L3.IPV4), int(L3.IPV6), int(L3.ARP)

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
U64 = npt.NDArray[np.uint64]


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

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        ports = self.ports
        ports.refresh()
        port_idx, port_known = ports.index(batch.rx_port)
        from_pf = ports.is_pf[port_idx]
        any_pf = bool(from_pf.any())
        hdr = batch.read(0, READ_LEN if any_pf else VF_READ_LEN)
        length = batch.length.astype(np.int64)
        ether_type = u16(hdr, 12)
        is_v4 = ether_type == ETH_IPV4
        is_v6 = ether_type == ETH_IPV6
        is_ip = is_v4 | is_v6

        # the IP header later nodes read: at 14, or at 54 for IP-in-IPv6 from an uplink
        inner, inner_v4, inner_v6 = hdr[:, ETHER_LEN:VF_READ_LEN], is_v4, is_v6
        avail = length - ETHER_LEN  # bytes from that header to the end of the frame (or the tunnel)
        l3_start: int | IntArray = ETHER_LEN
        tunnel: BoolArray | None = None
        outer_ok: BoolArray | None = None
        if any_pf:
            next_header = hdr[:, ETHER_LEN + ipv6.OFF_NEXT_HEADER]
            tunnel = from_pf & is_v6 & ((next_header == ipv6.NH_IPIP) | (next_header == ipv6.NH_IPV6))
            outer_payload = u16(hdr, ETHER_LEN + ipv6.OFF_PAYLOAD_LENGTH).astype(np.int64)
            outer_ok = ((hdr[:, ETHER_LEN] >> 4) == ipv6.VERSION) & (ipv6.IPV6_LEN + outer_payload <= avail)
            if tunnel.any():
                inner = inner.copy()
                inner[tunnel] = hdr[tunnel, TUNNEL_L3:]
                inner_v4 = np.where(tunnel, next_header == ipv6.NH_IPIP, is_v4)
                inner_v6 = np.where(tunnel, next_header == ipv6.NH_IPV6, is_v6)
                avail = np.where(tunnel, outer_payload, avail)
                l3_start = np.where(tunnel, TUNNEL_L3, ETHER_LEN)

        fields = _ip_fields(inner, inner_v4, inner_v6, avail)
        proto, end, ip_ok, l4 = fields.proto, fields.end, fields.ok, fields.l4
        if tunnel is None or outer_ok is None:
            routable = is_ip & ip_ok
        else:
            routable = ip_ok & np.where(from_pf, tunnel & outer_ok, is_ip)
        is_arp = _arp_shaped(hdr, ~is_ip)
        accepted = port_known & ports.attached[port_idx] & (routable | (is_arp & (length >= ARP_LEN)))

        # ND from a VM goes to the responder
        is_nd: BoolArray | None = None
        if fields.any_v6:
            icmp6_type = l4[:, 0]
            nd = (proto == icmpv6.PROTO) & ((icmp6_type == ND_SOLICIT) | (icmp6_type == ND_ROUTER_SOLICIT))
            nd &= inner_v6 & ~from_pf
            is_nd = nd if nd.any() else None

        # columns
        v4 = inner_v4
        if fields.any_v6:
            batch.l3 = np.where(v4, L3_IPV4, L3_IPV6).astype(np.uint8)
        else:
            batch.l3 = np.full(len(batch), L3_IPV4, dtype=np.uint8)
        batch.proto = proto
        batch.src_hi, batch.src_lo, batch.dst_hi, batch.dst_lo = fields.addresses
        batch.sport, batch.dport = _ports(proto, l4)
        batch.vni = (
            ports.vni[port_idx] if not any_pf else np.where(from_pf, 0, ports.vni[port_idx]).astype(np.uint32)
        )
        batch.length = np.where(routable, l3_start + end, batch.length).astype(np.int32)

        if accepted.all() and is_nd is None and not is_arp.any():
            # the common case: one edge for the whole batch, no split ("stream move")
            if tunnel is None or not tunnel.any():
                return Next.CONNTRACK
            if tunnel.all():
                return Next.IPIP_DECAP
        edges = np.full(len(batch), Next.CONNTRACK, dtype=np.intp)
        if tunnel is not None:
            edges[tunnel] = Next.IPIP_DECAP
        if is_nd is not None:
            edges[is_nd] = Next.IPV6_ND
        edges[is_arp] = Next.ARP
        if not accepted.all():
            reason = self._reasons(
                batch,
                hdr,
                length=length,
                port_known=port_known,
                attached=ports.attached[port_idx],
                from_pf=from_pf,
                is_arp=is_arp,
            )
            edges[reason > 0] = Next.DROP
            batch.l3 = np.where(reason > 0, L3_NONE, batch.l3).astype(np.uint8)
            add_reasons(self.counters, reason)
        batch.l3 = np.where(is_arp & (edges == Next.ARP), L3_ARP, batch.l3).astype(np.uint8)
        return edges

    @staticmethod
    def _reasons(
        batch: Batch,
        hdr: npt.NDArray[np.uint8],
        *,
        length: IntArray,
        port_known: BoolArray,
        attached: BoolArray,
        from_pf: BoolArray,
        is_arp: BoolArray,
    ) -> IntArray:
        """The drop reason (counter + 1, 0 = accepted) of every frame; only batches with drops get here."""
        if hdr.shape[1] < READ_LEN:
            hdr = batch.read(0, READ_LEN)
        ether_type = u16(hdr, 12)
        is_v4 = ether_type == ETH_IPV4
        is_v6 = ether_type == ETH_IPV6
        next_header = hdr[:, ETHER_LEN + ipv6.OFF_NEXT_HEADER]
        icmp6_type = hdr[:, ETHER_LEN + ipv6.IPV6_LEN]
        is_nd = (next_header == icmpv6.PROTO) & (
            (icmp6_type == ND_SOLICIT) | (icmp6_type == ND_ROUTER_SOLICIT)
        )
        tunnel = from_pf & is_v6 & ((next_header == ipv6.NH_IPIP) | (next_header == ipv6.NH_IPV6))
        v6_reason, v6_end = _check_ipv6(hdr[:, ETHER_LEN:], length - ETHER_LEN)
        inner = np.where(tunnel[:, None], hdr[:, TUNNEL_L3:READ_LEN], hdr[:, ETHER_LEN:VF_READ_LEN])
        inner_v4 = np.where(tunnel, next_header == ipv6.NH_IPIP, is_v4)
        avail = np.where(tunnel, v6_end - ipv6.IPV6_LEN, length - ETHER_LEN)
        proto = np.where(inner_v4, inner[:, ipv4.OFF_PROTO], inner[:, ipv6.OFF_NEXT_HEADER])
        in4_reason, _ = _check_ipv4(inner, avail, proto)
        in6_reason, _ = _check_ipv6(inner, avail, proto)
        return first_reason(
            [
                (length < ETHER_LEN, Counter.RUNT + 1),
                (~port_known, Counter.UNKNOWN_PORT + 1),
                (~attached, Counter.PORT_NOT_ATTACHED + 1),
                (~(is_v4 | is_v6) & ~is_arp, Counter.UNKNOWN_ETHERTYPE + 1),
                (is_arp & (length < ARP_LEN), Counter.TRUNCATED_ARP + 1),
                (is_arp, 0),
                (is_v4 & from_pf, Counter.IPV4_FROM_UPLINK + 1),
                (is_v6 & (v6_reason > 0), v6_reason),
                (is_v6 & from_pf & is_nd, Counter.ND_FROM_UPLINK + 1),
                (is_v6 & from_pf & ~tunnel, Counter.NOT_TUNNELLED + 1),
                (np.ones(len(length), dtype=bool), np.where(inner_v4, in4_reason, in6_reason)),
            ]
        )


@dataclass
class _Fields:
    """The IP header fields of every row, per family only where that family occurs."""

    proto: npt.NDArray[np.uint8]
    end: IntArray  # packet length from the IP header on, as the header declares it
    ok: BoolArray  # header sane, lengths consistent, transport header present, not a fragment
    l4: npt.NDArray[np.uint8]  # the first 8 transport bytes
    addresses: tuple[U64, U64, U64, U64]  # src_hi, src_lo, dst_hi, dst_lo
    any_v6: bool


def _ip_fields(inner: npt.NDArray[np.uint8], v4: BoolArray, v6: BoolArray, avail: IntArray) -> _Fields:
    any_v4, any_v6 = bool(v4.any()), bool(v6.any())
    n = len(inner)
    zero = np.zeros(n, dtype=np.uint64)
    if any_v4:
        proto4 = inner[:, ipv4.OFF_PROTO]
        end4 = u16(inner, ipv4.OFF_TOTAL_LENGTH).astype(np.int64)
        ok4 = (
            (inner[:, 0] == IPV4_VIHL)
            & ((u16(inner, ipv4.OFF_FLAGS_FRAG) & ipv4.FRAGMENT_MASK) == 0)
            & (end4 >= ipv4.IPV4_LEN + L4_MIN[proto4])
            & (end4 <= avail)
        )
        addr4 = (zero, u32(inner, ipv4.OFF_SRC), zero, u32(inner, ipv4.OFF_DST))
        l4_4 = inner[:, ipv4.IPV4_LEN : ipv4.IPV4_LEN + 8]
        if not any_v6:
            return _Fields(proto4, end4, ok4, l4_4, addr4, False)
    if any_v6:
        proto6 = inner[:, ipv6.OFF_NEXT_HEADER]
        end6 = ipv6.IPV6_LEN + u16(inner, ipv6.OFF_PAYLOAD_LENGTH).astype(np.int64)
        ok6 = (
            ((inner[:, 0] >> 4) == ipv6.VERSION) & (end6 <= avail) & (end6 >= ipv6.IPV6_LEN + L4_MIN[proto6])
        )
        addr6 = (
            u64(inner, ipv6.OFF_SRC),
            u64(inner, ipv6.OFF_SRC + 8),
            u64(inner, ipv6.OFF_DST),
            u64(inner, ipv6.OFF_DST + 8),
        )
        l4_6 = inner[:, ipv6.IPV6_LEN : ipv6.IPV6_LEN + 8]
        if not any_v4:
            return _Fields(proto6, end6, ok6, l4_6, addr6, True)
        return _Fields(
            np.where(v4, proto4, proto6).astype(np.uint8),
            np.where(v4, end4, end6),
            np.where(v4, ok4, ok6),
            np.where(v4[:, None], l4_4, l4_6),
            tuple(np.where(v4, a4, a6) for a4, a6 in zip(addr4, addr6, strict=True)),  # type: ignore[arg-type]
            True,
        )
    # neither family (ARP, garbage): nothing routable
    return _Fields(
        np.zeros(n, np.uint8), np.zeros(n, np.int64), np.zeros(n, bool), inner[:, :8], (zero,) * 4, False
    )


def _ports(
    proto: npt.NDArray[np.uint8], l4: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """``sport``/``dport`` columns: TCP/UDP ports; ICMP/ICMPv6 type and identifier; 0 otherwise."""
    sport, dport = u16(l4, 0), u16(l4, 2)
    is_icmp = (proto == icmp.PROTO) | (proto == icmpv6.PROTO)
    if is_icmp.any():
        sport = np.where(is_icmp, l4[:, 0], sport).astype(np.uint16)
        dport = np.where(is_icmp, u16(l4, 4), dport).astype(np.uint16)
    known = is_icmp | (proto == tcp.PROTO) | (proto == udp.PROTO)
    if not known.all():
        sport = np.where(known, sport, 0).astype(np.uint16)
        dport = np.where(known, dport, 0).astype(np.uint16)
    return sport, dport


def _arp_shaped(hdr: npt.NDArray[np.uint8], candidates: BoolArray) -> BoolArray:
    """Rows among ``candidates`` whose bytes after Ethernet read htype 1, ptype 0x0800, lengths 6/4."""
    if not candidates.any():
        return np.zeros(len(hdr), dtype=bool)
    shaped: BoolArray = (u32(hdr, ETHER_LEN) == ARP_SHAPE_HI) & (u16(hdr, ETHER_LEN + 4) == ARP_SHAPE_LO)
    return candidates & shaped


def _check_ipv4(
    h: npt.NDArray[np.uint8], avail: IntArray, proto: npt.NDArray[np.uint8]
) -> tuple[IntArray, IntArray]:
    """Drop reason (counter + 1, 0 = fine) and the header-declared packet end for IPv4 at column 0."""
    ihl = (h[:, 0] & 0x0F).astype(np.int64)
    total = u16(h, ipv4.OFF_TOTAL_LENGTH).astype(np.int64)
    reason = first_reason(
        [
            (avail < ipv4.IPV4_LEN, Counter.TRUNCATED_IPV4 + 1),
            (((h[:, 0] >> 4) != ipv4.VERSION) | (ihl < 5), Counter.BAD_IPV4_HEADER + 1),
            (ihl > 5, Counter.IPV4_OPTIONS + 1),
            ((total < ipv4.IPV4_LEN) | (total > avail), Counter.BAD_IPV4_LENGTH + 1),
            ((u16(h, ipv4.OFF_FLAGS_FRAG) & ipv4.FRAGMENT_MASK) != 0, Counter.IPV4_FRAGMENT + 1),
            (total - ipv4.IPV4_LEN < L4_MIN[proto], Counter.TRUNCATED_L4 + 1),
        ]
    )
    return reason, total


def _check_ipv6(
    h: npt.NDArray[np.uint8], avail: IntArray, proto: npt.NDArray[np.uint8] | None = None
) -> tuple[IntArray, IntArray]:
    """Drop reason and packet end for IPv6 at column 0; ``proto`` given: also check its L4 header."""
    payload = u16(h, ipv6.OFF_PAYLOAD_LENGTH).astype(np.int64)
    cases: list[tuple[BoolArray, int | IntArray]] = [
        (avail < ipv6.IPV6_LEN, Counter.TRUNCATED_IPV6 + 1),
        ((h[:, 0] >> 4) != ipv6.VERSION, Counter.BAD_IPV6_HEADER + 1),
        (ipv6.IPV6_LEN + payload > avail, Counter.BAD_IPV6_LENGTH + 1),
    ]
    if proto is not None:
        cases.append((payload < L4_MIN[proto], Counter.TRUNCATED_L4 + 1))
    return first_reason(cases), ipv6.IPV6_LEN + payload
