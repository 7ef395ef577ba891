"""Ports on existing netdevs (veth "VFs", SR-IOV representors, uplink PFs) via TPACKET_V2 rings.

An AF_PACKET socket with an rx and a tx ring mapped into this process (``PACKET_RX_RING`` /
``PACKET_TX_RING``, TPACKET_V2) and viewed as two numpy ``(frames, frame_size)`` byte matrices.
BRIEF.md §6 measured why: per-packet Python over these rings reaches half the kernel's rate,
treating the ring as arrays reaches it. So both directions are column operations:

* ``receive`` reads the status words of the next ``budget`` ring frames at once, takes the run of
  frames the kernel handed over, copies them into pool slots with one 2-D gather/scatter per
  distinct MAC offset (almost always one), and hands the frames back to the kernel in one write.
* ``send`` claims the next free tx frames, copies the batch in with one row copy per distinct
  frame offset, marks them ``SEND_REQUEST`` and kicks the kernel with one ``send()`` per batch.
  ``PACKET_QDISC_BYPASS`` skips the qdisc layer (dpservice's DPDK ports have none either).

``PACKET_IGNORE_OUTGOING`` keeps the kernel's own transmissions on the netdev (neighbour
discovery on a PF) out of the rx ring; promiscuous membership lets a real NIC deliver frames for
any MAC, as dpservice's VF ports do. Frames the kernel truncated (longer than a slot) are dropped.
"""

from __future__ import annotations

import contextlib
import mmap
import socket
import struct

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import HEADROOM, SLOT_SIZE, Batch, PacketPool
from kubevpc_agent.graph.port import PortSpec
from kubevpc_agent.ports.base import PortStats, rx_batch

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_TX_RING = 13
PACKET_LOSS = 14
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_COPY = 2  # rx: frame truncated to the ring frame
TP_STATUS_AVAILABLE = 0
TP_STATUS_SEND_REQUEST = 1
TP_STATUS_WRONG_FORMAT = 4

# struct tpacket2_hdr: u32 status, u32 len, u32 snaplen, u16 mac, u16 net, u32 sec, u32 nsec, ...
HDR_STATUS_U32, HDR_SNAPLEN_U32, HDR_MAC_U16 = 0, 2, 6
TX_DATA_OFFSET = 32  # TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where tx frame data starts

FRAME_SIZE = 2048
FRAMES_PER_BLOCK = 32  # block = 64 KiB
MAX_FRAME = SLOT_SIZE - HEADROOM


class Ring:
    """One mapped TPACKET_V2 ring as numpy views: frames, status words, snap lengths, MAC offsets."""

    def __init__(self, buffer: mmap.mmap, offset: int, frames: int) -> None:
        self.frames = frames
        self.mask = frames - 1
        self.data: npt.NDArray[np.uint8] = np.frombuffer(
            buffer, dtype=np.uint8, count=frames * FRAME_SIZE, offset=offset
        ).reshape(frames, FRAME_SIZE)
        words = self.data.view(np.uint32)
        self.status = words[:, HDR_STATUS_U32]
        self.snaplen = words[:, HDR_SNAPLEN_U32]
        self.length = words[:, 1]
        self.mac = self.data.view(np.uint16)[:, HDR_MAC_U16]
        self.head = 0

    def upcoming(self, n: int) -> npt.NDArray[np.intp]:
        """Indices of the next ``n`` frames from ``head`` (wrapping)."""
        return (np.arange(self.head, self.head + n, dtype=np.intp)) & self.mask


def _leading_true(mask: npt.NDArray[np.bool_]) -> int:
    """Length of the run of True at the start of ``mask``."""
    if mask.all():
        return len(mask)
    return int(np.argmin(mask))


