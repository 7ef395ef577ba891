"""TAP ports: the agent creates the device, the kernel side is the VM's NIC.

The agent holds the ``/dev/net/tun`` file descriptor (``IFF_TAP | IFF_NO_PI``: plain Ethernet
frames, no packet-info prefix), so the device lives exactly as long as the agent: closing the last
copy of the fd removes it (it is not made persistent). Tests and the demo move the kernel side into
a VM namespace; the fd keeps working across the move.

A TAP fd moves one frame per ``read``/``write`` (BRIEF.md §6: 0.71 Mpps I/O only), so
``receive`` drains up to ``budget`` frames straight into pool slots (``readinto`` a slot view, no
intermediate bytes object) and hands the graph one batch; ``send`` writes each frame from its slot.
"""

from __future__ import annotations

import fcntl
import io
import os
import random
import struct

import numpy as np
from pyroute2 import IPRoute

from kubevpc_agent.graph.batch import SLOT_SIZE, Batch, PacketPool
from kubevpc_agent.graph.port import PortSpec
from kubevpc_agent.ports.base import PortStats, rx_batch, slot_views

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16


class TapError(OSError):
    """The TAP device could not be created or configured."""


def random_mac() -> str:
    """A random locally administered unicast MAC (what DPDK's net_tap uses when none is given)."""
    raw = bytearray(random.getrandbits(8) for _ in range(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)


def create_tap(ifname: str) -> int:
    """Open ``/dev/net/tun`` and attach it to (or create) TAP ``ifname``; returns the non-blocking fd."""
    if not 0 < len(ifname.encode()) < IFNAMSIZ:
        raise TapError(f"bad interface name {ifname!r}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifr = struct.pack(f"{IFNAMSIZ}sH22x", ifname.encode(), IFF_TAP | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifr)
        os.set_blocking(fd, False)
    except OSError as exc:
        os.close(fd)
        raise TapError(exc.errno, f"cannot create TAP {ifname}: {exc.strerror}") from exc
    return fd


def configure_link(ifname: str, mac: str, mtu: int | None = None) -> None:
    """Set the kernel side's MAC (DPDK net_tap gives it the port's MAC) and bring it up."""
    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=ifname)
        settings: dict[str, object] = {"address": mac, "state": "up"}
        if mtu is not None:
            settings["mtu"] = mtu
        ipr.link("set", index=index, **settings)


class TapPort:
    """A VM-facing port on an agent-created TAP device."""

    def __init__(self, spec: PortSpec) -> None:
        self.spec = spec
        self.stats = PortStats()
        self._fd = create_tap(spec.ifname)
        try:
            configure_link(spec.ifname, spec.mac)
        except Exception:
            os.close(self._fd)
            raise
        # unbuffered raw file: readinto/write return None on EAGAIN instead of raising
        self._file = io.FileIO(self._fd, "r+b", closefd=False)
        self._views: list[memoryview] = []
        self._views_of: PacketPool | None = None

    def fileno(self) -> int:
        return self._fd

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        if self._views_of is not pool:
            self._views, self._views_of = slot_views(pool), pool
        want = min(budget, pool.available)
        if want == 0:
            return Batch(pool, 0)  # frames wait in the TAP queue (the kernel drops beyond it)
        slots = pool.alloc(want)
        free = slots.tolist()
        views, readinto = self._views, self._file.readinto
        kept: list[int] = []  # slots holding a frame, in arrival order
        lengths: list[int] = []
        errors = 0
        i = 0
        while i < want:
            slot = free[i]
            try:
                got = readinto(views[slot])
            except OSError:  # e.g. EFAULT: a frame longer than a slot (the kernel drops it); reuse the slot
                errors += 1
                if errors > want:
                    break
                continue
            if not got:  # None: nothing pending (EAGAIN)
                break
            kept.append(slot)
            lengths.append(got)
            i += 1
        pool.free(slots[i:])
        if errors:
            self.stats.rx_dropped += errors
        n = len(kept)
        if n == 0:
            return Batch(pool, 0)
        batch = rx_batch(pool, self.spec.port_id, slots[:n], np.asarray(lengths, dtype=np.int32))
        self.stats.rx_packets += n
        self.stats.rx_bytes += sum(lengths)
        return batch

    def send(self, batch: Batch) -> int:
        n = len(batch)
        if n == 0:
            return 0
        flat = batch.pool.data.reshape(-1).data
        base = (batch.slot.astype(np.int64) * SLOT_SIZE + batch.off).tolist()
        ends = (np.asarray(base, dtype=np.int64) + batch.length).tolist()
        write = self._file.write
        sent = sent_bytes = 0
        for start, end in zip(base, ends, strict=True):
            try:
                got = write(flat[start:end])
            except OSError:
                continue
            if got:
                sent += 1
                sent_bytes += got
        self.stats.tx_packets += sent
        self.stats.tx_bytes += sent_bytes
        self.stats.tx_dropped += n - sent
        return sent

    def close(self) -> None:
        if self._fd >= 0:
            self._file.close()
            os.close(self._fd)
            self._fd = -1
