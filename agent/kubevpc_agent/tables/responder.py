"""What the gateway's responders share: ``arp``, ``dhcp``, ``dhcpv6`` and ``ipv6_nd``.

Each answers a VM's request on behalf of the gateway, one packet at a time (a slow-path
:class:`~kubevpc_agent.graph.node.PerPacketNode`), from the agent state, the port MACs and the
agent's configuration. Only a VF's VM is answered; the answer goes to ``tx`` back out of the port
the request came in on, anything unanswered is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import ClassVar

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import Batch
from kubevpc_agent.graph.node import PerPacketNode
from kubevpc_agent.graph.port import PortKind
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs


class ReplyNext(IntEnum):
    """The edges of every responder."""

    DROP = 0
    TX = 1


class GatewayResponder(PerPacketNode):
    """Base of the responders: a subclass builds its reply in :meth:`answer`.

    :meth:`next_for` puts that reply in place of the request and sends it back out of the rx port;
    a responder that rewrites the request in place instead overrides :meth:`next_for`.
    """

    NEXT_NODES: ClassVar[Mapping[int, str]] = {ReplyNext.TX: "tx"}

    def __init__(self, state: AgentState, macs: PortMacs, config: AgentConfig) -> None:
        super().__init__()
        self.state = state
        self.macs = macs
        self.config = config

    def from_vf(self, port_id: int) -> bool:
        """Whether ``port_id`` is a VF port of the agent (the only ports whose requests are answered)."""
        spec = self.state.ports.get(port_id)
        return spec is not None and spec.kind is PortKind.VF

    def next_for(self, batch: Batch, i: int) -> int:
        counter, reply = self.answer(batch, i)
        self.tally[counter] += 1
        if reply is None:
            return ReplyNext.DROP
        self.replace_frame(batch, i, reply)
        batch.tx_port[i] = batch.rx_port[i]
        return ReplyNext.TX

    def answer(self, batch: Batch, i: int) -> tuple[IntEnum, bytes | None]:
        """The counter to bump and the reply frame to packet ``i`` (None: drop)."""
        raise NotImplementedError
