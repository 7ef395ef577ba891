"""The Port protocol: what the runtime needs from a device, whatever its I/O method.

Concrete ports (TAP fds, AF_XDP/TPACKET rings on VF and PF netdevs, in-memory test ports) live
in ``kubevpc_agent.ports``; the graph and the nodes only see this interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from kubevpc_agent.graph.batch import Batch, PacketPool


class PortKind(IntEnum):
    """Role of a dataplane port."""

    PF = 0  # uplink carrying the IPv6 underlay
    VF = 1  # a VM-facing port (SR-IOV VF representor, veth stand-in, or TAP)


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A dataplane port as the command line declares it (dpservice: a DPDK port)."""

    port_id: int  # dense, 0-based, in command-line order (DPDK port id)
    device: str  # device name the API uses (TAP mode: ``net_tapN``)
    ifname: str  # kernel netdev name (``dtapvf_0``, ``kvpc-pf0``)
    mac: str  # the port's own MAC, ``aa:bb:cc:dd:ee:ff``
    kind: PortKind
    driver: str = "tap"  # "tap" (agent-created TAP), "netdev" (existing VF/PF netdev), "memory"


class Port(Protocol):
    """One dataplane port."""

    spec: PortSpec

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        """Up to ``budget`` frames now pending, placed at ``HEADROOM`` in fresh pool slots.

        Never blocks. Sets ``rx_port``, ``slot``, ``off``, ``length``; other columns default.
        """
        ...

    def send(self, batch: Batch) -> int:
        """Transmit every frame of ``batch``; returns how many were accepted (rest dropped).

        Does not free the slots: the runtime does.
        """
        ...

    def fileno(self) -> int:
        """A file descriptor that polls readable when frames wait (-1 if none)."""
        ...

    def close(self) -> None: ...