class RingPort:
    """A port on an existing netdev through AF_PACKET TPACKET_V2 rx/tx rings."""

    def __init__(self, spec: PortSpec, rx_frames: int = 4096, tx_frames: int = 4096) -> None:
        for frames in (rx_frames, tx_frames):
            if frames & (frames - 1) or frames < FRAMES_PER_BLOCK:
                raise ValueError("ring sizes must be powers of two of at least one block")
        self.spec = spec
        self.stats = PortStats()
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # bound to a protocol below
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            sock.setsockopt(SOL_PACKET, PACKET_LOSS, 1)  # skip malformed tx frames, do not stall
            for option, frames in ((PACKET_RX_RING, rx_frames), (PACKET_TX_RING, tx_frames)):
                req = struct.pack(
                    "IIII", FRAME_SIZE * FRAMES_PER_BLOCK, frames // FRAMES_PER_BLOCK, FRAME_SIZE, frames
                )
                sock.setsockopt(SOL_PACKET, option, req)
            size = (rx_frames + tx_frames) * FRAME_SIZE
            self._map = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self.rx = Ring(self._map, 0, rx_frames)
            self.tx = Ring(self._map, rx_frames * FRAME_SIZE, tx_frames)
            sock.bind((spec.ifname, ETH_P_ALL))
            ifindex = socket.if_nametoindex(spec.ifname)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        rx = self.rx
        if not rx.status[rx.head] & TP_STATUS_USER:
            return Batch(pool, 0)
        budget = min(budget, rx.frames)
        idx = rx.upcoming(budget)
        n = _leading_true((rx.status[idx] & TP_STATUS_USER) != 0)
        idx = idx[:n]
        snap = rx.snaplen[idx].astype(np.int32)
        good = ((rx.status[idx] & TP_STATUS_COPY) == 0) & (snap <= MAX_FRAME)
        if not good.all():
            self.stats.rx_dropped += int(n - good.sum())
            idx, snap = idx[good], snap[good]
        take = min(len(idx), pool.available)
        if take < len(idx):
            self.stats.rx_dropped += len(idx) - take
        batch = Batch(pool, 0)
        if take:
            idx, snap = idx[:take], snap[:take]
            slots = pool.alloc(take)
            macoff = rx.mac[idx]
            data = pool.data
            first = int(macoff[0])
            if (macoff == first).all():
                width = int(snap.max())
                data[slots, HEADROOM : HEADROOM + width] = rx.data[idx, first : first + width]
            else:  # VLAN-stripped or mixed offsets: one copy per distinct MAC offset
                for m in np.unique(macoff).tolist():
                    rows = np.flatnonzero(macoff == m)
                    width = int(snap[rows].max())
                    data[slots[rows], HEADROOM : HEADROOM + width] = rx.data[idx[rows], m : m + width]
            batch = rx_batch(pool, self.spec.port_id, slots, snap)
            self.stats.rx_packets += take
            self.stats.rx_bytes += int(snap.sum())
        # hand every frame we looked at back to the kernel
        rx.status[rx.upcoming(n)] = TP_STATUS_KERNEL
        rx.head = (rx.head + n) & rx.mask
        return batch

    def send(self, batch: Batch) -> int:
        n = len(batch)
        if n == 0:
            return 0
        tx = self.tx
        idx = tx.upcoming(min(n, tx.frames))
        status = tx.status[idx]
        k = _leading_true((status == TP_STATUS_AVAILABLE) | (status == TP_STATUS_WRONG_FORMAT))
        length = batch.length
        fits = length[:k] <= FRAME_SIZE - TX_DATA_OFFSET
        if not fits.all():  # never happens with pool frames; guard the ring anyway
            k = _leading_true(fits)
        if k:
            idx = idx[:k]
            data, slot, off = batch.pool.data, batch.slot[:k], batch.off[:k]
            first = int(off[0])
            if (off == first).all():
                width = int(length[:k].max())
                tx.data[idx, TX_DATA_OFFSET : TX_DATA_OFFSET + width] = data[slot, first : first + width]
            else:
                for o in np.unique(off).tolist():
                    rows = np.flatnonzero(off == o)
                    width = int(length[:k][rows].max())
                    tx.data[idx[rows], TX_DATA_OFFSET : TX_DATA_OFFSET + width] = data[
                        slot[rows], o : o + width
                    ]
            tx.length[idx] = length[:k]
            tx.snaplen[idx] = length[:k]
            tx.status[idx] = TP_STATUS_SEND_REQUEST
            tx.head = (tx.head + k) & tx.mask
            self.kick()
            self.stats.tx_packets += k
            self.stats.tx_bytes += int(length[:k].sum())
        self.stats.tx_dropped += n - k
        return k

    def kick(self) -> None:
        """Ask the kernel to transmit every frame marked ``SEND_REQUEST`` (does not wait)."""
        # ENOBUFS and friends: the frames stay queued and go with the next kick
        with contextlib.suppress(OSError):
            self._sock.send(b"", socket.MSG_DONTWAIT)

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            del self.rx, self.tx
            self._map.close()
            self._sock.close()
