"""ipv6_nd: the IPv6 gateway fe80::1 on the link to each VM (DPSERVICE.md §4.4).

In:  ICMPv6 Neighbor and Router Solicitations from a VF (``cls`` sends them here).
Out: ``tx`` back to the rx port; drop otherwise, and drop everything unless
     ``--enable-ipv6-overlay`` is on.

NS for fe80::1 → NA: Ether dst = the requester's MAC, src = the port's own MAC; IPv6 fe80::1 → the
requester (ff02::1 if it sent from ::), hop limit and traffic class/flow label copied; flags R, S
and O set; the request's first option, when it has 8 bytes of options, becomes the Target
Link-Layer Address option with the port's own MAC (the payload keeps its length, as in dpservice).
The NS teaches the port's VM MAC. RS → RA (:func:`~kubevpc_agent.protocols.nd.build_ra`): M and O
set, no prefix information, so addresses come from DHCPv6. ND packets are not validated beyond
dpservice's checks (no hop-limit-255 or checksum test on input).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from kubevpc_agent.graph.batch import Batch, Edges
from kubevpc_agent.protocols import ipv6
from kubevpc_agent.protocols.ether import ETHER_LEN
from kubevpc_agent.protocols.icmpv6 import PROTO as PROTO_ICMPV6
from kubevpc_agent.protocols.icmpv6 import Icmpv6Type
from kubevpc_agent.protocols.nd import (
    ALL_NODES,
    LL_OPTION_LEN,
    NA,
    NA_LEN,
    NA_OVERRIDE,
    NA_ROUTER,
    NA_SOLICITED,
    UNSPECIFIED,
    NdOption,
    build_ll_option,
    build_nd_frame,
    build_ra,
)
from kubevpc_agent.tables.model import GATEWAY_IPV6
from kubevpc_agent.tables.responder import GatewayResponder, ReplyNext

ICMP_AT = ETHER_LEN + ipv6.IPV6_LEN
ICMP_HEADER_LEN = 8  # type, code, checksum, 4 bytes of message-specific data


Next = ReplyNext  # DROP, TX


class Counter(IntEnum):
    NEIGHBOR_ADVERTISED = 0
    ROUTER_ADVERTISED = 1
    OVERLAY_DISABLED = 2
    NOT_FOR_GATEWAY = 3
    UNHANDLED_TYPE = 4
    NOT_VF = 5
    MALFORMED = 6


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.NEIGHBOR_ADVERTISED: "NAs sent for fe80::1 (each also sets the port's VM MAC)",
    Counter.ROUTER_ADVERTISED: "RAs sent in answer to RS",
    Counter.OVERLAY_DISABLED: "ND packets dropped because --enable-ipv6-overlay is off",
    Counter.NOT_FOR_GATEWAY: "NSs for another target than fe80::1 (dropped)",
    Counter.UNHANDLED_TYPE: "ICMPv6 messages other than NS and RS (dropped)",
    Counter.NOT_VF: "ND packets from a port that is not a VF (dropped)",
    Counter.MALFORMED: "Truncated or inconsistent Ether/IPv6/ICMPv6 (dropped)",
}


class Ipv6Nd(GatewayResponder):
    """NS/RS responder for fe80::1; see the module docstring."""

    name = "ipv6_nd"
    COUNTER_HELP = COUNTER_HELP

    def process(self, batch: Batch) -> Edges:
        if not self.config.enable_ipv6_overlay:
            self.count(Counter.OVERLAY_DISABLED, len(batch))
            return np.full(len(batch), Next.DROP, dtype=np.intp)
        return super().process(batch)

    def answer(self, batch: Batch, i: int) -> tuple[Counter, bytes | None]:
        port_id = int(batch.rx_port[i])
        if not self.from_vf(port_id):
            return Counter.NOT_VF, None
        frame = bytes(batch.frame(i))

        # Ether + IPv6 whose next header is ICMPv6, bounded by the IPv6 payload length
        header = ipv6.parse_frame(frame, PROTO_ICMPV6, ICMP_HEADER_LEN)
        if header is None:
            return Counter.MALFORMED, None
        vtc_flow, payload_len, hop_limit, src, _, end = header
        reply_to = ALL_NODES.packed if src == UNSPECIFIED.packed else src
        own_mac = self.macs.own_mac(port_id)
        requester_mac = frame[6:12]
        icmp_type = frame[ICMP_AT]

        if icmp_type == Icmpv6Type.NEIGHBOR_SOLICITATION:
            if payload_len < NA_LEN:
                return Counter.MALFORMED, None
            _, code, _, reserved, target = NA.unpack_from(frame, ICMP_AT)
            if target != GATEWAY_IPV6.packed:
                return Counter.NOT_FOR_GATEWAY, None
            self.macs.learn(port_id, requester_mac)
            flags = reserved | NA_ROUTER | NA_SOLICITED | NA_OVERRIDE
            options = frame[ICMP_AT + NA_LEN : end]
            if len(options) >= LL_OPTION_LEN:
                options = build_ll_option(NdOption.TARGET_LL_ADDR, own_mac) + options[LL_OPTION_LEN:]
            message = NA.pack(Icmpv6Type.NEIGHBOR_ADVERTISEMENT, code, 0, flags, target) + options
            counter = Counter.NEIGHBOR_ADVERTISED
        elif icmp_type == Icmpv6Type.ROUTER_SOLICITATION:
            message = build_ra(own_mac)
            counter = Counter.ROUTER_ADVERTISED
        else:
            return Counter.UNHANDLED_TYPE, None

        reply = build_nd_frame(
            eth_dst=requester_mac,
            eth_src=own_mac,
            ip_src=GATEWAY_IPV6,
            ip_dst=reply_to,
            message=message,
            hop_limit=hop_limit,
            vtc_flow=vtc_flow,
        )
        return counter, reply
