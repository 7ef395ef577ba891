"""Per-port facts the hot nodes need, as arrays indexed by port id (a compiled view of AgentState).

``cls`` needs each rx port's kind, whether a VF has an interface (dpservice starts a VF port only
when an interface is created on it, so a bare VF receives nothing) and that interface's VNI;
``ipip_encap`` needs each rx port's underlay source address (the interface's underlay on a VF,
the host ``--ipv6`` otherwise: dpservice's ``dp_get_port_ul_ipv6``). Rebuilt when
``AgentState.version`` changes, which costs a dict walk over a few hundred ports at most.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.port import PortKind
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables.state import AgentState

IntArray = npt.NDArray[np.integer]


class PortTable:
    """Arrays over port ids ``0 .. size-1``; see the module docstring."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._version = -1
        self.size = 0
        self.exists = np.zeros(0, dtype=bool)
        self.is_pf = np.zeros(0, dtype=bool)
        self.attached = np.zeros(0, dtype=bool)  # PF, or VF with an interface
        self.vni = np.zeros(0, dtype=np.uint32)  # the interface's VNI (VF), 0 otherwise
        self.ul_hi = np.zeros(0, dtype=np.uint64)  # encap source for traffic received on the port
        self.ul_lo = np.zeros(0, dtype=np.uint64)
        self.pf_ids: list[int] = []
        self.refresh()

    def refresh(self) -> None:
        """Recompile if the state changed since the last call (cheap when it did not)."""
        state = self.state
        if state.version == self._version:
            return
        self._version = state.version
        size = max(state.ports, default=-1) + 1
        exists = np.zeros(size, dtype=bool)
        is_pf = np.zeros(size, dtype=bool)
        attached = np.zeros(size, dtype=bool)
        vni = np.zeros(size, dtype=np.uint32)
        host_hi, host_lo = split(state.config.underlay_ipv6)
        ul_hi = np.full(size, host_hi, dtype=np.uint64)
        ul_lo = np.full(size, host_lo, dtype=np.uint64)
        for port_id, spec in state.ports.items():
            exists[port_id] = True
            if spec.kind is PortKind.PF:
                is_pf[port_id] = attached[port_id] = True
                continue
            iface = state.interface_by_port(port_id)
            if iface is not None:
                attached[port_id] = True
                vni[port_id] = iface.vni
                ul_hi[port_id], ul_lo[port_id] = split(iface.underlay)
        self.size, self.exists, self.is_pf, self.attached = size, exists, is_pf, attached
        self.vni, self.ul_hi, self.ul_lo = vni, ul_hi, ul_lo
        self.pf_ids = [p.port_id for p in state.pf_ports()]

    def index(self, port_ids: IntArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Safe indices into the arrays for a port column, and which entries name a real port."""
        idx = port_ids.astype(np.intp)
        valid = (idx >= 0) & (idx < self.size)
        idx = np.where(valid, idx, 0)
        if self.size:
            valid &= self.exists[idx]
        return idx, valid
