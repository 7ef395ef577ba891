"""Packets as columns: a shared slot pool for the bytes, a :class:`Batch` of metadata arrays.

Why columns: one Python object per packet caps a core near 0.3-0.7 Mpps (BRIEF.md §6), while
numpy arithmetic over a whole batch reaches the kernel's forwarding rate. So a batch is a set of
equally long arrays (dpservice's ``struct dp_flow``, one array per field) plus slot indices into a
:class:`PacketPool` that holds the frames. Splitting a batch by next edge copies only the small
metadata arrays, never the frames (the mbuf idea).

Frame ``i`` of a batch is ``pool.data[slot[i], off[i] : off[i] + length[i]]``; it always starts
with an Ethernet header. ``HEADROOM`` bytes before it leave room to prepend the 54-byte
Ether + IPv6 underlay header without moving the frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt

SLOT_SIZE = 2048  # bytes per pool slot: headroom + 1500 MTU + Ether + IPv6 tunnel (1558) fits
HEADROOM = 128  # bytes kept free before a received frame (encap needs 54)
MAX_BATCH = 1024  # upper bound of one rx burst; batches are adaptive below it
NO_PORT = -1  # tx_port / rx_port value for "none"
NO_FLOW = -1  # flow column value before conntrack assigns one

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Edges = npt.NDArray[np.intp] | npt.NDArray[np.uint8] | npt.NDArray[np.int64]


class L3(IntEnum):
    """Network-layer kind of a frame, set by ``cls``."""

    NONE = 0
    IPV4 = 1
    IPV6 = 2
    ARP = 3


class PoolExhaustedError(RuntimeError):
    """No free slot: the caller drops (and counts) the frame instead of growing memory."""


class PacketPool:
    """A fixed number of equally sized frame slots, allocated and freed in bulk.

    Memory is bounded by construction: ``capacity * SLOT_SIZE`` bytes, allocated once.
    """

    def __init__(self, capacity: int = 16384) -> None:
        self.capacity = capacity
        self.data: U8 = np.zeros((capacity, SLOT_SIZE), dtype=np.uint8)
        self._free: I32 = np.arange(capacity - 1, -1, -1, dtype=np.int32)
        self._top = capacity  # self._free[:_top] are free

    @property
    def available(self) -> int:
        return self._top

    def alloc(self, n: int) -> I32:
        """Take ``n`` slots (raises :class:`PoolExhaustedError` when fewer are free)."""
        if n > self._top:
            raise PoolExhaustedError(f"{n} slots wanted, {self._top} free")
        self._top -= n
        return self._free[self._top : self._top + n].copy()

    def free(self, slots: npt.NDArray[np.integer]) -> None:
        """Return slots to the pool."""
        n = len(slots)
        if n == 0:
            return
        self._free[self._top : self._top + n] = slots
        self._top += n


class Batch:
    """Metadata columns of ``n`` packets whose bytes live in ``pool``.

    ``COLUMNS`` lists every column and its dtype; :meth:`select` and :meth:`concat` carry all of
    them, so adding a column here is all a new node needs. Columns filled by ``cls``/``conntrack``
    are read by later nodes, which never re-parse headers.
    """

    COLUMNS: ClassVar[tuple[tuple[str, type[np.generic]], ...]] = (
        ("slot", np.int32),  # pool slot holding the frame
        ("off", np.int32),  # offset of the Ethernet header inside the slot
        ("length", np.int32),  # frame length in bytes
        ("pkt_id", np.uint64),  # unique per received packet (trace, tests)
        ("rx_port", np.int16),  # port the frame arrived on
        ("tx_port", np.int16),  # port chosen for output, NO_PORT until routed
        ("l3", np.uint8),  # L3 kind
        ("proto", np.uint8),  # IP protocol (TCP/UDP/ICMP/ICMPv6), 0 if none
        ("src_hi", np.uint64),  # source address: IPv6 high 64 bits, 0 for IPv4
        ("src_lo", np.uint64),  # IPv6 low 64 bits, or the IPv4 address
        ("dst_hi", np.uint64),
        ("dst_lo", np.uint64),
        ("sport", np.uint16),  # L4 source port; ICMP: type (dpservice flow key convention)
        ("dport", np.uint16),  # L4 destination port; ICMP echo: identifier
        ("vni", np.uint32),  # VNI of the packet's VPC (from the rx interface or the underlay)
        ("vnf_type", np.uint8),  # VnfType of the underlay the packet arrived on / flow kind
        ("flow", np.int64),  # conntrack flow index, NO_FLOW before conntrack
        ("flow_dir", np.uint8),  # 0 = original direction, 1 = reply
        ("nh_hi", np.uint64),  # underlay next hop (encap destination), high 64 bits
        ("nh_lo", np.uint64),
        ("ul_src_hi", np.uint64),  # underlay source for encap, 0/0 = use the rx interface's
        ("ul_src_lo", np.uint64),
        ("nat", np.uint8),  # NAT / rewrite action flags set by dnat/snat/lb
    )

    slot: I32
    off: I32
    length: I32
    pkt_id: U64
    rx_port: I16
    tx_port: I16
    l3: U8
    proto: U8
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    sport: U16
    dport: U16
    vni: U32
    vnf_type: U8
    flow: I64
    flow_dir: U8
    nh_hi: U64
    nh_lo: U64
    ul_src_hi: U64
    ul_src_lo: U64
    nat: U8

    __slots__ = ("pool", *(name for name, _ in COLUMNS))

    def __init__(self, pool: PacketPool, n: int = 0) -> None:
        self.pool = pool
        for name, dtype in self.COLUMNS:
            setattr(self, name, np.zeros(n, dtype=dtype))
        self.tx_port[:] = NO_PORT
        self.rx_port[:] = NO_PORT
        self.flow[:] = NO_FLOW

    def __len__(self) -> int:
        return len(self.slot)

    @classmethod
    def from_columns(cls, pool: PacketPool, columns: dict[str, np.ndarray]) -> Batch:
        """Build a batch from ready arrays (every column must be present)."""
        batch = cls.__new__(cls)
        batch.pool = pool
        for name, _ in cls.COLUMNS:
            setattr(batch, name, columns[name])
        return batch

    def select(self, idx: npt.NDArray[np.integer] | npt.NDArray[np.bool_]) -> Batch:
        """The sub-batch at ``idx`` (indices or mask); frames are shared, columns copied."""
        return Batch.from_columns(self.pool, {name: getattr(self, name)[idx] for name, _ in self.COLUMNS})

    def part(self, rows: npt.NDArray[np.intp]) -> Batch:
        """:meth:`select` for byte access to ``rows`` (sorted indices): the batch itself if they are all."""
        return self if len(rows) == len(self) else self.select(rows)

    @staticmethod
    def concat(batches: Sequence[Batch]) -> Batch:
        """One batch from several (all of the same pool)."""
        if len(batches) == 1:
            return batches[0]
        pool = batches[0].pool
        return Batch.from_columns(
            pool, {name: np.concatenate([getattr(b, name) for b in batches]) for name, _ in Batch.COLUMNS}
        )

    # --- byte access -------------------------------------------------------------------------
    # Frames in one batch almost always share one offset (all received at HEADROOM, or all
    # encapsulated), so byte access groups rows by offset and uses one 2-D slice per group.

    def _offset_groups(self) -> Iterable[tuple[int, npt.NDArray[np.intp] | slice]]:
        off = self.off
        if len(off) == 0:
            return ()
        first = int(off[0])
        if (off == first).all():
            return ((first, slice(None)),)
        return ((int(o), np.flatnonzero(off == o)) for o in np.unique(off))

    def read(self, rel: int, nbytes: int) -> U8:
        """Bytes ``[off+rel, off+rel+nbytes)`` of every frame as an ``(n, nbytes)`` copy."""
        out = np.empty((len(self), nbytes), dtype=np.uint8)
        data = self.pool.data
        for o, rows in self._offset_groups():
            out[rows] = data[self.slot[rows], o + rel : o + rel + nbytes]
        return out

    def write(self, rel: int, values: npt.NDArray[np.uint8]) -> None:
        """Write an ``(n, k)`` byte matrix at ``off+rel`` of every frame."""
        nbytes = values.shape[1]
        data = self.pool.data
        for o, rows in self._offset_groups():
            data[self.slot[rows], o + rel : o + rel + nbytes] = values[rows]

    def frame(self, i: int) -> U8:
        """A view of frame ``i``'s bytes (slow paths, tests)."""
        o = int(self.off[i])
        return self.pool.data[int(self.slot[i]), o : o + int(self.length[i])]

    def frames(self) -> list[bytes]:
        """Every frame as bytes (tests and slow paths only)."""
        return [bytes(self.frame(i)) for i in range(len(self))]
