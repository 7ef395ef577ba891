"""tx: hand each packet to the port in its ``tx_port`` column (dpservice's ``tx-<port>`` nodes, as one).

In:  packets with ``tx_port`` set by the node before (ARP/DHCP/ND replies: the rx port; routing:
     the VM port or the uplink).
Out: none (terminal); the runtime frees the slots after ``Port.send`` has copied or queued them.

One node for all ports: the batch is split by ``tx_port`` (a loop over the ports present in the
batch, not over packets) and each part goes out in one ``send`` call. Per-port packet, byte and
failure counts are kept as arrays indexed by port id for the port metrics; the node counters sum
them over all ports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import Port


class Counter(IntEnum):
    SENT = 0
    PORT_REFUSED = 1
    NO_TX_PORT = 2


COUNTER_HELP: Mapping[IntEnum, str] = {
    Counter.SENT: "Packets handed to a port",
    Counter.PORT_REFUSED: "Packets a port did not accept (ring full, link down)",
    Counter.NO_TX_PORT: "Packets without a valid tx port (a bug upstream; dropped)",
}


class Tx(Node):
    """Transmit by ``tx_port``; see the module docstring."""

    name = "tx"
    NEXT_NODES: ClassVar[Mapping[int, str]] = {}  # terminal
    COUNTER_HELP = COUNTER_HELP

    def __init__(self, ports: Sequence[Port]) -> None:
        super().__init__()
        size = max((p.spec.port_id for p in ports), default=-1) + 1
        self.ports: list[Port | None] = [None] * size
        for port in ports:
            self.ports[port.spec.port_id] = port
        self.tx_packets: npt.NDArray[np.uint64] = np.zeros(size, dtype=np.uint64)
        self.tx_bytes: npt.NDArray[np.uint64] = np.zeros(size, dtype=np.uint64)
        self.tx_refused: npt.NDArray[np.uint64] = np.zeros(size, dtype=np.uint64)

    def process(self, batch: Batch) -> int:
        tx_port = batch.tx_port
        size = len(self.ports)
        first = int(tx_port[0]) if len(tx_port) else -1
        if 0 <= first < size and (tx_port == first).all():
            self._send(first, batch)  # the common case: one port, no split
            return 0
        for port_id in np.unique(tx_port).tolist():
            part = batch.select(np.flatnonzero(tx_port == port_id))
            if 0 <= port_id < size:
                self._send(port_id, part)
            else:
                self.count(Counter.NO_TX_PORT, len(part))
        return 0

    def _send(self, port_id: int, batch: Batch) -> None:
        port = self.ports[port_id]
        if port is None:
            self.count(Counter.NO_TX_PORT, len(batch))
            return
        accepted = port.send(batch)
        refused = len(batch) - accepted
        self.tx_packets[port_id] += np.uint64(accepted)
        self.tx_bytes[port_id] += np.uint64(int(batch.length.sum()))  # attempted bytes
        self.count(Counter.SENT, accepted)
        if refused:
            self.tx_refused[port_id] += np.uint64(refused)
            self.count(Counter.PORT_REFUSED, refused)
