"""Bare TAP devices for when ``kubevpc_agent.ports`` is not installed (a trimmed-down build).

The device exists while its ``/dev/net/tun`` fd is open (created non-persistent), carries the
configured MAC and is up; no frames are read or written. The real ports live in
``kubevpc_agent.ports`` (``factory.open_ports``), which the agent uses whenever it is present.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import Batch, PacketPool
from kubevpc_agent.graph.port import Port, PortSpec

_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI = 0x0002, 0x1000
_SIOCSIFHWADDR, _SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8924, 0x8913, 0x8914
_IFF_UP = 0x1
_ARPHRD_ETHER = 1


class BareTap:
    """A TAP device held open, without packet I/O."""

    def __init__(self, spec: PortSpec) -> None:
        self.spec = spec
        self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        try:
            name = spec.ifname.encode()
            fcntl.ioctl(self._fd, _TUNSETIFF, struct.pack("16sH22x", name, _IFF_TAP | _IFF_NO_PI))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                if spec.mac:
                    mac = bytes.fromhex(spec.mac.replace(":", ""))
                    fcntl.ioctl(sock, _SIOCSIFHWADDR, struct.pack("16sH6s8x", name, _ARPHRD_ETHER, mac))
                ifreq = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack("16s16x", name))
                flags = struct.unpack("16xH14x", ifreq)[0]
                fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", name, flags | _IFF_UP))
        except OSError:
            os.close(self._fd)
            raise

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        return Batch(pool, 0)

    def send(self, batch: Batch) -> int:
        return 0

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def open_taps(config: AgentConfig) -> list[Port]:
    """A :class:`BareTap` per configured TAP port (netdev ports need the real port package)."""
    taps: list[Port] = []
    try:
        for spec in config.ports:
            if spec.driver != "tap":
                raise OSError(f"port {spec.device}: driver {spec.driver!r} needs kubevpc_agent.ports")
            taps.append(BareTap(spec))
    except BaseException:
        for tap in taps:
            tap.close()
        raise
    return taps
