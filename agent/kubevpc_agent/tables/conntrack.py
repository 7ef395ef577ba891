"""The connection-tracking flow table: both keys of every flow, per-flow state, vectorized lookups.

dpservice keeps one ``rte_hash`` of 44-byte flow keys whose values point at a ``flow_value``; each
flow is inserted twice, once per direction (DPSERVICE.md §4.12, ``include/dp_flow.h``). This is the
same table as numpy arrays, so a whole batch is looked up with a handful of column operations and
only the first packet of a flow pays for an insertion.

Keys. A key is six ``uint64`` words (:func:`make_keys`), the batch columns as they are::

    0 src_hi   1 src_lo   2 dst_hi   3 dst_lo           (IPv4: hi = 0, lo = the address)
    4 vni << 32 | sport << 16 | dport                   (ICMP: sport = type, dport = identifier)
    5 l3 << 16 | vnf_type << 8 | proto                  (l3: graph.batch.L3, vnf_type: the key's)

which holds exactly dpservice's key fields. ``keys[2 * flow + dir]`` is the key of direction
``dir`` (:class:`Dir`) of ``flow``; the reply key starts as :func:`invert` of the original one and
NAT rewrites it (:meth:`FlowTable.rekey_reply`), as ``snat``/``dnat`` do in dpservice.

Per-flow state (arrays indexed by flow id, what ``batch.flow`` holds):

=================  ======  ===========================================================================
``flags``          u8      :class:`FlowFlag` bits (dpservice ``flow_flags``); 0 on the first packet
``nat_type``       u8      :class:`NatType` (dpservice ``nf_info.nat_type``)
``tcp_state``      u8      :class:`TcpState`; ``first_syn_dir`` the direction of the opening SYN
``last_seen``      f64     monotonic seconds of the last packet
``timeout``        u32     seconds of idleness after which the flow expires
``created_port``   i16     rx port of the first packet (flows of a deleted interface are purged by it)
``nf_vni``         u32     VNI the NAT port was allocated in
``underlay_hi/lo`` u64     relay target: neighbour-NAT underlay or LB target (``nf_info.underlay_dst``)
``lb_target``      i16     load balancer: index of the chosen target in its sorted target list, -1
``fw_action``      u8[2]   firewall verdict per direction (:class:`FwAction`), cached once per flow
``hash``           u32     dpservice's conntrack hash of the original key (Maglev / WCMP input)
=================  ======  ===========================================================================

The table. Open addressing with linear probing over ``slots`` (key index or :data:`EMPTY` /
:data:`TOMBSTONE`), sized to a power of two ≥ 4 keys per flow so the load stays ≤ 0.5; probes never
wrap (a tail of spare slots takes the last cluster), which lets :meth:`FlowTable.rebuild` place
every key with one sort. Deletions leave tombstones that insertions reuse; when live keys plus
tombstones pass 3/4 of the slots the table is rebuilt. Capacity is a hard bound: when no flow id is
free, new flows are refused (the caller drops and counts them) and existing ones are untouched.

Removal runs the ``release_hooks`` first (NAT frees its ports there), then clears both keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np
import numpy.typing as npt

from kubevpc_agent.protocols import icmp, icmpv6, tcp, udp
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, jhash_32b_vec
from kubevpc_agent.tables.flow_key import key_words

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I16 = npt.NDArray[np.int16]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Keys = npt.NDArray[np.uint64]  # (n, KEY_WORDS)

KEY_WORDS = 6
W_SRC_HI, W_SRC_LO, W_DST_HI, W_DST_LO, W_PORTS, W_META = range(KEY_WORDS)
EMPTY = -1  # slot never used since the last rebuild: a probe stops here
TOMBSTONE = -2  # slot of a deleted key: a probe goes on, an insertion may take it
NO_FLOW = -1

DEFAULT_TIMEOUT = 30  # seconds (``--flow-timeout``)
ESTABLISHED_TCP_TIMEOUT = 86_400  # seconds, dpservice's DP_FLOW_TCP_EXTENDED_TIMEOUT
_MAX_LOAD = 0.75  # live keys + tombstones per slot that triggers a rebuild

_M16 = np.uint64(0xFFFF)
_M8 = np.uint64(0xFF)
_S8, _S16, _S32, _S40 = np.uint64(8), np.uint64(16), np.uint64(32), np.uint64(40)
_K1, _K2, _K3 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9)


class Dir(IntEnum):
    """Direction of a packet within its flow (``batch.flow_dir``)."""

    ORIGINAL = 0
    REPLY = 1


class PacketMark(IntFlag):
    """High bits of the batch's ``nat`` column: per-packet facts later nodes act on.

    (The low bits carry ``lb``'s recirculation mark, ``NatType.LB_RECIRC``, compared exactly.)
    """

    SOUTH_NORTH = 0x80  # routed by a default route (set by the lookups; enables SNAT and NAT64)


class FlowFlag(IntFlag):
    """What network functions did to a flow; dpservice's ``DP_FLOW_FLAG_*`` bits."""

    NONE = 0
    SRC_NAT = 0x01  # VIP or NAT gateway source translation (reply key rewritten)
    DST_NAT = 0x02  # VIP destination translation (reply key rewritten)
    DST_LB = 0x04  # load balanced
    FIREWALL = 0x08  # fw_action holds the verdict
    SRC_NAT64 = 0x10  # IPv6 → IPv4 translation
    DEFAULT = 0x20  # no network function (dpservice sets it at tx)
    DST_NAT_FWD = 0x40  # relayed to a neighbour NAT

    @classmethod
    def network_functions(cls) -> FlowFlag:
        return cls.SRC_NAT64 | cls.SRC_NAT | cls.DST_NAT | cls.DST_LB | cls.DST_NAT_FWD


class NatType(IntEnum):
    """dpservice's ``enum dp_flow_nat_type``: which translation or relay a flow is."""

    NONE = 0
    VIP = 1
    NETWORK_LOCAL = 2  # NAT gateway slice of a local VM: owns a NAT port
    NETWORK_NEIGH = 3  # relayed to a neighbour NAT node: reply direction refused
    NAT_AS_TARGET = 4  # ICMP echo to a NAT IP, answered
    LB_LOCAL_NEIGH_TRAFFIC = 5
    LB_RECIRC = 6
    LB_FORWARD = 7  # relayed to a remote LB target: reply direction refused


RELAYED = (NatType.NETWORK_NEIGH, NatType.LB_FORWARD)


class TcpState(IntEnum):
    """dpservice's TCP tracking states (``enum dp_flow_tcp_state``)."""

    NONE = 0
    NEW_SYN = 1
    NEW_SYNACK = 2
    ESTABLISHED = 3
    FINWAIT = 4
    RST_FIN = 5


class FwAction(IntEnum):
    """Cached firewall verdict of one direction of a flow."""

    UNKNOWN = 0  # not evaluated yet
    ACCEPT = 1
    DROP = 2


# --- keys ------------------------------------------------------------------------------------


def make_keys(
    *,
    l3: U8,
    proto: U8,
    src_hi: U64,
    src_lo: U64,
    dst_hi: U64,
    dst_lo: U64,
    sport: U16,
    dport: U16,
    vni: U32,
    vnf_type: U8,
) -> Keys:
    """``(n, 6)`` keys from columns (see the module docstring for the layout)."""
    keys = np.empty((len(l3), KEY_WORDS), dtype=np.uint64)
    keys[:, W_SRC_HI] = src_hi
    keys[:, W_SRC_LO] = src_lo
    keys[:, W_DST_HI] = dst_hi
    keys[:, W_DST_LO] = dst_lo
    keys[:, W_PORTS] = (
        (vni.astype(np.uint64) << _S32) | (sport.astype(np.uint64) << _S16) | dport.astype(np.uint64)
    )
    keys[:, W_META] = (l3.astype(np.uint64) << _S16) | (vnf_type.astype(np.uint64) << _S8) | proto
    return keys


@dataclass(frozen=True)
class KeyFields:
    """The columns of ``(n, 6)`` keys, decoded."""

    l3: U8
    proto: U8
    vnf_type: U8
    vni: U32
    sport: U16
    dport: U16
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64

    @staticmethod
    def of(keys: Keys) -> KeyFields:
        ports, meta = keys[:, W_PORTS], keys[:, W_META]
        return KeyFields(
            l3=((meta >> _S16) & _M8).astype(np.uint8),
            proto=(meta & _M8).astype(np.uint8),
            vnf_type=((meta >> _S8) & _M8).astype(np.uint8),
            vni=(ports >> _S32).astype(np.uint32),
            sport=((ports >> _S16) & _M16).astype(np.uint16),
            dport=(ports & _M16).astype(np.uint16),
            src_hi=keys[:, W_SRC_HI],
            src_lo=keys[:, W_SRC_LO],
            dst_hi=keys[:, W_DST_HI],
            dst_lo=keys[:, W_DST_LO],
        )


# ICMP type of the reply key: echo request <-> reply, every other type 0 (dp_invert_flow_key)
_ICMP_INVERSE = np.zeros(256, dtype=np.uint64)
_ICMP_INVERSE[icmp.IcmpType.ECHO_REQUEST] = icmp.IcmpType.ECHO_REPLY
_ICMP_INVERSE[icmp.IcmpType.ECHO_REPLY] = icmp.IcmpType.ECHO_REQUEST
_ICMPV6_INVERSE = np.zeros(256, dtype=np.uint64)
_ICMPV6_INVERSE[icmpv6.Icmpv6Type.ECHO_REQUEST] = icmpv6.Icmpv6Type.ECHO_REPLY
_ICMPV6_INVERSE[icmpv6.Icmpv6Type.ECHO_REPLY] = icmpv6.Icmpv6Type.ECHO_REQUEST


def invert(keys: Keys) -> Keys:
    """The reply keys of ``keys`` (dpservice ``dp_invert_flow_key``).

    Addresses swap; TCP/UDP ports swap; ICMP/ICMPv6 keep the identifier and map echo request ↔
    reply (any other type becomes 0); other protocols get ports 0.
    """
    out = np.empty_like(keys)
    out[:, W_SRC_HI] = keys[:, W_DST_HI]
    out[:, W_SRC_LO] = keys[:, W_DST_LO]
    out[:, W_DST_HI] = keys[:, W_SRC_HI]
    out[:, W_DST_LO] = keys[:, W_SRC_LO]
    out[:, W_META] = keys[:, W_META]
    ports = keys[:, W_PORTS]
    proto = keys[:, W_META] & _M8
    vni = ports & ~np.uint64(0xFFFFFFFF)
    sport = (ports >> _S16) & _M16
    dport = ports & _M16
    swapped = vni | (dport << _S16) | sport
    icmp_type = np.where(
        proto == icmp.PROTO,
        _ICMP_INVERSE[sport.astype(np.intp) & 0xFF],
        _ICMPV6_INVERSE[sport.astype(np.intp) & 0xFF],
    )
    echo = vni | (icmp_type << _S16) | dport
    is_ports = (proto == tcp.PROTO) | (proto == udp.PROTO)
    is_icmp = (proto == icmp.PROTO) | (proto == icmpv6.PROTO)
    out[:, W_PORTS] = np.where(is_ports, swapped, np.where(is_icmp, echo, vni))
    return out


def dpservice_hash(keys: Keys) -> U32:
    """dpservice's conntrack hash of each key: ``rte_jhash_32b`` of its packed 44-byte ``flow_key``.

    Maglev (``lb``) and WCMP use this value, so it has to be dpservice's bit for bit
    (``tables/flow_key.py`` documents the packed layout).
    """
    f = KeyFields.of(keys)
    words = key_words(
        l3=f.l3, proto=f.proto, src_hi=f.src_hi, src_lo=f.src_lo, dst_hi=f.dst_hi, dst_lo=f.dst_lo,
        sport=f.sport, dport=f.dport, vni=f.vni, vnf_type=f.vnf_type,
    )  # fmt: skip
    return jhash_32b_vec(words, DPSERVICE_INITVAL)


def slot_hash(words: Sequence[U64]) -> U64:
    """Table placement hash of keys given as their six word columns (contiguous columns are faster).

    A cheap multiply-xor mix, not dpservice's hash (that one is :func:`dpservice_hash`).
    """
    w0, w1, w2, w3, w4, w5 = words
    h = w0 ^ w1
    h *= _K1
    t = w2 ^ w3
    t *= _K2
    h ^= t
    t = w5 << _S40
    t ^= w4
    t *= _K3
    h ^= t
    h ^= h >> _S32
    return h


def _slot_hash(keys: Keys) -> U64:
    return slot_hash([keys[:, i] for i in range(KEY_WORDS)])


def _rows(keys: Keys) -> npt.NDArray[np.void]:
    """One opaque value per key (for ``np.unique`` over rows)."""
    return np.ascontiguousarray(keys).view(np.dtype((np.void, 8 * KEY_WORDS))).reshape(-1)


# --- the table -------------------------------------------------------------------------------


@dataclass
class Resolved:
    """What :meth:`FlowTable.resolve` found for each packet of a batch."""

    flow: I64  # flow id, NO_FLOW when refused
    dir: U8  # Dir
    created: Bools  # the packet created its flow
    full: Bools  # refused: no free flow id
    conflict: Bools  # refused: its reply key belongs to another flow


ReleaseHook = Callable[["FlowTable", I64], None]


class FlowTable:
    """Flows and both of their keys; see the module docstring."""

    def __init__(self, capacity: int, flow_timeout: int = DEFAULT_TIMEOUT) -> None:
        if capacity < 1:
            raise ValueError("conntrack capacity must be at least 1 flow")
        self.capacity = capacity
        self.flow_timeout = flow_timeout
        self.keys: Keys = np.zeros((2 * capacity, KEY_WORDS), dtype=np.uint64)
        self.slot_of = np.full(2 * capacity, EMPTY, dtype=np.int64)  # key index -> slot (EMPTY: not in slots)
        self.live = np.zeros(capacity, dtype=bool)
        self.flags = np.zeros(capacity, dtype=np.uint8)
        self.nat_type = np.zeros(capacity, dtype=np.uint8)
        self.tcp_state = np.zeros(capacity, dtype=np.uint8)
        self.first_syn_dir = np.zeros(capacity, dtype=np.uint8)
        self.last_seen = np.zeros(capacity, dtype=np.float64)
        self.timeout = np.zeros(capacity, dtype=np.uint32)
        self.created_port = np.zeros(capacity, dtype=np.int16)
        self.nf_vni = np.zeros(capacity, dtype=np.uint32)
        self.underlay_hi = np.zeros(capacity, dtype=np.uint64)
        self.underlay_lo = np.zeros(capacity, dtype=np.uint64)
        self.lb_target = np.full(capacity, -1, dtype=np.int16)
        self.fw_action = np.zeros((capacity, 2), dtype=np.uint8)
        self.hash = np.zeros(capacity, dtype=np.uint32)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)  # stack: _free[:_nfree]
        self._nfree = capacity
        self.release_hooks: list[ReleaseHook] = []
        self._size = 1 << max(4, int(4 * capacity - 1).bit_length())  # ≥ 4 slots per flow
        self._mask = np.uint64(self._size - 1)
        self._spare = 64 + self._size // 64  # slots past the end that probes may run into
        self.slots = np.full(self._size + self._spare + 1, EMPTY, dtype=np.int32)  # last: always EMPTY
        self._used = 0  # live keys + tombstones in slots
        self.max_probe = 0  # longest displacement of any key since the last rebuild
        self.rebuilds = 0

    # --- figures ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Live flows."""
        return self.capacity - self._nfree

    @property
    def available(self) -> int:
        return self._nfree

    def key(self, flows: I64, direction: int | U8) -> Keys:
        """Keys of ``flows`` in ``direction`` (a scalar or one per flow)."""
        return self.keys[2 * flows + np.asarray(direction, dtype=np.int64)]

    # --- lookup ------------------------------------------------------------------------------

    def lookup(self, keys: Keys, hashed: U64 | None = None) -> tuple[I64, U8]:
        """Flow and direction of each key; flow :data:`NO_FLOW` where there is none.

        ``hashed``: :func:`slot_hash` of the keys if the caller has it (from contiguous columns).
        """
        n = len(keys)
        entry = np.full(n, -1, dtype=np.int64)
        if n == 0 or self._used == 0:
            return entry, np.zeros(n, dtype=np.uint8)
        pos = ((_slot_hash(keys) if hashed is None else hashed) & self._mask).astype(np.int64)
        slots, stored = self.slots, self.keys
        # first probe for everyone (most keys sit in their home slot); later probes for the rest
        e = slots[pos]
        occupied = e >= 0
        if occupied.all():
            hit = (stored[e] == keys).all(axis=1)
        else:
            hit = occupied.copy()
            hit[occupied] = (stored[e[occupied]] == keys[occupied]).all(axis=1)
        entry = np.where(hit, e, -1).astype(np.int64)
        go_on = ~hit & (e != EMPTY)
        active = np.flatnonzero(go_on)
        pos = pos[active] + 1
        for _ in range(self.max_probe):
            if len(active) == 0:
                break
            e = slots[pos]
            occupied = e >= 0
            hit = occupied.copy()
            if occupied.any():
                hit[occupied] = (stored[e[occupied]] == keys[active[occupied]]).all(axis=1)
            entry[active[hit]] = e[hit]
            go_on = ~hit & (e != EMPTY)
            active = active[go_on]
            pos = pos[go_on] + 1
        found = entry >= 0
        return np.where(found, entry >> 1, NO_FLOW), (entry & 1).astype(np.uint8)

    # --- insertion -----------------------------------------------------------------------------

    def resolve(
        self, keys: Keys, now: float, port: npt.NDArray[np.int16], hashed: U64 | None = None
    ) -> Resolved:
        """Find every packet's flow, creating flows for the first packets of new ones.

        Packets of one new flow in the same batch share the flow the first of them created; a
        packet whose key is the reply key of a flow created earlier in the batch joins that flow
        in the reply direction (dpservice handles packets one by one and gets the same result).
        """
        n = len(keys)
        flow, direction = self.lookup(keys, hashed)
        missing = flow == NO_FLOW
        created = np.zeros(n, dtype=bool)
        if not missing.any():  # established flows only: nothing to create
            return Resolved(flow, direction, created, created, created)
        full = np.zeros(n, dtype=bool)
        conflict = np.zeros(n, dtype=bool)
        pending = np.flatnonzero(missing)
        for _ in range(3):  # deferred packets: at most a few rounds of mutual reply keys
            if len(pending) == 0:
                break
            _, first, inverse = np.unique(_rows(keys[pending]), return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")  # creators in order of first appearance
            creator_rows = pending[first[order]]
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            ck = keys[creator_rows]
            rk = invert(ck)
            deferred = self._batch_conflicts(ck, rk)
            taken, _ = self.lookup(rk)
            clash = (taken != NO_FLOW) & ~deferred
            make = ~deferred & ~clash
            made = np.full(len(ck), NO_FLOW, dtype=np.int64)
            todo = np.flatnonzero(make)
            ids = self._alloc(len(todo))
            made[todo[: len(ids)]] = ids
            if len(ids):
                self._create(
                    ids, ck[todo[: len(ids)]], rk[todo[: len(ids)]], now, port[creator_rows[todo[: len(ids)]]]
                )
            no_room = np.zeros(len(ck), dtype=bool)
            no_room[todo[len(ids) :]] = True
            per_row = rank[inverse]  # creator index of each pending packet
            flow[pending] = made[per_row]
            direction[pending] = Dir.ORIGINAL
            created[creator_rows[made[: len(ck)] != NO_FLOW]] = True
            full[pending] = no_room[per_row]
            conflict[pending] = clash[per_row]
            pending = pending[deferred[per_row]]
            if len(pending):
                again, again_dir = self.lookup(keys[pending])
                hit = again != NO_FLOW
                flow[pending[hit]] = again[hit]
                direction[pending[hit]] = again_dir[hit]
                pending = pending[~hit]
        conflict[pending] = True  # still unresolved after the rounds: give up on them
        return Resolved(flow, direction, created, full, conflict)

    @staticmethod
    def _batch_conflicts(ck: Keys, rk: Keys) -> Bools:
        """Creators whose original or reply key equals a key of an earlier creator of the batch."""
        m = len(ck)
        _, inverse = np.unique(_rows(np.concatenate([ck, rk])), return_inverse=True)
        inverse = inverse.reshape(-1)
        owner = np.full(int(inverse.max()) + 1, m, dtype=np.int64)
        index = np.concatenate([np.arange(m), np.arange(m)])
        np.minimum.at(owner, inverse, index)
        mine = np.arange(m)
        conflicts: Bools = (owner[inverse[:m]] < mine) | (owner[inverse[m:]] < mine)
        return conflicts

    def _alloc(self, n: int) -> I64:
        take = min(n, self._nfree)
        self._nfree -= take
        return self._free[self._nfree : self._nfree + take][::-1].copy()

    def _create(self, flows: I64, orig: Keys, reply: Keys, now: float, port: npt.NDArray[np.int16]) -> None:
        self.live[flows] = True
        self.keys[2 * flows] = orig
        self.keys[2 * flows + 1] = reply
        self.flags[flows] = 0
        self.nat_type[flows] = NatType.NONE
        self.tcp_state[flows] = TcpState.NONE
        self.first_syn_dir[flows] = Dir.ORIGINAL
        self.last_seen[flows] = now
        self.timeout[flows] = self.flow_timeout
        self.created_port[flows] = port
        self.nf_vni[flows] = 0
        self.underlay_hi[flows] = 0
        self.underlay_lo[flows] = 0
        self.lb_target[flows] = -1
        self.fw_action[flows] = FwAction.UNKNOWN
        self.hash[flows] = dpservice_hash(orig)
        self._insert(2 * flows)
        self_inverse = (orig == reply).all(axis=1)  # a key equal to its own inverse is stored once
        self._insert(2 * flows[~self_inverse] + 1)

    def _insert(self, entries: I64) -> None:
        """Place key indices ``entries`` (absent from the table, distinct) into free slots."""
        if len(entries) == 0:
            return
        if (self._used + len(entries)) > _MAX_LOAD * self._size:
            self.rebuild(extra=entries)
            return
        home = (_slot_hash(self.keys[entries]) & self._mask).astype(np.int64)
        pos = home.copy()
        todo = np.arange(len(entries))
        slots = self.slots
        limit = len(slots) - 1  # the guard slot stays EMPTY so every probe ends inside the array
        while len(todo):
            if int(pos[todo].max()) >= limit:
                self.rebuild(extra=entries[todo])
                return
            p = pos[todo]
            free = slots[p] < 0
            cand = todo[free]
            won_slots, first = np.unique(p[free], return_index=True)
            winners = cand[first]
            self._used += int(np.count_nonzero(slots[won_slots] == EMPTY))  # tombstones were counted
            slots[won_slots] = entries[winners]
            self.slot_of[entries[winners]] = won_slots
            self.max_probe = max(self.max_probe, int((won_slots - home[winners]).max(initial=0)))
            placed = np.zeros(len(entries), dtype=bool)
            placed[winners] = True
            todo = todo[~placed[todo]]
            pos[todo] += 1

    def rebuild(self, extra: I64 | None = None) -> None:
        """Re-place every placed live key (plus ``extra``, not placed yet) and drop the tombstones.

        Linear probing without wrap-around places keys sorted by home slot at
        ``max(home, previous + 1)``: a running maximum, so one sort does the whole table.
        """
        self.rebuilds += 1
        live_flows = np.flatnonzero(self.live)
        entries = np.concatenate([2 * live_flows, 2 * live_flows + 1])
        entries = entries[self.slot_of[entries] != EMPTY]
        if extra is not None:
            entries = np.union1d(entries, extra)
        home = (_slot_hash(self.keys[entries]) & self._mask).astype(np.int64)
        order = np.argsort(home, kind="stable")
        entries, home = entries[order], home[order]
        idx = np.arange(len(entries), dtype=np.int64)
        pos = np.maximum.accumulate(home - idx) + idx if len(entries) else idx
        need = int(pos.max(initial=-1)) + 2  # + the guard slot
        if need > self._size + self._spare + 1:
            self._spare = need - self._size + 64
        self.slots = np.full(self._size + self._spare + 1, EMPTY, dtype=np.int32)
        self.slots[pos] = entries
        self.slot_of[entries] = pos
        self._used = len(entries)
        self.max_probe = int((pos - home).max(initial=0))

    def rekey_reply(self, flows: I64, reply: Keys) -> Bools:
        """Replace the reply keys of ``flows`` (NAT); False where the new key belongs to another flow.

        A flow listed twice takes the first of its keys (both rows report that key's outcome).
        """
        unique, first, inverse = np.unique(flows, return_index=True, return_inverse=True)
        if len(unique) < len(flows):
            ok_once = self.rekey_reply(unique, reply[first])
            again: Bools = ok_once[inverse.reshape(-1)]
            return again
        taken, _ = self.lookup(reply)
        ok: Bools = (taken == NO_FLOW) | (taken == flows)
        flows, reply = flows[ok], reply[ok]
        if len(flows):
            self._unslot(2 * flows + 1)
            self.keys[2 * flows + 1] = reply
            self_inverse = (self.keys[2 * flows] == reply).all(axis=1)
            self._insert(2 * flows[~self_inverse] + 1)
        return ok

    # --- removal and ageing ------------------------------------------------------------------------

    def _unslot(self, entries: I64) -> None:
        at = self.slot_of[entries]
        at = at[at != EMPTY]
        self.slots[at] = TOMBSTONE
        self.slot_of[entries] = EMPTY

    def remove(self, flows: I64) -> None:
        """Delete flows (both keys); release hooks see them first (NAT frees their ports)."""
        flows = np.unique(flows[self.live[flows]]) if len(flows) else flows
        if len(flows) == 0:
            return
        for hook in self.release_hooks:
            hook(self, flows)
        self._unslot(np.concatenate([2 * flows, 2 * flows + 1]))
        self.live[flows] = False
        self._free[self._nfree : self._nfree + len(flows)] = flows
        self._nfree += len(flows)

    def expired(self, now: float) -> I64:
        """Flows idle for longer than their timeout."""
        return np.flatnonzero(self.live & ((now - self.last_seen) > self.timeout))

    def age(self, now: float) -> int:
        """Remove every expired flow; returns how many."""
        gone = self.expired(now)
        self.remove(gone)
        return len(gone)

    def flows_where(self, mask: Bools) -> I64:
        """Live flows selected by a per-flow mask (purges by interface, VIP, NAT, LB target)."""
        return np.flatnonzero(self.live & mask)

    # --- TCP ---------------------------------------------------------------------------------------

    def track_tcp(self, flows: I64, direction: U8, tcp_flags: U8) -> None:
        """dpservice's TCP state machine (``dp_cntrack_tcp_state``), one row per TCP packet.

        Any RST → RST_FIN; any FIN → FINWAIT if ESTABLISHED else RST_FIN; otherwise an exact SYN
        from NONE/RST_FIN → NEW_SYN (remembering the direction), an exact SYN|ACK from the other
        direction → NEW_SYNACK, an exact ACK from the SYN's direction → ESTABLISHED. The timeout
        follows the state: 24 h when ESTABLISHED, ``--flow-timeout`` otherwise.

        Packets of one flow apply in batch order. Each round applies, per flow, the first packet
        that changes something; packets before it changed nothing and are done, and a flow whose
        packets change nothing is done. Rounds are bounded by the state changes in the batch (a
        handful), not by its packets: an established stream costs one vectorized pass.
        """
        rows = np.arange(len(flows))
        while len(rows):
            f = flows[rows]
            state = self.tcp_state[f]
            syn_dir = self.first_syn_dir[f]
            new_state, new_syn_dir = _tcp_next(state, syn_dir, direction[rows], tcp_flags[rows])
            changes = (new_state != state) | (new_syn_dir != syn_dir)
            if not changes.any():
                return
            candidates = np.flatnonzero(changes)
            changed_flows, first = np.unique(f[candidates], return_index=True)
            pick = candidates[first]
            self.tcp_state[changed_flows] = new_state[pick]
            self.first_syn_dir[changed_flows] = new_syn_dir[pick]
            self.timeout[changed_flows] = np.where(
                new_state[pick] == TcpState.ESTABLISHED, ESTABLISHED_TCP_TIMEOUT, self.flow_timeout
            ).astype(np.uint32)
            # go on with the packets after the applied one, for the flows that changed
            at = np.minimum(np.searchsorted(changed_flows, f), len(changed_flows) - 1)
            later = (changed_flows[at] == f) & (rows > rows[pick][at])
            rows = rows[later]


def _tcp_next(state: U8, syn_dir: U8, direction: U8, tcp_flags: U8) -> tuple[U8, U8]:
    """State and SYN direction after one packet (see :meth:`FlowTable.track_tcp`)."""
    rst = (tcp_flags & tcp.TcpFlags.RST) != 0
    fin = (tcp_flags & tcp.TcpFlags.FIN) != 0
    only_syn = tcp_flags == tcp.TcpFlags.SYN
    only_synack = tcp_flags == (tcp.TcpFlags.SYN | tcp.TcpFlags.ACK)
    only_ack = tcp_flags == tcp.TcpFlags.ACK
    opening = (state == TcpState.NONE) | (state == TcpState.RST_FIN)
    new_state: U8 = np.select(
        [
            rst,
            fin & (state == TcpState.ESTABLISHED),
            fin,
            opening & only_syn,
            (state == TcpState.NEW_SYN) & only_synack & (direction != syn_dir),
            (state == TcpState.NEW_SYNACK) & only_ack & (direction == syn_dir),
        ],
        [
            TcpState.RST_FIN,
            TcpState.FINWAIT,
            TcpState.RST_FIN,
            TcpState.NEW_SYN,
            TcpState.NEW_SYNACK,
            TcpState.ESTABLISHED,
        ],
        state,
    ).astype(np.uint8)
    new_syn_dir: U8 = np.where(opening & only_syn, direction, syn_dir).astype(np.uint8)
    return new_state, new_syn_dir
