"""MAC addresses the dataplane learns, per port: the VM behind each VF, the router behind each PF.

Datapath-local state (not replicated from the control plane): ARP replies, DHCP requests and
neighbour solicitations from a VM update its entry (DPSERVICE.md §4.1); a VF entry starts as the
port's own MAC, as in dpservice, and survives interface deletion. Kept as an ``(n_ports, 6)``
byte matrix so tx-side nodes write Ethernet headers for a whole batch with one fancy index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.port import PortSpec


def mac_bytes(mac: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` → 6 bytes."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


class PortMacs:
    """Own MAC and learned peer MAC of every port."""

    def __init__(self, ports: Iterable[PortSpec]) -> None:
        specs = sorted(ports, key=lambda p: p.port_id)
        n = (specs[-1].port_id + 1) if specs else 0
        self.own: npt.NDArray[np.uint8] = np.zeros((n, 6), dtype=np.uint8)
        for p in specs:
            self.own[p.port_id] = np.frombuffer(mac_bytes(p.mac), dtype=np.uint8)
        # peer: the VM's MAC behind a VF, the underlay router's MAC behind a PF (zeros until known)
        self.peer: npt.NDArray[np.uint8] = self.own.copy()
        for p in specs:
            if p.kind.name == "PF":
                self.peer[p.port_id] = 0
        self.version = 0
        # the interface whose VM answered the "ARP cycle", per VF port (dpservice ``iface.arp_done``,
        # reset by a new interface): until then GARPs ask for the VM's address and its answer is learned
        self._arp_done_for: dict[int, object] = {}

    def learn(self, port_id: int, mac: bytes) -> None:
        """Record the peer MAC seen on a port (no-op when unchanged)."""
        new = np.frombuffer(mac, dtype=np.uint8)
        if not np.array_equal(self.peer[port_id], new):
            self.peer[port_id] = new
            self.version += 1

    def peer_mac(self, port_id: int) -> bytes:
        return bytes(self.peer[port_id])

    def own_mac(self, port_id: int) -> bytes:
        return bytes(self.own[port_id])

    def is_arp_cycle_pending(self, port_id: int, interface: object | None) -> bool:
        """True while ``interface`` (now on the port) has not answered an ARP for its own IPv4."""
        return interface is not None and self._arp_done_for.get(port_id) is not interface

    def end_arp_cycle(self, port_id: int, interface: object) -> None:
        self._arp_done_for[port_id] = interface
