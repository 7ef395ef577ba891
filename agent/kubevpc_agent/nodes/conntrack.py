"""conntrack: give every packet its flow, creating flows on first packets (DPSERVICE.md §3.1, §4.12).

In:  IPv4/IPv6 packets from ``cls`` (VM traffic) and from ``ipip_decap`` (uplink traffic, already
     decapsulated, with ``vni``, ``vnf_type`` and ``tx_port`` set from the underlay address).
Out: ``dhcp`` for IPv4 UDP to port 67 and ``dhcpv6`` for IPv6 UDP to port 547 (no flow); with
     ``flow``/``flow_dir`` set: ``dnat`` for VM traffic and for VIP/NAT underlays, ``lb`` for
     load-balancer underlays, ``firewall`` for interface, alias-prefix and LB-prefix underlays
     (delivered to the VM, not routed); drop otherwise, counted per reason.

The gate (dpservice's): only TCP, UDP, ICMP and ICMPv6 pass, ICMP only as echo or as destination
unreachable with codes 2, 3, 4 (§4.5). The flow key (``tables/conntrack.py``) is the packet's
own, except that ICMP errors use the reversed embedded header, so they join the flow they report
on; an error for no known flow is dropped (dpservice would create a flow from it). The key's VNF
type: from an uplink NAT or LB_ALIAS_PFX as decapsulated, else 0; from a VM NAT when its
(address, VNI) has a NAT gateway slice or the IPv6 destination is in 64:ff9b::/96, LB_ALIAS_PFX
when the source is a /32 LB prefix of the port, else 0. Ours, not dpservice's: a packet whose
destination is a local interface with a NAT gateway slice (from a VM, or from an uplink to that
interface's underlay) is NAT too, so both directions of an east-west flow share the key type.
VM packets leave with that key type in ``vnf_type`` (so ``flow_hash`` matches dpservice's);
uplink packets keep the decapsulated type.

Per packet: ``last_seen`` is refreshed, TCP packets (except those arriving for a load balancer)
drive the TCP state machine, and reply-direction packets of relayed flows (neighbour NAT, LB
forward) are dropped. New flows beyond the table's capacity are dropped (``table_full``) and
established flows are unaffected; a new flow whose reply key belongs to another flow is dropped
(``key_conflict``).

The worker calls :meth:`Conntrack.age` every second (expired flows go, NAT ports with them) and
:meth:`Conntrack.before_command` before applying each table command, which removes the flows a
deletion invalidates, as dpservice's gRPC handlers do (§1.4): DeleteInterface (flows created by
its port or addressed to its IPv4 in its VNI), DeleteVip / DeleteNat (the port's VIP / NAT
flows), DeleteNeighborNat (flows to that NAT IP and port range). ``lb`` moves the flows of a
removed LB target itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from enum import IntEnum
from ipaddress import IPv4Address

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, ipv4, tcp, udp
from kubevpc_agent.protocols.ether import ETHER_LEN
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import (
    KEY_WORDS,
    NO_FLOW,
    RELAYED,
    Dir,
    FlowTable,
    KeyFields,
    NatType,
    slot_hash,
)
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.nat import NatView, is_nat64
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.reasons import first_reason
from kubevpc_agent.tables.state import AgentState


class Next(IntEnum):
    DROP = 0
    DHCP = 1
    DHCPV6 = 2
    DNAT = 3
    FIREWALL = 4  # uplink traffic for a local interface, alias prefix or LB prefix
    LB = 5  # uplink traffic for a load balancer


class Counter(IntEnum):
    """Drop reasons first (``reason = counter + 1`` inside ``process``), then flow figures."""

    UNSUPPORTED_PROTOCOL = 0
    ICMP_TYPE_DROPPED = 1
    DHCP_FROM_UPLINK = 2
    UNDEFINED_UNDERLAY = 3
    BAD_ICMP_ERROR = 4
    ICMP_ERROR_NO_FLOW = 5
    TABLE_FULL = 6
    KEY_CONFLICT = 7
    RELAYED_REPLY = 8
    FLOWS_CREATED = 9
    FLOWS_EXPIRED = 10
    FLOWS_PURGED = 11


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.UNSUPPORTED_PROTOCOL: "Packets whose IP protocol is not TCP, UDP, ICMP or ICMPv6",
    Counter.ICMP_TYPE_DROPPED: "ICMP other than echo and destination unreachable (codes 2, 3, 4)",
    Counter.DHCP_FROM_UPLINK: "DHCP/DHCPv6 server-port packets arriving through an uplink",
    Counter.UNDEFINED_UNDERLAY: "Uplink packets whose underlay type is undefined",
    Counter.BAD_ICMP_ERROR: "ICMP errors whose embedded header is truncated or not TCP/UDP",
    Counter.ICMP_ERROR_NO_FLOW: "ICMP errors about no tracked flow",
    Counter.TABLE_FULL: "First packets of new flows refused: the flow table is full",
    Counter.KEY_CONFLICT: "First packets of new flows whose reply key belongs to another flow",
    Counter.RELAYED_REPLY: "Reply-direction packets of relayed flows (neighbour NAT, LB forward)",
    Counter.FLOWS_CREATED: "Flows created",
    Counter.FLOWS_EXPIRED: "Flows removed by ageing",
    Counter.FLOWS_PURGED: "Flows removed because their interface, VIP, NAT or neighbour NAT went",
}

N_REASONS = Counter.RELAYED_REPLY + 1  # counters 0..RELAYED_REPLY are drop reasons
TRACKED = np.zeros(256, dtype=bool)
TRACKED[[tcp.PROTO, udp.PROTO, icmp.PROTO, icmpv6.PROTO]] = True
ICMP_FORWARDED = np.zeros(256, dtype=bool)
ICMP_FORWARDED[list(icmp.FORWARDED_TYPES)] = True
UNREACHABLE_CODE_FORWARDED = np.zeros(256, dtype=bool)
UNREACHABLE_CODE_FORWARDED[list(icmp.FORWARDED_UNREACHABLE_CODES)] = True
LOCAL_VNF = np.zeros(256, dtype=bool)  # underlay types delivered to a local port
LOCAL_VNF[[VnfType.INTERFACE_IP, VnfType.ALIAS_PFX, VnfType.LB_ALIAS_PFX]] = True
DNAT_VNF = np.zeros(256, dtype=bool)
DNAT_VNF[[VnfType.VIP, VnfType.NAT]] = True
KEPT_VNF = np.zeros(256, dtype=bool)  # uplink VNF types the flow key keeps (dp_mark_vnf_type)
KEPT_VNF[[VnfType.NAT, VnfType.LB_ALIAS_PFX]] = True
ICMP_CODE_AT = ETHER_LEN + IPV4_LEN + icmp.OFF_CODE  # in IPv6 (proto 1 there is odd but legal) 20 bytes later
ICMP_CODE_V6_SHIFT = IPV6_LEN - IPV4_LEN
EMBEDDED_AT = ETHER_LEN + IPV4_LEN + icmp.ICMP_LEN  # the IPv4 header inside an ICMP error
EMBEDDED_LEN = IPV4_LEN + 4  # its header and the transport ports
TCP_FLAGS_V4 = ETHER_LEN + IPV4_LEN + tcp.OFF_FLAGS
TCP_FLAGS_V6 = ETHER_LEN + IPV6_LEN + tcp.OFF_FLAGS
_S8, _S16, _S32 = np.uint64(8), np.uint64(16), np.uint64(32)
PF_VNF = LOCAL_VNF | DNAT_VNF  # uplink VNF types with somewhere to go
PF_VNF[VnfType.LB] = True
RELAYED_TYPE = np.zeros(256, dtype=bool)
RELAYED_TYPE[list(RELAYED)] = True
# plain ints for the hot path (IntEnum attribute access costs a dictionary walk per use)
_IPV4, _UDP, _TCP, _ICMP = int(L3.IPV4), udp.PROTO, tcp.PROTO, icmp.PROTO
_DHCP_PORT, _DHCPV6_PORT = udp.DHCP_SERVER_PORT, udp.DHCPV6_SERVER_PORT
_UNREACHABLE = int(icmp.IcmpType.DEST_UNREACHABLE)
_REPLY = int(Dir.REPLY)
_NAT, _LB_ALIAS_PFX, _LB_VNF = int(VnfType.NAT), int(VnfType.LB_ALIAS_PFX), int(VnfType.LB)
_INTERFACE_IP = int(VnfType.INTERFACE_IP)
_DROP, _DHCP, _DHCPV6, _DNAT, _FIREWALL, _LB = (int(e) for e in (0, 1, 2, 3, 4, 5))


class Conntrack(Node):
    """Flow tracking and dispatch; see the module docstring."""

    name = "conntrack"
    NEXT_NODES = {
        Next.DHCP: "dhcp",
        Next.DHCPV6: "dhcpv6",
        Next.DNAT: "dnat",
        Next.FIREWALL: "firewall",
        Next.LB: "lb",
    }
    COUNTER_HELP = COUNTER_HELP

    def __init__(
        self,
        ports: PortTable,
        flows: FlowTable,
        nat: NatView,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.ports = ports
        self.flows = flows
        self.nat = nat
        self.clock = clock

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        ports = self.ports
        ports.refresh()
        idx, _ = ports.index(batch.rx_port)
        from_pf = ports.is_pf[idx]
        any_pf = bool(from_pf.any())
        proto = batch.proto
        v4 = batch.l3 == _IPV4
        # DHCP goes to its servers untracked (dpservice checks it first)
        dhcp_port = (batch.dport == _DHCP_PORT) | (batch.dport == _DHCPV6_PORT)
        dhcp_any = bool((dhcp_port & (proto == _UDP)).any())
        dhcp: npt.NDArray[np.bool_] | None = None
        dhcpv6: npt.NDArray[np.bool_] | None = None
        if dhcp_any:
            udp_dport = np.where(proto == _UDP, batch.dport, 0)
            dhcp = v4 & (udp_dport == _DHCP_PORT)
            dhcpv6 = ~v4 & (udp_dport == _DHCPV6_PORT)
        # the gate: reasons are worked out only for batches that have something to drop
        is_icmp = proto == _ICMP
        any_icmp = bool(is_icmp.any())
        icmp_ok = None
        if any_icmp:
            # ICMP type is in the sport column; unreachable needs the code byte too
            codes = batch.read(ICMP_CODE_AT, ICMP_CODE_V6_SHIFT + 1)
            code = np.where(v4, codes[:, 0], codes[:, ICMP_CODE_V6_SHIFT])
            icmp_type = batch.sport.astype(np.intp) & 0xFF
            unreachable = icmp_type == _UNREACHABLE
            icmp_ok = ~is_icmp | (
                ICMP_FORWARDED[icmp_type] & (~unreachable | UNREACHABLE_CODE_FORWARDED[code])
            )
        vnf = batch.vnf_type
        bad_pf = None
        if any_pf:
            bad_pf = from_pf & ~PF_VNF[vnf]
            if dhcp is not None and dhcpv6 is not None:
                bad_pf = bad_pf | (from_pf & (dhcp | dhcpv6))
        tracked_proto = TRACKED[proto]
        all_good = bool(tracked_proto.all()) and (icmp_ok is None or bool(icmp_ok.all()))
        all_good = all_good and (bad_pf is None or not bad_pf.any())
        if all_good:
            reason = np.zeros(len(batch), dtype=np.int64)
        else:
            cases = [(~tracked_proto, Counter.UNSUPPORTED_PROTOCOL + 1)]
            if icmp_ok is not None:
                cases.append((~icmp_ok, Counter.ICMP_TYPE_DROPPED + 1))
            if any_pf and dhcp is not None and dhcpv6 is not None:
                cases.append((from_pf & (dhcp | dhcpv6), Counter.DHCP_FROM_UPLINK + 1))
            if any_pf:
                cases.append((from_pf & ~PF_VNF[vnf], Counter.UNDEFINED_UNDERLAY + 1))
            reason = first_reason(cases)
        untracked = reason > 0
        if dhcp is not None and dhcpv6 is not None:
            untracked = untracked | dhcp | dhcpv6
        if not untracked.any():
            reason = self._track(batch, None, batch, from_pf, any_pf)
        else:
            track = np.flatnonzero(~untracked)
            if len(track):
                reason[track] = self._track(batch.select(track), track, batch, from_pf[track], any_pf)
        drops = reason > 0
        self.counters[:N_REASONS] += np.bincount(reason, minlength=N_REASONS + 1)[1:].astype(np.uint64)
        if not any_pf and not dhcp_any:
            if not drops.any():
                return _DNAT  # stream move: the whole batch to dnat
            return np.where(drops, _DROP, _DNAT).astype(np.intp)
        choices = [drops]
        targets = [_DROP]
        if dhcp is not None and dhcpv6 is not None:
            choices += [dhcp, dhcpv6]
            targets += [_DHCP, _DHCPV6]
        choices += [~from_pf, LOCAL_VNF[vnf], vnf == _LB_VNF]
        targets += [_DNAT, _FIREWALL, _LB]
        edges: npt.NDArray[np.intp] = np.select(choices, targets, _DNAT).astype(np.intp)
        return edges

    # --- flows -------------------------------------------------------------------------------------

    def _track(
        self,
        sub: Batch,
        rows: npt.NDArray[np.intp] | None,
        batch: Batch,
        from_pf: npt.NDArray[np.bool_],
        any_pf: bool,
    ) -> npt.NDArray[np.int64]:
        """Resolve the flows of ``sub`` (``batch`` at ``rows``, None: all); a drop reason per row."""
        flows, nat = self.flows, self.nat
        nat.refresh()
        n = len(sub)
        v4 = sub.l3 == _IPV4
        key_vnf = self._key_vnf(sub, v4, from_pf, any_pf)
        words = [sub.src_hi, sub.src_lo, sub.dst_hi, sub.dst_lo, _ports_word(sub.vni, sub.sport, sub.dport)]
        meta = sub.l3.astype(np.uint64) << _S16
        meta |= key_vnf.astype(np.uint64) << _S8
        meta |= sub.proto
        words.append(meta)
        reason = np.zeros(n, dtype=np.int64)
        error = None
        is_icmp = sub.proto == _ICMP
        if is_icmp.any():
            error = is_icmp & v4 & ((sub.sport & 0xFF) == _UNREACHABLE)
            if error.any():
                words = [w.copy() for w in words]
                reason[error] = self._error_keys(sub, np.flatnonzero(error), words)
            else:
                error = None
        keys = np.empty((n, KEY_WORDS), dtype=np.uint64)
        for i, w in enumerate(words):
            keys[:, i] = w
        hashed = slot_hash(words)
        now = self.clock()
        if error is None:
            resolved = flows.resolve(keys, now, sub.rx_port, hashed)
            flow, direction = resolved.flow, resolved.dir
            if resolved.full.any() or resolved.conflict.any():
                reason[resolved.full] = Counter.TABLE_FULL + 1
                reason[resolved.conflict] = Counter.KEY_CONFLICT + 1
        else:
            flow = np.full(n, NO_FLOW, dtype=np.int64)
            direction = np.zeros(n, dtype=np.uint8)
            e = np.flatnonzero(error & (reason == 0))
            found, found_dir = flows.lookup(keys[e], hashed[e])
            flow[e], direction[e] = found, found_dir
            reason[e[found == NO_FLOW]] = Counter.ICMP_ERROR_NO_FLOW + 1
            new = np.flatnonzero(~error)
            resolved = flows.resolve(keys[new], now, sub.rx_port[new], hashed[new])
            flow[new], direction[new] = resolved.flow, resolved.dir
            r = reason[new]
            r[resolved.full] = Counter.TABLE_FULL + 1
            r[resolved.conflict] = Counter.KEY_CONFLICT + 1
            reason[new] = r
        created = int(np.count_nonzero(resolved.created))
        if created:
            self.counters[Counter.FLOWS_CREATED] += np.uint64(created)

        ok = flow != NO_FLOW  # every refused packet has its reason by now
        all_ok = bool(ok.all())
        f = flow if all_ok else np.where(ok, flow, 0)
        flows.last_seen[f if all_ok else flow[ok]] = now
        replies = direction == _REPLY
        if replies.any():
            relayed_reply = ok & replies & RELAYED_TYPE[flows.nat_type[f]]
            reason[relayed_reply] = Counter.RELAYED_REPLY + 1
        # TCP state: the packet itself is TCP (not an ICMP error about TCP), not for a load balancer
        is_tcp = sub.proto == _TCP
        if is_tcp.any():
            is_tcp &= ok & (reason == 0)
            if any_pf:
                is_tcp &= sub.vnf_type != _LB_VNF
            t = np.flatnonzero(is_tcp)
            if len(t):
                tcp_sub = sub if len(t) == n else sub.select(t)
                tcp_bytes = tcp_sub.read(TCP_FLAGS_V4, TCP_FLAGS_V6 - TCP_FLAGS_V4 + 1)
                tcp_flags = np.where(v4[t], tcp_bytes[:, 0], tcp_bytes[:, -1]).astype(np.uint8)
                flows.track_tcp(flow[t], direction[t], tcp_flags)

        out_flow = flow if not reason.any() else np.where(reason == 0, flow, NO_FLOW)
        out_vnf = key_vnf if not any_pf else np.where(from_pf, sub.vnf_type, key_vnf).astype(np.uint8)
        if rows is None:
            batch.flow, batch.flow_dir, batch.vnf_type = out_flow, direction, out_vnf
        else:
            batch.flow[rows] = out_flow
            batch.flow_dir[rows] = direction
            batch.vnf_type[rows] = out_vnf
        return reason

    def _key_vnf(
        self, sub: Batch, v4: npt.NDArray[np.bool_], from_pf: npt.NDArray[np.bool_], any_pf: bool
    ) -> npt.NDArray[np.uint8]:
        """The flow key's VNF type (dpservice ``dp_mark_vnf_type``); lookups only where tables exist."""
        nat = self.nat
        n = len(sub)
        key_vnf = np.zeros(n, dtype=np.uint8)
        any_v4 = bool(v4.any())
        if any_v4 and len(nat.lb_prefix_key):
            key_vnf[v4 & nat.is_lb_prefix(sub.rx_port, sub.src_lo)] = _LB_ALIAS_PFX
        to_nat = None
        if any_v4 and len(nat.snat_key):
            has_nat = nat.snat_nat_ip[nat.snat(sub.vni, sub.src_lo)] != 0  # MISS reads the zero pad
            # ours: also when the other end is a local interface with a NAT slice, so both
            # directions of an east-west flow of a NAT'd VM carry the same key type (dpservice marks
            # the sender only; its replies then open a new flow, which the firewall, enforced here,
            # judges as a new inbound connection)
            to_nat = v4 & (nat.snat_nat_ip[nat.snat(sub.vni, sub.dst_lo)] != 0)
            key_vnf[v4 & (has_nat | to_nat)] = _NAT
        if not v4.all():
            key_vnf[~v4 & is_nat64(sub.dst_hi, sub.dst_lo)] = _NAT
        if any_pf:
            kept = np.where(KEPT_VNF[sub.vnf_type], sub.vnf_type, 0).astype(np.uint8)
            if to_nat is not None:
                kept[to_nat & (sub.vnf_type == _INTERFACE_IP)] = _NAT
            key_vnf = np.where(from_pf, kept, key_vnf).astype(np.uint8)
        return key_vnf

    def _error_keys(
        self, sub: Batch, err: npt.NDArray[np.intp], words: list[npt.NDArray[np.uint64]]
    ) -> npt.NDArray[np.int64]:
        """Key words of ICMP errors from their embedded header, reversed; reason for bad ones."""
        emb = sub.select(err).read(EMBEDDED_AT, EMBEDDED_LEN)
        length = sub.length[err]
        e_proto = emb[:, ipv4.OFF_PROTO]
        e_src = emb[:, ipv4.OFF_SRC : ipv4.OFF_SRC + 4].copy().view(">u4").reshape(-1).astype(np.uint64)
        e_dst = emb[:, ipv4.OFF_DST : ipv4.OFF_DST + 4].copy().view(">u4").reshape(-1).astype(np.uint64)
        e_sport = (emb[:, 20].astype(np.uint16) << np.uint16(8)) | emb[:, 21]
        e_dport = (emb[:, 22].astype(np.uint16) << np.uint16(8)) | emb[:, 23]
        bad = (
            (length < EMBEDDED_AT + EMBEDDED_LEN)
            | (emb[:, 0] != 0x45)
            | ((e_proto != tcp.PROTO) & (e_proto != udp.PROTO))
            | (e_sport == 0)
            | (e_dport == 0)
        )
        words[1][err] = e_dst
        words[3][err] = e_src
        words[4][err] = _ports_word(sub.vni[err], e_dport, e_sport)
        words[5][err] = (words[5][err] & ~np.uint64(0xFF)) | e_proto
        return np.where(bad, Counter.BAD_ICMP_ERROR + 1, 0).astype(np.int64)

    # --- timers and table commands -------------------------------------------------------------------

    def age(self, now: float) -> None:
        """Remove expired flows (the worker calls this every second)."""
        self.count(Counter.FLOWS_EXPIRED, self.flows.age(now))

    def before_command(self, command: object, state: AgentState) -> None:
        """Remove the flows a table command is about to invalidate (dpservice's gRPC handlers)."""
        flows = self.flows
        mask: npt.NDArray[np.bool_] | None = None
        if isinstance(command, cmd.DeleteInterface):
            iface = state.interfaces.get(command.interface_id)
            if iface is not None:
                mask = flows.created_port == iface.port_id
                if iface.ipv4 is not None:
                    orig = KeyFields.of(flows.keys[0::2])
                    mask |= (orig.vni == iface.vni) & (orig.l3 == L3.IPV4) & (orig.dst_lo == int(iface.ipv4))
        elif isinstance(command, (cmd.DeleteVip, cmd.DeleteNat)):
            iface = state.interfaces.get(command.interface_id)
            if iface is not None:
                kind = NatType.VIP if isinstance(command, cmd.DeleteVip) else NatType.NETWORK_LOCAL
                mask = (flows.created_port == iface.port_id) & (flows.nat_type == kind)
        elif isinstance(command, cmd.DeleteNeighborNat):
            mask = np.zeros(flows.capacity, dtype=bool)
            for d in (Dir.ORIGINAL, Dir.REPLY):
                k = KeyFields.of(flows.keys[d::2])
                mask |= (
                    (k.vni == command.vni)
                    & (k.l3 == L3.IPV4)
                    & (k.dst_lo == int(IPv4Address(command.nat_ip)))
                    & (k.dport >= command.min_port)
                    & (k.dport < command.max_port)
                )
        if mask is not None:
            gone = flows.flows_where(mask)
            flows.remove(gone)
            self.count(Counter.FLOWS_PURGED, len(gone))

    def table_figures(self) -> dict[str, tuple[int, int]]:
        """(capacity, entries) of the flow table, dpservice's ``conntrack_table`` saturation."""
        return {"conntrack_table": (self.flows.capacity, self.flows.count)}


def _ports_word(
    vni: npt.NDArray[np.integer], sport: npt.NDArray[np.integer], dport: npt.NDArray[np.integer]
) -> npt.NDArray[np.uint64]:
    word: npt.NDArray[np.uint64] = vni.astype(np.uint64) << _S32
    word |= sport.astype(np.uint64) << _S16
    word |= dport.astype(np.uint64)
    return word
