"""tx: split by tx_port, one send per port, per-port figures; drop: counts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.nodes.drop import Drop
from kubevpc_agent.nodes.tx import Tx
from kubevpc_agent.ports.memory import MemoryPort
from testkit.dp_topology import PF0, PORTS, VF0, VF1
from testkit.overlay import receive, run_node


class RefusingPort(MemoryPort):
    def send(self, batch: Batch) -> int:
        accepted = len(batch) // 2
        self.sent.extend(batch.frames()[:accepted])
        return accepted


def frames(n: int) -> list[bytes]:
    return [bytes(Ether() / IP(id=i) / UDP()) for i in range(n)]


def test_frames_go_out_on_their_tx_port_in_order() -> None:
    ports = [MemoryPort(replace(p, driver="memory")) for p in PORTS]
    tx = Tx(ports)
    sent = frames(6)
    batch = receive(sent, VF0)
    batch.tx_port = np.array([VF1, PF0, VF1, PF0, PF0, VF1], dtype=np.int16)
    run = run_node(tx, batch)
    assert run.counters == {"sent": 6}
    assert ports[VF1].take_sent() == [sent[0], sent[2], sent[5]]
    assert ports[PF0].take_sent() == [sent[1], sent[3], sent[4]]
    assert tx.tx_packets[[VF1, PF0]].tolist() == [3, 3]
    assert tx.tx_bytes[VF1] == sum(len(sent[i]) for i in (0, 2, 5))


def test_refusals_and_missing_ports_are_counted() -> None:
    ports = [MemoryPort(replace(p, driver="memory")) for p in PORTS[:2]] + [
        RefusingPort(replace(PORTS[VF0], driver="memory"))
    ]
    tx = Tx(ports)
    batch = receive(frames(5), VF0)
    batch.tx_port = np.array([VF0, VF0, VF0, VF0, -1], dtype=np.int16)
    assert run_node(tx, batch).counters == {"sent": 2, "port_refused": 2, "no_tx_port": 1}
    assert tx.tx_refused[VF0] == 2


def test_drop_counts() -> None:
    drop = Drop()
    assert run_node(drop, receive(frames(3), VF0)).counters == {"dropped": 3}
