"""snat: source translation after routing (DPSERVICE.md §3.1, §4.7, §4.8; dpservice ``snat_node.c``).

In:  routed packets from ``ipv4_lookup`` / ``ipv6_lookup`` (``tx_port`` set; the ``nat`` column
     has ``PacketMark.SOUTH_NORTH`` when a default route matched).
Out: ``firewall``; drop when no NAT port is free or a translation is impossible.

First packet of a flow (no flags, original direction), south-north only:

* IPv4 from a VM whose (address, VNI) has a VIP and/or a NAT gateway slice: source := the VIP
  (``nat_type`` VIP); with a NAT slice source := the NAT IP and source port / ICMP identifier :=
  a port allocated by ``tables/nat.py`` (``NETWORK_LOCAL``; a NAT wins over a VIP, as in
  dpservice). The flow gets ``SRC_NAT`` and its reply key the new address (and port) as
  destination, so replies find it and ``dnat`` restores them.
* IPv6 from a VM whose interface has a NAT slice, to ``64:ff9b::/96`` (NAT64): a port is
  allocated with the VM's IPv6 address in the portmap key, and the packet becomes IPv4 from the
  NAT IP to the embedded address (``SRC_NAT64``); only ICMPv6 echo is translated among ICMPv6.

Later packets: ``SRC_NAT`` and ``SRC_NAT64`` flows are translated the same way in the original
direction; replies of ``DST_NAT`` (VIP) and ``DST_LB`` flows get the original destination (the
VIP or LB IP) back as source. IPv6 LB replies keep their source (the VM answers from the LB IP
itself, direct server return; dpservice drops them instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, rewrite
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.tables.conntrack import (
    W_DST_LO,
    W_META,
    W_PORTS,
    W_SRC_HI,
    W_SRC_LO,
    Dir,
    FlowFlag,
    FlowTable,
    KeyFields,
    NatType,
    PacketMark,
)
from kubevpc_agent.tables.nat import NatPorts, NatRequest, NatView, is_nat64

SHRINK = IPV6_LEN - IPV4_LEN  # NAT64 packets lose 20 bytes
_V4_TYPE = np.frombuffer(EtherType.IPV4.to_bytes(2, "big"), dtype=np.uint8)
_SOUTH_NORTH = np.uint8(PacketMark.SOUTH_NORTH)
_SRC_NAT = np.uint8(FlowFlag.SRC_NAT)
_SRC_NAT64 = np.uint8(FlowFlag.SRC_NAT64)
_DST_NAT_OR_LB = np.uint8(FlowFlag.DST_NAT | FlowFlag.DST_LB)
_ACTIONS = np.uint8(FlowFlag.SRC_NAT | FlowFlag.SRC_NAT64 | FlowFlag.DST_NAT | FlowFlag.DST_LB)
_FIREWALL = 1
_M16 = np.uint64(0xFFFF)
_ICMP = icmp.PROTO
_NETWORK_LOCAL = int(NatType.NETWORK_LOCAL)
_PORT_MASK = ~np.uint64(0xFFFF)  # the reply key's ports word without dport


class Next(IntEnum):
    DROP = 0
    FIREWALL = 1


class Counter(IntEnum):
    """Drop reasons first (``reason = counter + 1`` inside ``process``), then translations."""

    NO_NAT_PORT = 0
    REPLY_KEY_TAKEN = 1
    NAT64_UNTRANSLATABLE = 2
    VIP_SNAT = 3
    NAT_SNAT = 4
    NAT64 = 5
    REPLY_SOURCE_RESTORED = 6


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.NO_NAT_PORT: "First packets dropped: no free NAT port for their destination",
    Counter.REPLY_KEY_TAKEN: "First packets dropped: their translated reply key is another flow's",
    Counter.NAT64_UNTRANSLATABLE: "NAT64 packets that cannot become IPv4 (ICMPv6 other than echo)",
    Counter.VIP_SNAT: "Packets whose source became the VM's VIP",
    Counter.NAT_SNAT: "Packets whose source became the NAT IP and a NAT port",
    Counter.NAT64: "IPv6 packets translated to IPv4 (NAT64)",
    Counter.REPLY_SOURCE_RESTORED: "Replies of VIP/LB flows given the VIP/LB IP as source",
}

N_REASONS = Counter.NAT64_UNTRANSLATABLE + 1


class Snat(Node):
    """Source NAT and NAT64; see the module docstring."""

    name = "snat"
    NEXT_NODES = {Next.FIREWALL: "firewall"}
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, flows: FlowTable, nat: NatView, ports: NatPorts) -> None:
        super().__init__()
        self.flows = flows
        self.nat = nat
        self.nat_ports = ports

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        flows = self.flows
        f = batch.flow
        flags = flows.flags[f]
        orig = batch.flow_dir == Dir.ORIGINAL
        first = (flags == 0) & orig & ((batch.nat & _SOUTH_NORTH) != 0)
        if not first.any() and not (flags & _ACTIONS).any():
            return _FIREWALL
        reason = np.zeros(len(batch), dtype=np.int64)
        if first.any():
            # one packet per new flow decides (dpservice sees them one by one); the others of the
            # same flow then follow it like established packets, or share its drop reason
            rows = np.flatnonzero(first)
            _, lead = np.unique(f[rows], return_index=True)
            leaders = rows[lead]
            self._first_packets(batch, leaders, reason)
            followers = np.setdiff1d(rows, leaders)
            if len(followers):
                leader_of = leaders[np.searchsorted(f[leaders], f[followers])]  # f[leaders] is sorted
                reason[followers] = reason[leader_of]
            flags = flows.flags[f]
            first[followers] = False
        v4 = batch.l3 == L3.IPV4
        ok = reason == 0
        src_nat = ~first & ok & orig & ((flags & _SRC_NAT) != 0) & v4
        nat64 = ~first & ok & orig & ((flags & _SRC_NAT64) != 0) & ~v4
        restore = ~first & ok & ~orig & ((flags & _DST_NAT_OR_LB) != 0) & v4
        if src_nat.any():
            rows = np.flatnonzero(src_nat)
            fr = f[rows]
            reply = flows.keys[2 * fr + 1]  # the NATed source is the reply key's destination
            nat_port = (reply[:, W_PORTS] & _M16).astype(np.uint16)
            gateway = flows.nat_type[fr] == _NETWORK_LOCAL
            self._set_src(batch, rows, reply[:, W_DST_LO].astype(np.uint32), nat_port, gateway)
            self.count(Counter.NAT_SNAT, int(np.count_nonzero(gateway)))
            self.count(Counter.VIP_SNAT, int(np.count_nonzero(~gateway)))
        if nat64.any():
            rows = np.flatnonzero(nat64)
            reply = flows.keys[2 * f[rows] + 1]
            nat_port = (reply[:, W_PORTS] & _M16).astype(np.uint16)
            reason[rows] = self._to_ipv4(batch, rows, reply[:, W_DST_LO].astype(np.uint32), nat_port)
        if restore.any():
            rows = np.flatnonzero(restore)
            vip = flows.keys[2 * f[rows], W_DST_LO].astype(np.uint32)  # the original destination
            self._set_src(batch, rows, vip, None, np.zeros(len(rows), dtype=bool))
            self.count(Counter.REPLY_SOURCE_RESTORED, len(rows))
        drops = reason > 0
        if not drops.any():
            return _FIREWALL
        self.counters[:N_REASONS] += np.bincount(reason, minlength=N_REASONS + 1)[1:].astype(np.uint64)
        return np.where(drops, Next.DROP, Next.FIREWALL).astype(np.intp)

    # --- first packets -----------------------------------------------------------------------------

    def _first_packets(self, batch: Batch, rows: npt.NDArray[np.intp], reason: npt.NDArray[np.int64]) -> None:
        """VIP/NAT/NAT64 for the first packet of new flows (one row per flow)."""
        flows, nat = self.flows, self.nat
        nat.refresh()
        v4 = batch.l3[rows] == L3.IPV4
        entry = np.where(v4, nat.snat(batch.vni[rows], batch.src_lo[rows]), -1)
        vip = nat.snat_vip[entry]
        nat_ip = nat.snat_nat_ip[entry]
        port_id = batch.rx_port[rows].astype(np.intp)
        in_range = (port_id >= 0) & (port_id < len(nat.port_nat_ip))
        port_id = np.where(in_range, port_id, 0)
        nat64 = (
            ~v4
            & in_range
            & (nat.port_nat_ip[port_id] != 0)
            & is_nat64(batch.dst_hi[rows], batch.dst_lo[rows])
        )
        gateway = v4 & (nat_ip != 0)
        only_vip = v4 & (vip != 0) & ~gateway
        if only_vip.any():
            r = rows[only_vip]
            fv = batch.flow[r]
            ok = self._rekey(r, fv, new_src=vip[only_vip], new_port=None, reason=reason)
            r, fv = r[ok], fv[ok]
            flows.nat_type[fv] = NatType.VIP
            flows.flags[fv] |= _SRC_NAT
            self._set_src(batch, r, vip[only_vip][ok], None, np.zeros(len(r), dtype=bool))
            self.count(Counter.VIP_SNAT, len(r))
        if gateway.any() or nat64.any():
            self._allocate(
                batch, rows, gateway=gateway, nat64=nat64, entry=entry, port_id=port_id, reason=reason
            )

    def _allocate(
        self,
        batch: Batch,
        rows: npt.NDArray[np.intp],
        *,
        gateway: npt.NDArray[np.bool_],
        nat64: npt.NDArray[np.bool_],
        entry: npt.NDArray[np.int64],
        port_id: npt.NDArray[np.intp],
        reason: npt.NDArray[np.int64],
    ) -> None:
        """NAT ports for new NAT-gateway and NAT64 flows, then their translation."""
        flows, nat = self.flows, self.nat
        pick = gateway | nat64
        r = rows[pick]
        e, pid, is64 = entry[pick], port_id[pick], nat64[pick]
        is_icmp = (batch.proto[r] == icmp.PROTO) | (batch.proto[r] == icmpv6.PROTO)
        req = NatRequest(
            port=batch.rx_port[r],
            vni=batch.vni[r],
            src_hi=batch.src_hi[r],
            src_lo=batch.src_lo[r],
            is_v6=is64,
            src_port=np.where(is_icmp, batch.dport[r], batch.sport[r]).astype(np.uint16),
            dst_ip=(batch.dst_lo[r] & np.uint64(0xFFFFFFFF)).astype(np.uint32),
            dst_port=batch.dport[r],
            proto=batch.proto[r],
            nat_ip=np.where(is64, nat.port_nat_ip[pid], nat.snat_nat_ip[e]).astype(np.uint32),
            min_port=np.where(is64, nat.port_nat_min[pid], nat.snat_min[e]).astype(np.uint16),
            max_port=np.where(is64, nat.port_nat_max[pid], nat.snat_max[e]).astype(np.uint16),
        )
        port = self.nat_ports.allocate(req)
        got = port >= 0
        reason[r[~got]] = Counter.NO_NAT_PORT + 1
        req, r, port, is64 = req.take(got), r[got], port[got], is64[got]
        if len(r) == 0:
            return
        new_port = port.astype(np.uint16)
        # NAT64 first: an impossible translation gives its port back before anything is rekeyed
        if is64.any():
            why = np.zeros(len(r), dtype=np.int64)
            why[is64] = self._to_ipv4(batch, r[is64], req.nat_ip[is64], new_port[is64])
            reason[r[is64]] = why[is64]
            bad = why > 0
            if bad.any():
                self.nat_ports.free(req.take(bad), port[bad])
                req, r, port, is64, new_port = req.take(~bad), r[~bad], port[~bad], is64[~bad], new_port[~bad]
        fv = batch.flow[r]
        taken = ~self._rekey(r, fv, new_src=req.nat_ip, new_port=new_port, reason=reason, nat64=is64)
        if taken.any():
            self.nat_ports.free(req.take(taken), port[taken])
        ok = ~taken
        r, fv, is64, req, new_port = r[ok], fv[ok], is64[ok], req.take(ok), new_port[ok]
        flows.nat_type[fv] = NatType.NETWORK_LOCAL
        flows.nf_vni[fv] = req.vni
        flows.flags[fv] |= np.where(is64, _SRC_NAT64, _SRC_NAT).astype(np.uint8)
        g = ~is64
        if g.any():
            self._set_src(batch, r[g], req.nat_ip[g], new_port[g], np.ones(int(g.sum()), dtype=bool))
            self.count(Counter.NAT_SNAT, int(g.sum()))

    def _rekey(
        self,
        rows: npt.NDArray[np.intp],
        fv: npt.NDArray[np.int64],
        *,
        new_src: npt.NDArray[np.uint32],
        new_port: npt.NDArray[np.uint16] | None,
        reason: npt.NDArray[np.int64],
        nat64: npt.NDArray[np.bool_] | None = None,
    ) -> npt.NDArray[np.bool_]:
        """Point the reply keys of new flows at their translated source; False where taken."""
        flows = self.flows
        keys = flows.keys[2 * fv + 1].copy()
        keys[:, W_DST_LO] = new_src
        if new_port is not None:
            keys[:, W_PORTS] = (keys[:, W_PORTS] & _PORT_MASK) | new_port.astype(np.uint64)
        if nat64 is not None and nat64.any():
            # the reply to a NAT64 flow is IPv4: from the embedded address, ICMP for ICMPv6
            k = keys[nat64]
            orig = KeyFields.of(flows.keys[2 * fv[nat64]])
            k[:, W_SRC_HI] = 0
            k[:, W_SRC_LO] = orig.dst_lo & np.uint64(0xFFFFFFFF)
            k[:, 2] = 0  # dst_hi
            ping = orig.proto == icmpv6.PROTO
            reply_type = np.where(
                orig.sport == icmpv6.Icmpv6Type.ECHO_REQUEST,
                icmp.IcmpType.ECHO_REPLY,
                np.where(orig.sport == icmpv6.Icmpv6Type.ECHO_REPLY, icmp.IcmpType.ECHO_REQUEST, 0),
            ).astype(np.uint64)
            ports = k[:, W_PORTS]
            k[:, W_PORTS] = np.where(
                ping, (ports & ~(_M16 << np.uint64(16))) | (reply_type << np.uint64(16)), ports
            )
            meta = k[:, W_META]
            proto = np.where(ping, icmp.PROTO, orig.proto).astype(np.uint64)
            k[:, W_META] = (meta & ~np.uint64(0xFF00FF)) | (np.uint64(L3.IPV4) << np.uint64(16)) | proto
            keys[nat64] = k
        ok = flows.rekey_reply(fv, keys)
        reason[rows[~ok]] = Counter.REPLY_KEY_TAKEN + 1
        return ok

    # --- figures ----------------------------------------------------------------------------------

    def table_figures(self) -> dict[str, tuple[int, int]]:
        """NAT tables as dpservice's saturation reports them (bounded by the flow table)."""
        ports, capacity = self.nat_ports, self.flows.capacity
        return {
            "nat_portmap_table": (capacity, len(ports.portmap)),
            "nat_portoverload_table": (capacity, len(ports.overload)),
        }

    def port_figures(self) -> dict[str, dict[int, int]]:
        """NAT ports in use per VM port (one per NAT-gateway flow, as dpservice counts)."""
        return {"nat_used_ports": dict(self.nat_ports.used_by_port)}

    # --- rewrites ----------------------------------------------------------------------------------

    def _set_src(
        self,
        batch: Batch,
        rows: npt.NDArray[np.intp],
        src: npt.NDArray[np.uint32],
        port: npt.NDArray[np.uint16] | None,
        with_port: npt.NDArray[np.bool_],
    ) -> None:
        """New IPv4 source (and, where ``with_port``, TCP/UDP source port or ICMP identifier)."""
        if len(rows) == 0:
            return
        sub = batch.part(rows)
        hdr = sub.read(ETHER_LEN, rewrite.ROW_V4)
        proto = sub.proto
        if port is not None:
            is_icmp = proto == _ICMP
            if with_port.all() and not is_icmp.any():  # the common case: TCP/UDP behind a NAT
                sport, ident = port, sub.dport
            else:
                sport = np.where(with_port & ~is_icmp, port, sub.sport).astype(np.uint16)
                ident = np.where(with_port & is_icmp, port, sub.dport).astype(np.uint16)
            rewrite.nat_ipv4(hdr, proto, src=src, sport=sport, icmp_id=ident)
            batch.sport[rows] = sport
            batch.dport[rows] = ident
        else:
            rewrite.nat_ipv4(hdr, proto, src=src)
        sub.write(ETHER_LEN, hdr)
        batch.src_lo[rows] = src

    def _to_ipv4(
        self,
        batch: Batch,
        rows: npt.NDArray[np.intp],
        nat_ip: npt.NDArray[np.uint32],
        port: npt.NDArray[np.uint16],
    ) -> npt.NDArray[np.int64]:
        """NAT64 of ``rows`` in place (the frame loses 20 bytes); returns a drop reason per row."""
        sub = batch.part(rows)
        hdr6 = sub.read(ETHER_LEN, rewrite.ROW_V6)
        out, ok = rewrite.to_ipv4(hdr6, nat_ip, port)
        why = np.where(ok, 0, Counter.NAT64_UNTRANSLATABLE + 1).astype(np.int64)
        r, out = rows[ok], out[ok]
        if len(r) == 0:
            return why
        ether = batch.part(r).read(0, 12)
        batch.off[r] += SHRINK
        batch.length[r] -= SHRINK
        head = np.concatenate([ether, np.broadcast_to(_V4_TYPE, (len(r), 2)), out], axis=1)
        batch.part(r).write(0, head)
        proto = out[:, 9]
        batch.l3[r] = L3.IPV4
        batch.proto[r] = proto
        batch.src_hi[r] = 0
        batch.dst_hi[r] = 0
        batch.src_lo[r] = nat_ip[ok]
        batch.dst_lo[r] = rewrite.get32(out, 16)
        is_icmp = proto == icmp.PROTO
        batch.sport[r] = np.where(is_icmp, out[:, IPV4_LEN], port[ok])
        batch.dport[r] = np.where(is_icmp, port[ok], batch.dport[r])
        self.count(Counter.NAT64, len(r))
        return why
