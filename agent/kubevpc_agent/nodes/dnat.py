"""dnat: destination translation before routing (DPSERVICE.md §3.1, §4.7, §4.8; dpservice ``dnat_node.c``).

In:  packets with their flow from ``conntrack``: VM traffic and uplink traffic for a VIP or NAT
     underlay.
Out: ``ipv4_lookup`` / ``ipv6_lookup`` (routing), ``packet_relay`` (neighbour-NAT relay, echo to
     a NAT IP), drop.

First packet of a flow (no flags, original direction, IPv4), by the DNAT entry of
(destination, VNI):

* a VIP: destination := the VM's address; the flow gets ``DST_NAT`` and its reply key the VM
  as source, so replies match and ``snat`` restores the VIP as their source;
* a NAT IP: an ICMP echo request is answered (``NAT_AS_TARGET``, to ``packet_relay``); a port
  (or ICMP identifier) inside a neighbour NAT's ``[min, max)`` for that IP and VNI is relayed to
  the neighbour's underlay (``NETWORK_NEIGH``, ``DST_NAT_FWD``); anything else is dropped
  (``premature``: nothing went out from behind the NAT, so nothing can come back), and its flow
  is removed at once.

Later packets: ``DST_NAT_FWD`` flows go on to ``packet_relay``; echo requests of a
``NAT_AS_TARGET`` flow are answered again; ``DST_NAT`` flows get the VM's address as destination
in the original direction. Replies of source-NATed flows (``SRC_NAT``) get the VM's address back,
and for NAT-gateway flows its port (TCP/UDP destination port, ICMP echo identifier, or inside an
ICMP error the embedded source address and port, with every checksum kept right); replies of
NAT64 flows become IPv6 again (source ``64:ff9b::<IPv4 source>``, destination the VM).

Differences from dpservice: echo requests to a NAT IP are answered without waiting for the flow's
DEFAULT flag (dpservice only sets it at tx; the result is the same); an ICMP error's embedded IPv4
header checksum is updated instead of restored from the value seen when the flow began (which is
wrong once a router decremented the TTL), and the ICMP and embedded transport checksums are
updated too.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.protocols import icmp, icmpv6, rewrite, tcp, udp
from kubevpc_agent.protocols.checksum import checksum, pseudo_header_sum
from kubevpc_agent.protocols.ether import ETHER_LEN, EtherType
from kubevpc_agent.protocols.ipv4 import IPV4_LEN
from kubevpc_agent.protocols.ipv6 import IPV6_LEN
from kubevpc_agent.tables.conntrack import (
    W_PORTS,
    W_SRC_LO,
    Dir,
    FlowFlag,
    FlowTable,
    KeyFields,
    NatType,
)
from kubevpc_agent.tables.nat import NAT64_HI, NAT64_LO, NatView

_V6_TYPE = np.frombuffer(EtherType.IPV6.to_bytes(2, "big"), dtype=np.uint8)
GROWTH = IPV6_LEN - IPV4_LEN  # NAT64 replies grow by 20 bytes
ERROR_AT = ETHER_LEN + IPV4_LEN + icmp.ICMP_LEN  # the embedded IPv4 header of an ICMP error


class Next(IntEnum):
    DROP = 0
    IPV4_LOOKUP = 1
    IPV6_LOOKUP = 2
    PACKET_RELAY = 3


class Counter(IntEnum):
    """Drop reasons first (``reason = counter + 1`` inside ``process``), then translations."""

    PREMATURE = 0
    REPLY_KEY_TAKEN = 1
    NAT64_UNTRANSLATABLE = 2
    BAD_ICMP_ERROR = 3
    NO_HEADROOM = 4
    VIP_DNAT = 5
    NAT_RESTORED = 6
    NAT64_RESTORED = 7
    NEIGHBOR_RELAY = 8
    ECHO_TO_NAT_IP = 9


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.PREMATURE: "Inbound packets to a NAT IP that are no reply, relay or echo (dropped)",
    Counter.REPLY_KEY_TAKEN: "First packets to a VIP whose translated reply key is another flow's",
    Counter.NAT64_UNTRANSLATABLE: "NAT64 replies that cannot become IPv6 (ICMP other than echo)",
    Counter.BAD_ICMP_ERROR: "ICMP errors about a NAT flow whose embedded header cannot be restored",
    Counter.NO_HEADROOM: "NAT64 replies without 20 bytes of headroom (dropped)",
    Counter.VIP_DNAT: "Packets whose destination VIP became the VM's address",
    Counter.NAT_RESTORED: "Replies of source-NATed flows given the VM's address (and port) back",
    Counter.NAT64_RESTORED: "NAT64 replies translated back to IPv6",
    Counter.NEIGHBOR_RELAY: "Packets for another node's NAT port range, sent to packet_relay",
    Counter.ECHO_TO_NAT_IP: "ICMP echo requests to a NAT IP, sent to packet_relay to be answered",
}

N_REASONS = Counter.NO_HEADROOM + 1
_FLAG_DST_NAT = np.uint8(FlowFlag.DST_NAT)
_FLAG_SRC_NAT = np.uint8(FlowFlag.SRC_NAT)
_FLAG_SRC_NAT64 = np.uint8(FlowFlag.SRC_NAT64)
_FLAG_FWD = np.uint8(FlowFlag.DST_NAT_FWD)
_S16, _M16 = np.uint64(16), np.uint64(0xFFFF)
_ICMP = icmp.PROTO
_UNREACHABLE = int(icmp.IcmpType.DEST_UNREACHABLE)
_NETWORK_LOCAL = int(NatType.NETWORK_LOCAL)


class Dnat(Node):
    """Destination NAT; see the module docstring."""

    name = "dnat"
    NEXT_NODES = {
        Next.IPV4_LOOKUP: "ipv4_lookup",
        Next.IPV6_LOOKUP: "ipv6_lookup",
        Next.PACKET_RELAY: "packet_relay",
    }
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, flows: FlowTable, nat: NatView) -> None:
        super().__init__()
        self.flows = flows
        self.nat = nat

    def process(self, batch: Batch) -> npt.NDArray[np.intp] | int:
        flows = self.flows
        n = len(batch)
        f = batch.flow
        flags = flows.flags[f]
        direction = batch.flow_dir
        v4 = batch.l3 == L3.IPV4
        orig = direction == Dir.ORIGINAL
        reply = ~orig
        nat_type = flows.nat_type[f]
        is_icmp = (batch.proto == icmp.PROTO) | (batch.proto == icmpv6.PROTO)
        echo_request = is_icmp & (
            (batch.sport == icmp.IcmpType.ECHO_REQUEST) | (batch.sport == icmpv6.Icmpv6Type.ECHO_REQUEST)
        )
        first = (flags == 0) & orig & v4
        fwd = ~first & ((flags & _FLAG_FWD) != 0)
        echo_again = ~first & ~fwd & (nat_type == NatType.NAT_AS_TARGET) & echo_request
        dst_nat = ~first & ~fwd & ~echo_again & ((flags & _FLAG_DST_NAT) != 0) & orig
        src_nat = ~first & ~fwd & ~echo_again & ((flags & _FLAG_SRC_NAT) != 0) & reply
        nat64 = ~first & ~fwd & ~echo_again & ((flags & _FLAG_SRC_NAT64) != 0) & reply
        if not (
            first.any() or fwd.any() or echo_again.any() or dst_nat.any() or src_nat.any() or nat64.any()
        ):
            if v4.all():
                return Next.IPV4_LOOKUP
            return np.where(v4, Next.IPV4_LOOKUP, Next.IPV6_LOOKUP).astype(np.intp)

        reason = np.zeros(n, dtype=np.int64)
        relay = fwd | echo_again
        if first.any():
            relay |= self._first_packets(batch, np.flatnonzero(first), reason)
        if dst_nat.any():
            rows = np.flatnonzero(dst_nat)
            vm_ip = flows.keys[2 * f[rows] + 1, W_SRC_LO]  # the reply key's source: the VM
            self._set_dst(batch, rows, vm_ip.astype(np.uint32), None)
            self.count(Counter.VIP_DNAT, len(rows))
        if src_nat.any():
            self._restore_nat(batch, np.flatnonzero(src_nat), reason)
        if nat64.any():
            self._restore_nat64(batch, np.flatnonzero(nat64), reason)
        self.count(Counter.NEIGHBOR_RELAY, int(np.count_nonzero(fwd)))
        self.count(Counter.ECHO_TO_NAT_IP, int(np.count_nonzero(echo_again)))
        self.counters[:N_REASONS] += np.bincount(reason, minlength=N_REASONS + 1)[1:].astype(np.uint64)
        v4 = batch.l3 == L3.IPV4  # NAT64 replies are IPv6 now
        return np.select(
            [reason > 0, relay, v4], [Next.DROP, Next.PACKET_RELAY, Next.IPV4_LOOKUP], Next.IPV6_LOOKUP
        ).astype(np.intp)

    # --- first packets -----------------------------------------------------------------------------

    def _first_packets(
        self, batch: Batch, rows: npt.NDArray[np.intp], reason: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """VIP translation, NAT-IP echo and neighbour relay for new flows; returns the relay mask."""
        flows, nat = self.flows, self.nat
        nat.refresh()
        relay = np.zeros(len(batch), dtype=bool)
        entry = nat.dnat(batch.vni[rows], batch.dst_lo[rows])
        hit = entry >= 0
        if not hit.any():
            return relay
        rows, entry = rows[hit], entry[hit]
        f = batch.flow[rows]
        target = nat.dnat_ip[entry]
        vip = target != 0
        # a VIP: translate, and expect replies from the VM
        if vip.any():
            r, fv, t = rows[vip], f[vip], target[vip]
            new_reply = flows.keys[2 * fv + 1].copy()
            new_reply[:, W_SRC_LO] = t
            ok = flows.rekey_reply(fv, new_reply)
            reason[r[~ok]] = Counter.REPLY_KEY_TAKEN + 1
            r, fv, t = r[ok], fv[ok], t[ok]
            flows.flags[fv] |= _FLAG_DST_NAT
            self._set_dst(batch, r, t, None)
            self.count(Counter.VIP_DNAT, len(r))
        # a NAT IP: answer pings, relay a neighbour's ports, drop the rest
        nat_ip = ~vip
        if nat_ip.any():
            r, fn = rows[nat_ip], f[nat_ip]
            is_echo = (batch.proto[r] == icmp.PROTO) & (batch.sport[r] == icmp.IcmpType.ECHO_REQUEST)
            flows.nat_type[fn[is_echo]] = NatType.NAT_AS_TARGET
            relay[r[is_echo]] = True
            self.count(Counter.ECHO_TO_NAT_IP, int(np.count_nonzero(is_echo)))
            r, fn = r[~is_echo], fn[~is_echo]
            neighbor = nat.neighbor(batch.vni[r], batch.dst_lo[r], batch.dport[r])
            found = neighbor >= 0
            nf, nn = fn[found], neighbor[found]
            flows.nat_type[nf] = NatType.NETWORK_NEIGH
            flows.flags[nf] |= _FLAG_FWD
            flows.underlay_hi[nf] = nat.nn_ul_hi[nn]
            flows.underlay_lo[nf] = nat.nn_ul_lo[nn]
            relay[r[found]] = True
            self.count(Counter.NEIGHBOR_RELAY, len(nf))
            reason[r[~found]] = Counter.PREMATURE + 1
            # a dropped premature flow must not linger: its key is the reply key a NAT flow to that
            # peer will want (dpservice keeps it and overwrites the key later)
            flows.remove(fn[~found])
        return relay

    # --- rewrites ----------------------------------------------------------------------------------

    @staticmethod
    def _set_dst(
        batch: Batch,
        rows: npt.NDArray[np.intp],
        dst: npt.NDArray[np.uint32],
        port: npt.NDArray[np.uint16] | None,
    ) -> None:
        """New IPv4 destination (and TCP/UDP destination port or ICMP identifier) for ``rows``."""
        sub = batch.part(rows)
        hdr = sub.read(ETHER_LEN, rewrite.ROW_V4)
        rewrite.nat_ipv4(hdr, sub.proto, dst=dst, dport=port, icmp_id=port)
        sub.write(ETHER_LEN, hdr)
        batch.dst_lo[rows] = dst
        if port is not None:
            batch.dport[rows] = port

    def _restore_nat(self, batch: Batch, rows: npt.NDArray[np.intp], reason: npt.NDArray[np.int64]) -> None:
        """Replies of SNAT/VIP flows: destination := the VM, and its port for NAT-gateway flows."""
        flows = self.flows
        f = batch.flow[rows]
        orig = flows.keys[2 * f]  # the VM's address and port are the original key's source
        vm_ip = orig[:, W_SRC_LO].astype(np.uint32)
        ports_word = orig[:, W_PORTS]
        vm_sport = ((ports_word >> _S16) & _M16).astype(np.uint16)
        gateway = flows.nat_type[f] == _NETWORK_LOCAL
        is_icmp = batch.proto[rows] == _ICMP
        plain_rows = True
        if is_icmp.any():
            error = is_icmp & (batch.sport[rows] == _UNREACHABLE)
            # TCP/UDP: the VM's source port; ICMP echo: its identifier (the original key's dport)
            port = np.where(is_icmp, (ports_word & _M16).astype(np.uint16), vm_sport)
            plain = ~(gateway & error)
            plain_rows = bool(plain.all())
        else:
            port = vm_sport
        if plain_rows:
            r, vm_r = rows, vm_ip
            new_port = port if gateway.all() else np.where(gateway, port, batch.dport[r]).astype(np.uint16)
        else:
            r, vm_r = rows[plain], vm_ip[plain]
            new_port = np.where(gateway[plain], port[plain], batch.dport[r]).astype(np.uint16)
        self._set_dst(batch, r, vm_r, new_port)
        self.count(Counter.NAT_RESTORED, len(r))
        if plain_rows:
            return
        for i in np.flatnonzero(~plain).tolist():  # ICMP errors about NAT-gateway flows: rare, per packet
            row = int(rows[i])
            if self._restore_icmp_error(batch, row, int(vm_ip[i]), int(vm_sport[i])):
                batch.dst_lo[row] = vm_ip[i]
                self.count(Counter.NAT_RESTORED)
            else:
                reason[row] = Counter.BAD_ICMP_ERROR + 1

    @staticmethod
    def _restore_icmp_error(batch: Batch, row: int, vm_ip: int, vm_port: int) -> bool:
        """An ICMP error to the NAT IP about a NATed flow, made about the VM's own packet.

        Outer destination and the embedded source (address and TCP/UDP port) become the VM's;
        the outer IPv4, the embedded IPv4 and the ICMP checksums are updated (RFC 1624), and the
        embedded transport checksum too when the error carries that far.
        """
        frame = batch.frame(row)
        if len(frame) < ERROR_AT + IPV4_LEN + 4 or frame[ERROR_AT] != 0x45:
            return False
        rows = frame[ETHER_LEN:].copy()[None, :]
        embedded_proto = int(rows[0, IPV4_LEN + icmp.ICMP_LEN + 9])
        if embedded_proto not in (tcp.PROTO, udp.PROTO):
            return False
        ip = np.array([vm_ip], np.uint32)
        port = np.array([vm_port], np.uint16)
        # the embedded header: its source address and port go back to the VM's
        e = IPV4_LEN + icmp.ICMP_LEN
        emb = rows[:, e:]
        old_src = rewrite.get32(emb, 12)
        old_port = rewrite.get16(emb, IPV4_LEN)
        ip_delta = rewrite.addr32_delta(old_src, ip)
        old_ip_csum = rewrite.get16(emb, 10)
        rewrite.put32(emb, 12, ip)
        rewrite.put16(emb, 10, rewrite.apply_delta(old_ip_csum, ip_delta))
        rewrite.put16(emb, IPV4_LEN, port)
        l4_delta = ip_delta + rewrite.word_delta(old_port, port)
        csum_at = IPV4_LEN + (tcp.OFF_CHECKSUM if embedded_proto == tcp.PROTO else udp.OFF_CHECKSUM)
        if emb.shape[1] >= csum_at + 2:
            old = rewrite.get16(emb, csum_at)
            if not (embedded_proto == udp.PROTO and old[0] == 0):
                rewrite.put16(emb, csum_at, rewrite.apply_delta(old, l4_delta))
        rows[:, e:] = emb
        # the ICMP checksum covers the embedded bytes: recompute it over the message
        rows[0, IPV4_LEN + 2 : IPV4_LEN + 4] = 0
        total = int(rewrite.get16(rows, 2)[0])
        message = bytes(rows[0, IPV4_LEN:total])
        rows[0, IPV4_LEN + 2 : IPV4_LEN + 4] = np.frombuffer(checksum(message).to_bytes(2, "big"), np.uint8)
        # the outer destination
        rewrite.nat_ipv4(rows[:, : rewrite.ROW_V4], np.array([icmp.PROTO], np.uint8), dst=ip)
        frame[ETHER_LEN:] = rows[0]
        return True

    def _restore_nat64(self, batch: Batch, rows: npt.NDArray[np.intp], reason: npt.NDArray[np.int64]) -> None:
        """Replies of NAT64 flows: back to IPv6, the VM's port or identifier restored."""
        flows = self.flows
        f = batch.flow[rows]
        orig = KeyFields.of(flows.keys[2 * f])
        is_icmp = batch.proto[rows] == icmp.PROTO
        port = np.where(is_icmp, orig.dport, orig.sport).astype(np.uint16)
        src_lo = np.uint64(NAT64_LO) | batch.src_lo[rows]
        src_hi = np.full(len(rows), NAT64_HI, dtype=np.uint64)
        sub = batch.part(rows)
        hdr = sub.read(ETHER_LEN, rewrite.ROW_V4)
        out, ok = rewrite.to_ipv6(
            hdr, src6_hi=src_hi, src6_lo=src_lo, dst6_hi=orig.src_hi, dst6_lo=orig.src_lo, dport=port
        )
        ok &= batch.off[rows] >= GROWTH
        reason[rows[~ok & (batch.off[rows] < GROWTH)]] = Counter.NO_HEADROOM + 1
        reason[rows[~ok & (batch.off[rows] >= GROWTH)]] = Counter.NAT64_UNTRANSLATABLE + 1
        r, out = rows[ok], out[ok]
        if len(r) == 0:
            return
        sub = batch.part(r)
        ether = sub.read(0, 12)
        batch.off[r] -= GROWTH
        batch.length[r] += GROWTH
        sub = batch.part(r)
        head = np.concatenate([ether, np.broadcast_to(_V6_TYPE, (len(r), 2)), out], axis=1)
        sub.write(0, head)
        proto = batch.proto[r]
        batch.l3[r] = L3.IPV6
        batch.proto[r] = np.where(proto == icmp.PROTO, icmpv6.PROTO, proto)
        icmp_rows = proto == icmp.PROTO
        batch.sport[r] = np.where(icmp_rows, out[:, IPV6_LEN], batch.sport[r])
        batch.dport[r] = port[ok]
        batch.src_hi[r], batch.src_lo[r] = src_hi[ok], src_lo[ok]
        batch.dst_hi[r], batch.dst_lo[r] = orig.src_hi[ok], orig.src_lo[ok]
        zero_udp = (proto == udp.PROTO) & (rewrite.get16(out, IPV6_LEN + udp.OFF_CHECKSUM) == 0)
        for row in r[zero_udp].tolist():  # UDP without checksum over IPv4: IPv6 needs one
            _fill_udp6_checksum(batch, int(row))
        self.count(Counter.NAT64_RESTORED, len(r))


def _fill_udp6_checksum(batch: Batch, row: int) -> None:
    frame = batch.frame(row)
    ip = bytes(frame[ETHER_LEN : ETHER_LEN + IPV6_LEN])
    segment = bytearray(frame[ETHER_LEN + IPV6_LEN :])
    segment[udp.OFF_CHECKSUM : udp.OFF_CHECKSUM + 2] = b"\x00\x00"
    value = (
        checksum(bytes(segment), pseudo_header_sum(ip[8:24], ip[24:40], udp.PROTO, len(segment))) or 0xFFFF
    )
    frame[ETHER_LEN + IPV6_LEN + udp.OFF_CHECKSUM : ETHER_LEN + IPV6_LEN + udp.OFF_CHECKSUM + 2] = (
        np.frombuffer(value.to_bytes(2, "big"), np.uint8)
    )
