"""NAT as the datapath reads it, and the NAT gateway's port allocation (DPSERVICE.md §4.7, §4.8).

:class:`NatView` compiles ``AgentState``'s SNAT/DNAT tables, neighbour NATs and /32 LB prefixes
into sorted arrays, so ``conntrack``, ``dnat`` and ``snat`` look a whole batch up at once; it
rebuilds when the state's version changes.

:class:`NatPorts` hands out NAT ports exactly as dpservice does, because the port a flow gets is
visible to the peer (and asserted by dpservice's tests):

* the *portmap* key is ``(VNI, VM source address, VM source port or ICMP identifier)``; a key that
  already owns a port reuses it for every new destination (endpoint-independent mapping), counting
  the flows that share it;
* the *port-overload* key ``(NAT IP, NAT port, destination IP, destination port or ICMP
  identifier, protocol)`` must be unused: a reused port whose overload key is taken drops the
  packet; a new key tries ``min + (h + p) % (max - min)`` for ``p = 0, 1, …`` and takes the first
  port whose overload key is free (none: drop);
* ``h`` is DPDK's ``rte_jhash`` of the packed 23-byte portmap key ``{u32 vni, 16-byte address
  (IPv4 as a host-order u32 then zeros), u8 is_v6, u16 port}`` with dpservice's seed
  ``0xfee1900d`` (see :func:`portmap_hash`).

Ports go back when a flow that owns one is removed (ageing, purges): :meth:`NatPorts.release` is a
flow-table release hook. The per-interface count of allocations is dpservice's
``/dp_service/nat/used_port_count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.port import PortKind
from kubevpc_agent.protocols import icmp, icmpv6
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, MASK32, jhash_32b_vec
from kubevpc_agent.tables.conntrack import FlowTable, KeyFields, NatType
from kubevpc_agent.tables.model import NAT64_PREFIX, VnfType
from kubevpc_agent.tables.state import AgentState

U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
MISS = -1
NAT64_HI = split(NAT64_PREFIX.network_address)[0]  # 64:ff9b:: upper half
NAT64_LO_MASK = np.uint64(0xFFFFFFFF00000000)  # the /96 covers the upper half of the low word too
NAT64_LO = np.uint64(split(NAT64_PREFIX.network_address)[1])


def _sorted_lookup(keys: U64, wanted: U64) -> I64:
    """Index of each wanted value in the sorted ``keys`` (MISS if absent)."""
    if len(keys) == 0:
        return np.full(len(wanted), MISS, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, MISS).astype(np.int64)


def vni_ip(vni: npt.NDArray[np.integer], ip: npt.NDArray[np.integer]) -> U64:
    """The ``vni << 32 | IPv4`` search key."""
    return (vni.astype(np.uint64) << np.uint64(32)) | (ip.astype(np.uint64) & np.uint64(MASK32))


def is_nat64(hi: U64, lo: U64) -> Bools:
    """Whether IPv6 addresses (hi, lo halves) are in ``64:ff9b::/96``."""
    inside: Bools = (hi == np.uint64(NAT64_HI)) & ((lo & NAT64_LO_MASK) == NAT64_LO)
    return inside


class NatView:
    """VIP/NAT/neighbour-NAT/LB-prefix facts as sorted arrays; see the module docstring.

    Lookups return an entry index or MISS (-1); the value arrays (``snat_vip`` ...) have a zero
    entry at the end, so indexing them with MISS reads zeros and needs no masking.
    """

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._version = -1
        self.refresh()

    def refresh(self) -> None:
        state = self.state
        if state.version == self._version:
            return
        self._version = state.version
        # value arrays carry one zero entry past the end: index MISS (-1) reads "nothing"
        snat = sorted((int(ip) | (vni << 32), e) for (ip, vni), e in state.snat.items())
        self.snat_key = np.array([k for k, _ in snat], dtype=np.uint64)
        self.snat_vip = np.array([int(e.vip or 0) for _, e in snat] + [0], dtype=np.uint32)
        self.snat_nat_ip = np.array(
            [int(e.nat.nat_ip) if e.nat else 0 for _, e in snat] + [0], dtype=np.uint32
        )
        self.snat_min = np.array([e.nat.min_port if e.nat else 0 for _, e in snat] + [0], dtype=np.uint16)
        self.snat_max = np.array([e.nat.max_port if e.nat else 0 for _, e in snat] + [0], dtype=np.uint16)
        dnat = sorted((int(ip) | (vni << 32), int(target or 0)) for (ip, vni), target in state.dnat.items())
        self.dnat_key = np.array([k for k, _ in dnat], dtype=np.uint64)
        self.dnat_ip = np.array([t for _, t in dnat] + [0], dtype=np.uint32)  # 0: a NAT IP (no 1:1 target)
        # per port: the interface's NAT (NAT64 uses it whatever the source address)
        size = max(state.ports, default=-1) + 1
        self.port_nat_ip = np.zeros(size, dtype=np.uint32)
        self.port_nat_min = np.zeros(size, dtype=np.uint16)
        self.port_nat_max = np.zeros(size, dtype=np.uint16)
        self.port_vni = np.zeros(size, dtype=np.uint32)
        for port_id, spec in state.ports.items():
            iface = state.interface_by_port(port_id) if spec.kind is PortKind.VF else None
            if iface is None:
                continue
            self.port_vni[port_id] = iface.vni
            entry = state.snat_of(iface)
            if entry is not None and entry.nat is not None:
                self.port_nat_ip[port_id] = int(entry.nat.nat_ip)
                self.port_nat_min[port_id] = entry.nat.min_port
                self.port_nat_max[port_id] = entry.nat.max_port
        neigh = state.neighbor_nats  # insertion order: the first matching entry wins
        self.nn_ip = np.array([int(n.nat_ip) for n in neigh], dtype=np.uint32)
        self.nn_vni = np.array([n.vni for n in neigh], dtype=np.uint32)
        self.nn_min = np.array([n.min_port for n in neigh], dtype=np.uint16)
        self.nn_max = np.array([n.max_port for n in neigh], dtype=np.uint16)
        self.nn_ul_hi = np.array([split(n.underlay)[0] for n in neigh], dtype=np.uint64)
        self.nn_ul_lo = np.array([split(n.underlay)[1] for n in neigh], dtype=np.uint64)
        lb_prefixes = sorted(
            (e.port_id << 32) | int(e.prefix.network_address)
            for e in state.vnf.values()
            if e.type is VnfType.LB_ALIAS_PFX
            and isinstance(e.prefix, IPv4Network)
            and e.prefix.prefixlen == 32
        )
        self.lb_prefix_key = np.array(lb_prefixes, dtype=np.uint64)

    def snat(self, vni: U32, ip: U64) -> I64:
        """SNAT entry of each (VNI, VM IPv4), or MISS."""
        return _sorted_lookup(self.snat_key, vni_ip(vni, ip))

    def dnat(self, vni: U32, ip: U64) -> I64:
        """DNAT entry of each (VNI, destination IPv4), or MISS."""
        return _sorted_lookup(self.dnat_key, vni_ip(vni, ip))

    def is_lb_prefix(self, port: npt.NDArray[np.int16], ip: U64) -> Bools:
        """Whether each IPv4 is a /32 LB prefix of that port (dpservice ``dp_vnf_lbprefix_exists``)."""
        key = (port.astype(np.uint64) << np.uint64(32)) | (ip & np.uint64(MASK32))
        found: Bools = _sorted_lookup(self.lb_prefix_key, key) != MISS
        return found

    def neighbor(self, vni: U32, ip: U64, port: U16) -> I64:
        """First neighbour NAT whose (IP, VNI) matches and whose ``[min, max)`` holds the port, or MISS."""
        n = len(self.nn_ip)
        if n == 0 or len(vni) == 0:
            return np.full(len(vni), MISS, dtype=np.int64)
        match = (
            (self.nn_ip[None, :] == ip[:, None].astype(np.uint32))
            & (self.nn_vni[None, :] == vni[:, None])
            & (self.nn_min[None, :] <= port[:, None])
            & (self.nn_max[None, :] > port[:, None])
        )
        first = match.argmax(axis=1)
        return np.where(match.any(axis=1), first, MISS).astype(np.int64)


def portmap_words(vni: U32, src_hi: U64, src_lo: U64, is_v6: Bools, port: U16) -> U32:
    """The packed 23-byte portmap keys as six little-endian words (the 24th byte is 0)."""
    words = np.zeros((len(vni), 6), dtype=np.uint32)
    m32 = np.uint64(MASK32)
    s32 = np.uint64(32)
    words[:, 0] = vni
    words[:, 1] = np.where(is_v6, ((src_hi >> s32) & m32).astype(np.uint32).byteswap(), src_lo & m32)
    words[:, 2] = np.where(is_v6, (src_hi & m32).astype(np.uint32).byteswap(), 0)
    words[:, 3] = np.where(is_v6, ((src_lo >> s32) & m32).astype(np.uint32).byteswap(), 0)
    words[:, 4] = np.where(is_v6, (src_lo & m32).astype(np.uint32).byteswap(), 0)
    words[:, 5] = is_v6.astype(np.uint32) | (port.astype(np.uint32) << np.uint32(8))
    return words


def portmap_hash(vni: U32, src_hi: U64, src_lo: U64, is_v6: Bools, port: U16) -> U32:
    """``rte_jhash(portmap_key, 23, 0xfee1900d)`` for every key.

    ``rte_jhash`` over 23 bytes mixes the same words as ``rte_jhash_32b`` over the 24 zero-padded
    bytes (the tail masks drop only the zero byte), and the two start from ``length + initval``:
    23 + seed versus 24 + seed, so the word hash with ``seed - 1`` is the byte hash with ``seed``.
    """
    words = portmap_words(vni, src_hi, src_lo, is_v6, port)
    return jhash_32b_vec(words, (DPSERVICE_INITVAL - 1) & MASK32)


@dataclass(frozen=True)
class NatRequest:
    """New NAT flows of one batch, one row each (IPv4 addresses as host integers)."""

    port: npt.NDArray[np.int16]  # the VM's port (used-port accounting)
    vni: U32
    src_hi: U64  # VM source address (IPv6 for NAT64)
    src_lo: U64
    is_v6: Bools
    src_port: U16  # VM source port, or ICMP identifier
    dst_ip: U32  # IPv4 destination (NAT64: the embedded address)
    dst_port: U16  # destination port, or ICMP identifier
    proto: npt.NDArray[np.uint8]  # as the VM sent it (ICMPv6 for NAT64 pings)
    nat_ip: U32
    min_port: U16
    max_port: U16

    def take(self, rows: npt.NDArray[np.intp] | Bools) -> NatRequest:
        """The request rows at ``rows``."""
        return NatRequest(**{name: getattr(self, name)[rows] for name in NatRequest.__dataclass_fields__})


class NatPorts:
    """The NAT gateway's port allocation state; see the module docstring."""

    def __init__(self) -> None:
        self.portmap: dict[tuple[int, int, int], list[int]] = {}  # key -> [nat_port, flows]
        self.overload: set[int] = set()
        self.used_by_port: dict[int, int] = {}  # VM port -> allocations in use
        self.full_drops = 0  # allocations refused: no free port in the range
        self.taken_drops = 0  # allocations refused: the reused port's overload key is taken

    @staticmethod
    def _keys(req: NatRequest) -> tuple[list[tuple[int, int, int]], list[int]]:
        """Per row: the portmap key, and the port-overload key without its port (``| port << 56``).

        Portmap key: ``(address high, address low, vni << 24 | is_v6 << 16 | port)``; port-overload
        key: ``nat_ip << 72 | nat_port << 56 | destination << 24 | destination port << 8 | protocol``.
        Both are built column-wise; the per-row loop only combines them.
        """
        meta = (req.vni.astype(np.uint64) << np.uint64(24)) | (req.is_v6.astype(np.uint64) << np.uint64(16))
        meta |= req.src_port.astype(np.uint64)
        pkeys = list(zip(req.src_hi.tolist(), req.src_lo.tolist(), meta.tolist(), strict=True))
        low = (req.dst_ip.astype(np.uint64) << np.uint64(24)) | (
            req.dst_port.astype(np.uint64) << np.uint64(8)
        )
        low |= req.proto.astype(np.uint64)
        bases = [(nat << 72) | rest for nat, rest in zip(req.nat_ip.tolist(), low.tolist(), strict=True)]
        return pkeys, bases

    def allocate(self, req: NatRequest) -> I64:
        """A NAT port for every row (MISS where none can be given); rows are served in order."""
        n = len(req.vni)
        if n == 0:
            return np.full(0, MISS, dtype=np.int64)
        pkeys, bases = self._keys(req)
        h = portmap_hash(req.vni, req.src_hi, req.src_lo, req.is_v6, req.src_port).tolist()
        lows, highs = req.min_port.tolist(), req.max_port.tolist()
        portmap, overload = self.portmap, self.overload
        out = [MISS] * n
        for i, pkey in enumerate(pkeys):
            base = bases[i]
            entry = portmap.get(pkey)
            if entry is not None:  # this VM port has its NAT port: reuse it for the new destination
                key = base | (entry[0] << 56)
                if key in overload:
                    self.taken_drops += 1
                    continue
                overload.add(key)
                entry[1] += 1
                out[i] = entry[0]
                continue
            lo, span, hv = lows[i], highs[i] - lows[i], h[i]
            for p in range(span):
                candidate = lo + (hv + p) % span
                key = base | (candidate << 56)
                if key not in overload:
                    overload.add(key)
                    portmap[pkey] = [candidate, 1]
                    out[i] = candidate
                    break
            else:
                self.full_drops += 1
        result = np.array(out, dtype=np.int64)
        self._count(req.port[result != MISS], +1)
        return result

    def _count(self, vm_ports: npt.NDArray[np.int16], sign: int) -> None:
        """Add ``sign`` per row to the per-port allocation counts (dropping ports that reach 0)."""
        if len(vm_ports) == 0:
            return
        ports, counts = np.unique(vm_ports, return_counts=True)
        used = self.used_by_port
        for port, count in zip(ports.tolist(), counts.tolist(), strict=True):
            left = used.get(port, 0) + sign * count
            if left > 0:
                used[port] = left
            else:
                used.pop(port, None)

    def release(self, table: FlowTable, flows: I64) -> None:
        """Flow-table release hook: give back the ports of NAT-gateway flows being removed."""
        own = flows[table.nat_type[flows] == NatType.NETWORK_LOCAL]
        if len(own) == 0:
            return
        orig = KeyFields.of(table.keys[2 * own])
        reply = KeyFields.of(table.keys[2 * own + 1])
        v6 = orig.l3 == 2  # L3.IPV6: a NAT64 flow, its IPv4 destination is the address's last 32 bits
        is_icmp = (orig.proto == icmp.PROTO) | (orig.proto == icmpv6.PROTO)
        req = NatRequest(
            port=table.created_port[own],
            vni=table.nf_vni[own],
            src_hi=orig.src_hi,
            src_lo=orig.src_lo,
            is_v6=v6,
            src_port=np.where(is_icmp, orig.dport, orig.sport).astype(np.uint16),
            dst_ip=(orig.dst_lo & np.uint64(MASK32)).astype(np.uint32),
            dst_port=orig.dport,
            proto=orig.proto,
            nat_ip=reply.dst_lo.astype(np.uint32),
            min_port=np.zeros(len(own), np.uint16),
            max_port=np.zeros(len(own), np.uint16),
        )
        self.free(req, reply.dport.astype(np.int64))

    def free(self, req: NatRequest, nat_port: I64) -> None:
        """Undo :meth:`allocate` for rows of ``req`` that got ``nat_port``."""
        pkeys, bases = self._keys(req)
        portmap, overload = self.portmap, self.overload
        for pkey, base, port in zip(pkeys, bases, nat_port.tolist(), strict=True):
            overload.discard(base | (port << 56))
            entry = portmap.get(pkey)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del portmap[pkey]
        self._count(req.port, -1)
