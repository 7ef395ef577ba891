"""lb: Maglev load balancing of traffic that arrives on a load balancer's underlay (DPSERVICE.md §4.9).

In:  decapsulated uplink packets for an LB underlay, from ``conntrack`` (``flow``/``flow_dir`` set;
     ``nh_*`` holds the outer source, ``vni`` the LB's VNI).
Out: ``ipip_encap`` with ``nh_*`` = the chosen target and ``tx_port`` = the uplink the packet came
     in on: a remote target gets it with outer source = the host ``--ipv6``; a local target (an LB
     prefix of one of our interfaces) is *recirculated* (``nat`` = ``NatType.LB_RECIRC``, outer
     source = the LB's underlay): ``ipip_encap`` hands it back to ``cls``, and it reaches the VM
     through ``ipip_decap`` → ``conntrack`` → ``firewall`` without DNAT (the VM owns the LB IP);
     ``packet_relay`` for ICMP/ICMPv6 echo requests to the LB IP, which are answered there;
     drop otherwise, one counter per reason.

The first packet of a flow (original direction, not balanced yet) to an LB IP: ICMP other than an
echo request or a destination-unreachable error (whose flow key comes from the embedded header, so
it follows the flow it is about) is dropped; the key's (protocol, destination port) must be one
of the LB's ports and the LB must have targets; the target is ``targets[maglev[hash % 503]]`` with
``hash`` dpservice's conntrack hash of the original key (``FlowTable.hash``), so the choice is
dpservice's for the same flow. The choice is stored in the flow (``DST_LB``, ``underlay_*``,
``lb_target``, ``nat_type``) and every later packet follows it: stickiness comes from conntrack,
not from the table. Reply-direction packets of a balanced flow are refused (the target answers
the client directly: direct server return).

When a target leaves a load balancer (``DeleteLoadBalancerTarget``, or the LB is deleted), the
flows pinned to it are removed when the next batch reaches this node (packets of that batch that
carry a removed flow get a new one under the same key), so they move to a remaining target;
every other flow keeps its target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables.conntrack import Dir, FlowFlag, FlowTable, KeyFields, NatType
from kubevpc_agent.tables.lb_select import LbTable, Removed, address_halves
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.vnf_map import VnfMap

_DST_LB = np.uint8(FlowFlag.DST_LB)


class Next(IntEnum):
    DROP = 0
    IPIP_ENCAP = 1
    PACKET_RELAY = 2


class Counter(IntEnum):
    """The first four count packets that went on; the rest are drop reasons (and removed flows)."""

    FORWARDED = 0
    RECIRCULATED = 1
    FOLLOWED = 2
    ECHO_REQUEST = 3
    NOT_AN_LB_ADDRESS = 4
    ICMP_NOT_BALANCED = 5
    PORT_NOT_BALANCED = 6
    NO_TARGETS = 7
    REPLY_REFUSED = 8
    UNTRACKED = 9
    TARGET_FLOWS_REMOVED = 10


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.FORWARDED: "First packets of flows sent to a remote target",
    Counter.RECIRCULATED: "First packets of flows sent to a local target (recirculated)",
    Counter.FOLLOWED: "Later packets sent to the target their flow chose",
    Counter.ECHO_REQUEST: "ICMP/ICMPv6 echo requests to an LB IP, passed to packet_relay to answer",
    Counter.NOT_AN_LB_ADDRESS: "Packets to an LB underlay whose destination is no LB IP of its VNI (dropped)",
    Counter.ICMP_NOT_BALANCED: "ICMP other than echo requests and destination-unreachable errors (dropped)",
    Counter.PORT_NOT_BALANCED: "New flows to a protocol/port the LB does not balance (dropped)",
    Counter.NO_TARGETS: "New flows to an LB without targets (dropped)",
    Counter.REPLY_REFUSED: "Reply-direction packets of balanced flows (dropped; replies are DSR)",
    Counter.UNTRACKED: "Packets without a flow (dropped; conntrack refused them)",
    Counter.TARGET_FLOWS_REMOVED: "Flows removed because their target left the load balancer (flows)",
}


class Lb(Node):
    """Load balancer; see the module docstring."""

    name = "lb"
    NEXT_NODES = {Next.IPIP_ENCAP: "ipip_encap", Next.PACKET_RELAY: "packet_relay"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, lbs: LbTable, flows: FlowTable, vnf: VnfMap) -> None:
        super().__init__()
        self.lbs = lbs
        self.flows = flows
        self.vnf = vnf

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        if self.refresh():
            self._renew_removed_flows(batch)
        lbs, ft = self.lbs, self.flows
        tracked = batch.flow >= 0
        all_tracked = bool(tracked.all())
        flow = batch.flow if all_tracked else np.where(tracked, batch.flow, 0)
        original = batch.flow_dir == Dir.ORIGINAL
        balanced = tracked & ((ft.flags[flow] & _DST_LB) != 0)  # the flow has its target
        icmp_type = batch.sport & 0xFF  # cls: ICMP type in the source-port column
        is_icmp4 = batch.proto == icmp.PROTO
        is_icmp6 = batch.proto == icmpv6.PROTO
        echo_request = (is_icmp4 & (icmp_type == icmp.IcmpType.ECHO_REQUEST)) | (
            is_icmp6 & (icmp_type == icmpv6.Icmpv6Type.ECHO_REQUEST)
        )
        if balanced.all() and original.all() and not echo_request.any():
            # the common case: established flows, each to the target it was given
            self._to_targets(batch, flow, None)
            self.counters[Counter.FOLLOWED] += np.uint64(len(batch))
            return Next.IPIP_ENCAP

        lb = lbs.lookup(batch.vni, batch.l3 == L3.IPV6, batch.dst_hi, batch.dst_lo)
        echo = (lb >= 0) & echo_request
        follow = balanced & original & ~echo
        reason = np.select(
            [
                ~tracked,
                echo | follow,
                ~original,
                lb < 0,
                (is_icmp4 & (icmp_type != icmp.IcmpType.DEST_UNREACHABLE)) | is_icmp6,
            ],
            [
                Counter.UNTRACKED + 1,
                0,
                Counter.REPLY_REFUSED + 1,
                Counter.NOT_AN_LB_ADDRESS + 1,
                Counter.ICMP_NOT_BALANCED + 1,
            ],
            0,
        )
        new = (reason == 0) & ~echo & ~follow  # first packets (original direction, not balanced yet)
        if new.any():
            rows = np.flatnonzero(new)
            reason[rows] = self._balance(flow[rows], lb[rows])
            new &= reason == 0
        recirc = self._to_targets(batch, flow, (reason == 0) & ~echo, lb)

        counts = np.bincount(reason, minlength=len(Counter) + 1)[1:]
        counts[Counter.FORWARDED] = np.count_nonzero(new & ~recirc)
        counts[Counter.RECIRCULATED] = np.count_nonzero(new & recirc)
        counts[Counter.FOLLOWED] = np.count_nonzero(follow)
        counts[Counter.ECHO_REQUEST] = np.count_nonzero(echo & tracked)
        self.counters += counts.astype(np.uint64)
        edges = np.where(echo & tracked, Next.PACKET_RELAY, Next.IPIP_ENCAP)
        return np.where(reason > 0, Next.DROP, edges).astype(np.intp)

    def _to_targets(
        self,
        batch: Batch,
        flow: npt.NDArray[np.int64],
        rows: npt.NDArray[np.bool_] | None,
        lb: npt.NDArray[np.int32] | None = None,
    ) -> npt.NDArray[np.bool_]:
        """Address ``rows`` (None: all) to their flow's target, out the uplink they came in on.

        Outer source: the LB's own underlay when recirculated, else 0/0 (``ipip_encap`` then uses
        the host ``--ipv6``). Returns which packets are recirculated.
        """
        ft = self.flows
        recirc: npt.NDArray[np.bool_] = ft.nat_type[flow] == NatType.LB_RECIRC
        if rows is None:
            batch.nh_hi = ft.underlay_hi[flow]
            batch.nh_lo = ft.underlay_lo[flow]
            batch.tx_port = batch.rx_port.copy()
            rows = np.ones(len(batch), dtype=bool)
        else:
            recirc &= rows
            batch.nh_hi = np.where(rows, ft.underlay_hi[flow], batch.nh_hi)
            batch.nh_lo = np.where(rows, ft.underlay_lo[flow], batch.nh_lo)
            batch.tx_port = np.where(rows, batch.rx_port, batch.tx_port).astype(np.int16)
        src_hi: npt.NDArray[np.uint64] | int = 0
        src_lo: npt.NDArray[np.uint64] | int = 0
        if recirc.any():
            if lb is None:
                lb = self.lbs.lookup(batch.vni, batch.l3 == L3.IPV6, batch.dst_hi, batch.dst_lo)
            src_hi, src_lo = self.lbs.underlay_of(lb)
            batch.nat = np.where(recirc, NatType.LB_RECIRC, batch.nat).astype(np.uint8)
        batch.ul_src_hi = np.where(rows, np.where(recirc, src_hi, 0), batch.ul_src_hi).astype(np.uint64)
        batch.ul_src_lo = np.where(rows, np.where(recirc, src_lo, 0), batch.ul_src_lo).astype(np.uint64)
        return recirc

    def refresh(self) -> int:
        """Pick up LB changes; flows pinned to a target that left are removed. Returns how many."""
        self.vnf.refresh()
        removed = self.lbs.refresh()
        if not removed:
            return 0
        n = self.remove_flows_of(removed)
        self.count(Counter.TARGET_FLOWS_REMOVED, n)
        return n

    def _renew_removed_flows(self, batch: Batch) -> None:
        """Give packets whose flow was just removed a new flow under the same key.

        conntrack looked the batch up before this node saw the LB change, so some packets may
        carry a removed flow: they start a new one (balanced again below), as they would have if
        the removal had come a batch earlier. The batch's time is the old flow's ``last_seen``.
        """
        ft = self.flows
        tracked = batch.flow >= 0
        stale = tracked & ~ft.live[np.where(tracked, batch.flow, 0)]
        if not stale.any():
            return
        rows = np.flatnonzero(stale)
        old = batch.flow[rows]
        keys = ft.key(old, batch.flow_dir[rows])
        resolved = ft.resolve(keys, float(ft.last_seen[old].max()), batch.rx_port[rows])
        batch.flow = batch.flow.copy()
        batch.flow_dir = batch.flow_dir.copy()
        batch.flow[rows] = resolved.flow
        batch.flow_dir[rows] = resolved.dir

    def _balance(self, flows: npt.NDArray[np.int64], lb: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
        """Choose targets for new flows and pin them; returns each row's drop reason (0 = balanced)."""
        lbs, ft = self.lbs, self.flows
        key = KeyFields.of(ft.key(flows, Dir.ORIGINAL))  # ICMP errors: the embedded flow's key
        port_ok = lbs.port_matches(lb, key.proto, key.dport)
        has_targets = lbs.has_targets(lb)
        reason: npt.NDArray[np.int64] = np.select(
            [~port_ok, ~has_targets], [Counter.PORT_NOT_BALANCED + 1, Counter.NO_TARGETS + 1], 0
        )
        ok = reason == 0
        if ok.any():
            chosen = flows[ok]
            index, hi, lo = lbs.select(lb[ok], ft.hash[chosen])
            entry = self.vnf.lookup(hi, lo)
            local = (entry >= 0) & (self.vnf.vnf_type[np.maximum(entry, 0)] == VnfType.LB_ALIAS_PFX)
            ft.flags[chosen] |= _DST_LB
            ft.underlay_hi[chosen] = hi
            ft.underlay_lo[chosen] = lo
            ft.lb_target[chosen] = index
            ft.nat_type[chosen] = np.where(local, NatType.LB_RECIRC, NatType.LB_FORWARD)
        return reason

    def remove_flows_of(self, removed: Sequence[Removed]) -> int:
        """Remove the balanced flows of each (LB, target) pair; returns how many flows went."""
        ft = self.flows
        candidates = ft.flows_where((ft.flags & _DST_LB) != 0)
        if len(candidates) == 0:
            return 0
        key = KeyFields.of(ft.key(candidates, Dir.ORIGINAL))
        key_v6 = key.l3 == L3.IPV6
        gone = np.zeros(len(candidates), dtype=bool)
        for r in removed:  # one pass per removed target (a control-plane event), not per flow
            is_v6, ip_hi, ip_lo = address_halves(r.ip)
            t_hi, t_lo = split(r.target)
            gone |= (
                (ft.underlay_hi[candidates] == t_hi)
                & (ft.underlay_lo[candidates] == t_lo)
                & (key.vni == r.vni)
                & (key_v6 == is_v6)
                & (key.dst_hi == ip_hi)
                & (key.dst_lo == ip_lo)
            )
        victims = candidates[gone]
        ft.remove(victims)
        return len(victims)
