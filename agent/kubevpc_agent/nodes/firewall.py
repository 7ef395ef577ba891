"""firewall: per-interface stateful filtering, decided once per flow (DPSERVICE.md §3.1, §4.11).

In:  routed packets from ``snat`` and uplink packets for a local interface, alias prefix or LB
     prefix from ``conntrack``; ``tx_port`` is set, ``flow``/``flow_dir`` come from conntrack.
Out: ``ipip_encap`` when ``tx_port`` is an uplink, ``tx`` when it is a VM port; drop when the
     flow's verdict is DROP (unless ``--fw-drop-compat``: then counted as ``not_enforced`` and
     forwarded, which is what dpservice does with every verdict).

The first packet of a flow in its original direction is evaluated against the compiled rules
(``tables/firewall_eval.py``) and the verdict is cached in the flow table for both directions;
every later packet costs one gather. Which rules apply (dpservice's ``dp_get_firewall_action``):

* VM → uplink: the egress rules of the sending interface;
* uplink → VM: the ingress rules of the receiving interface;
* VM → VM: the sender's egress rules must accept, then the receiver's ingress rules decide.

Each side judges the packet as its VM sees it: egress rules the flow's original key (what the VM
sent, before any NAT), ingress rules the packet as delivered (after DNAT). A reply-direction
packet of a flow whose original direction never passed here has no verdict and is dropped, as in
dpservice. Verdicts live as long as the flow: rule changes apply to new flows (like security
groups, established connections are not cut).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6
from kubevpc_agent.protocols.ether import ETHER_LEN
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.tables.conntrack import Dir, FlowFlag, FlowTable, FwAction, KeyFields
from kubevpc_agent.tables.firewall_eval import FirewallTable, FlowView, Verdict
from kubevpc_agent.tables.model import Direction
from kubevpc_agent.tables.port_table import PortTable

ICMP_CODE_AT = ETHER_LEN + IPV4_LEN + icmp.OFF_CODE  # IPv6: IPV6_LEN - IPV4_LEN bytes later
ICMP_CODE_V6_SHIFT = IPV6_LEN - IPV4_LEN
_FLOW_FLAG_FIREWALL = np.uint8(FlowFlag.FIREWALL)
_ACCEPT = int(FwAction.ACCEPT)


class Next(IntEnum):
    DROP = 0
    IPIP_ENCAP = 1
    TX = 2


class Counter(IntEnum):
    """``accepted`` and ``evaluated`` count packets that went on; the rest are drop reasons."""

    ACCEPTED = 0
    EVALUATED = 1
    EGRESS_RULE_DROP = 2
    EGRESS_NO_MATCH = 3
    INGRESS_RULE_DROP = 4
    INGRESS_NO_MATCH = 5
    FLOW_DROPPED = 6
    REPLY_WITHOUT_VERDICT = 7
    NOT_ENFORCED = 8


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.ACCEPTED: "Packets the firewall let through",
    Counter.EVALUATED: "First packets of flows evaluated against the rules",
    Counter.EGRESS_RULE_DROP: "First packets dropped by a matching egress DROP rule",
    Counter.EGRESS_NO_MATCH: "First packets dropped: egress rules exist, none matched",
    Counter.INGRESS_RULE_DROP: "First packets dropped by a matching ingress DROP rule",
    Counter.INGRESS_NO_MATCH: "First packets dropped: ingress rules exist, none matched",
    Counter.FLOW_DROPPED: "Later packets of flows whose cached verdict is DROP",
    Counter.REPLY_WITHOUT_VERDICT: "Reply-direction packets of flows never evaluated (dropped)",
    Counter.NOT_ENFORCED: "Packets with a DROP verdict forwarded anyway (--fw-drop-compat)",
}

_DROP_REASONS = (
    Counter.EGRESS_RULE_DROP,
    Counter.EGRESS_NO_MATCH,
    Counter.INGRESS_RULE_DROP,
    Counter.INGRESS_NO_MATCH,
    Counter.FLOW_DROPPED,
    Counter.REPLY_WITHOUT_VERDICT,
)
Reasons = npt.NDArray[np.int64]  # Counter + 1 per packet, 0 = accepted


class Firewall(Node):
    """Stateful per-interface firewall; see the module docstring."""

    name = "firewall"
    NEXT_NODES = {Next.IPIP_ENCAP: "ipip_encap", Next.TX: "tx"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(
        self, rules: FirewallTable, flows: FlowTable, ports: PortTable, *, enforce: bool = True
    ) -> None:
        super().__init__()
        self.rules = rules
        self.flows = flows
        self.ports = ports
        self.enforce = enforce  # False: dpservice's behaviour, verdicts computed and counted only

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        self.rules.refresh()
        ports, ft = self.ports, self.flows
        ports.refresh()
        tx_idx, _ = ports.index(batch.tx_port)
        to_uplink = ports.is_pf[tx_idx]
        flow = batch.flow
        has_flow = flow >= 0
        all_tracked = bool(has_flow.all())
        safe = flow if all_tracked else np.where(has_flow, flow, 0)
        cached = ft.fw_action[safe, batch.flow_dir]
        if all_tracked and (cached == _ACCEPT).all():
            # the common case: established flows, all accepted (one gather, no per-reason work)
            self.counters[Counter.ACCEPTED] += np.uint64(len(batch))
            return _forward(to_uplink)
        if not all_tracked:
            cached = np.where(has_flow, cached, FwAction.UNKNOWN)
        reason: Reasons = np.where(cached == FwAction.DROP, Counter.FLOW_DROPPED + 1, 0)
        unknown = cached == FwAction.UNKNOWN
        if unknown.any():
            original = (batch.flow_dir == Dir.ORIGINAL) | ~has_flow
            reason = np.where(unknown & ~original, Counter.REPLY_WITHOUT_VERDICT + 1, reason)
            rows = np.flatnonzero(unknown & original)
            if len(rows):
                reason[rows] = self._evaluate(batch, rows)
        dropped = reason > 0
        counts = np.bincount(reason, minlength=len(Counter) + 1)
        self.counters += counts[1:].astype(np.uint64)
        n_dropped = int(np.count_nonzero(dropped))
        if not self.enforce and n_dropped:
            self.count(Counter.NOT_ENFORCED, n_dropped)
            n_dropped = 0
        self.count(Counter.ACCEPTED, len(batch) - n_dropped)
        if n_dropped == 0:
            return _forward(to_uplink)
        forward = np.where(to_uplink, Next.IPIP_ENCAP, Next.TX)
        return np.where(dropped, Next.DROP, forward).astype(np.intp)

    def port_figures(self) -> dict[str, dict[int, int]]:
        """Rules per interface port (``firewall_rules``, dpservice's ``fwall_rule_count``), for metrics."""
        state = self.rules.state
        return {
            "firewall_rules": {
                iface.port_id: len(state.firewall.get(iface.id, ())) for iface in state.interfaces.values()
            }
        }

    def _evaluate(self, batch: Batch, rows: npt.NDArray[np.intp]) -> Reasons:
        """Decide the flows of ``rows`` (first packets, original direction) and cache the verdicts."""
        ports, ft, rules = self.ports, self.flows, self.rules.rules
        self.count(Counter.EVALUATED, len(rows))
        sub = batch.select(rows)
        rx_idx, _ = ports.index(sub.rx_port)
        tx_idx, _ = ports.index(sub.tx_port)
        from_vm = ~ports.is_pf[rx_idx]
        to_vm = ~ports.is_pf[tx_idx]
        delivered = _packet_view(sub)
        sent = _original_view(ft, sub, delivered)

        egress_sets = np.where(from_vm, rules.rule_set(sub.rx_port, Direction.EGRESS), -1)
        egress, egress_rule = rules.evaluate(egress_sets, sent)
        ingress_sets = np.where(
            to_vm & (egress == Verdict.ACCEPT), rules.rule_set(sub.tx_port, Direction.INGRESS), -1
        )
        ingress, ingress_rule = rules.evaluate(ingress_sets, delivered)
        reason: Reasons = np.select(
            [
                (egress == Verdict.DROP) & (egress_rule >= 0),
                egress == Verdict.DROP,
                (ingress == Verdict.DROP) & (ingress_rule >= 0),
                ingress == Verdict.DROP,
            ],
            [
                Counter.EGRESS_RULE_DROP + 1,
                Counter.EGRESS_NO_MATCH + 1,
                Counter.INGRESS_RULE_DROP + 1,
                Counter.INGRESS_NO_MATCH + 1,
            ],
            0,
        )
        tracked = sub.flow >= 0
        if tracked.any():
            flows = sub.flow[tracked]
            action = np.where(reason[tracked] > 0, FwAction.DROP, FwAction.ACCEPT).astype(np.uint8)
            ft.fw_action[flows] = action[:, np.newaxis]  # one verdict for both directions
            ft.flags[flows] |= _FLOW_FLAG_FIREWALL
        return reason


def _forward(to_uplink: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp] | int:
    """The edges of packets that pass: one edge for the whole batch when it can (stream move)."""
    if to_uplink.all():
        return Next.IPIP_ENCAP
    if not to_uplink.any():
        return Next.TX
    return np.where(to_uplink, Next.IPIP_ENCAP, Next.TX).astype(np.intp)


def _icmp_codes(batch: Batch) -> npt.NDArray[np.uint8]:
    """The ICMP/ICMPv6 code byte of every packet (0 where the packet is neither)."""
    is_icmp = (batch.proto == icmp.PROTO) | (batch.proto == icmpv6.PROTO)
    if not is_icmp.any():
        return np.zeros(len(batch), dtype=np.uint8)
    raw = batch.read(ICMP_CODE_AT, ICMP_CODE_V6_SHIFT + 1)
    code = np.where(batch.l3 == L3.IPV6, raw[:, ICMP_CODE_V6_SHIFT], raw[:, 0])
    return np.where(is_icmp, code, 0).astype(np.uint8)


def _packet_view(batch: Batch) -> FlowView:
    """The packets as they are now (after DNAT): what an ingress rule judges."""
    return FlowView(
        is_v6=batch.l3 == L3.IPV6,
        src_hi=batch.src_hi,
        src_lo=batch.src_lo,
        dst_hi=batch.dst_hi,
        dst_lo=batch.dst_lo,
        proto=batch.proto,
        sport=batch.sport,
        dport=batch.dport,
        icmp_type=(batch.sport & 0xFF).astype(np.uint8),
        icmp_code=_icmp_codes(batch),
    )


def _original_view(ft: FlowTable, batch: Batch, now: FlowView) -> FlowView:
    """The flows' original keys (what the sending VM put on the wire): what an egress rule judges."""
    tracked = batch.flow >= 0
    if not tracked.any():
        return now
    k = KeyFields.of(ft.key(np.where(tracked, batch.flow, 0), Dir.ORIGINAL))
    w = np.where
    return FlowView(
        is_v6=w(tracked, k.l3 == L3.IPV6, now.is_v6),
        src_hi=w(tracked, k.src_hi, now.src_hi),
        src_lo=w(tracked, k.src_lo, now.src_lo),
        dst_hi=w(tracked, k.dst_hi, now.dst_hi),
        dst_lo=w(tracked, k.dst_lo, now.dst_lo),
        proto=w(tracked, k.proto, now.proto),
        sport=w(tracked, k.sport, now.sport),
        dport=w(tracked, k.dport, now.dport),
        icmp_type=w(tracked, k.sport & 0xFF, now.icmp_type).astype(np.uint8),
        icmp_code=now.icmp_code,
    )
