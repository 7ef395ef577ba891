"""Load balancers compiled for the datapath: find the LB of a packet, check its port, pick a target.

``AgentState.load_balancers`` holds each LB with its sorted targets and the Maglev table the control
plane built (``tables/maglev.py``). The ``lb`` node needs, for a whole batch of new flows at once
(DPSERVICE.md §4.9):

* which LB a packet is for: exact match of (VNI, destination address);
* whether the (protocol, destination port) is one of the LB's up to 15 ports;
* the target: ``targets[maglev[hash % 503]]``, where ``hash`` is dpservice's conntrack hash of the
  flow's original key, so a flow lands where dpservice would send it.

So the LBs become arrays: one row per LB, its ports as a ``(lbs, 15)`` key matrix, its Maglev table
as a ``(lbs, 503)`` index matrix and its targets as ``(lbs, 64)`` address halves. Rebuilt when
``AgentState.lb_version`` changes (at most 256 LBs); :meth:`LbTable.refresh` also reports the
(LB, target) pairs that disappeared, whose flows the ``lb`` node then removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

import numpy as np
import numpy.typing as npt

from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables.limits import MAX_LB_PORTS, MAX_LB_TARGETS
from kubevpc_agent.tables.maglev import MAGLEV_SIZE
from kubevpc_agent.tables.model import IPAddress, LoadBalancer
from kubevpc_agent.tables.state import AgentState

U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
BOOL = npt.NDArray[np.bool_]
NO_LB = -1
_NO_PORT = -1  # padding of the port-key matrix: never equals a real (proto << 16 | port) key


def address_halves(ip: IPAddress) -> tuple[bool, int, int]:
    """(is IPv6, hi, lo) as the batch columns hold an address (IPv4 in ``lo``)."""
    if isinstance(ip, IPv4Address):
        return False, 0, int(ip)
    hi, lo = split(ip)
    return True, hi, lo


@dataclass(frozen=True)
class Removed:
    """A target no longer behind a load balancer: its flows must move (the LB's key identifies them)."""

    vni: int
    ip: IPAddress
    target: IPv6Address


class LbTable:
    """Every load balancer as arrays; see the module docstring."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._version = -1
        self._targets: dict[tuple[int, IPAddress], frozenset[IPv6Address]] = {}
        self.refresh()

    def refresh(self) -> list[Removed]:
        """Recompile if the LBs changed; returns the (LB, target) pairs that went away since."""
        state = self.state
        if state.lb_version == self._version:
            return []
        self._version = state.lb_version
        lbs = list(state.load_balancers.values())
        self._compile(lbs)
        now = {(lb.vni, lb.ip): frozenset(lb.targets) for lb in lbs}
        removed = [
            Removed(vni, ip, target)
            for (vni, ip), before in self._targets.items()
            for target in sorted(before - now.get((vni, ip), frozenset()), key=lambda a: a.packed)
        ]
        self._targets = now
        return removed

    def _compile(self, lbs: list[LoadBalancer]) -> None:
        n = len(lbs)
        self.ids = [lb.id for lb in lbs]
        self.size = n
        halves = [address_halves(lb.ip) for lb in lbs]
        self.vni = np.array([lb.vni for lb in lbs], dtype=np.uint32)
        self.is_v6 = np.array([h[0] for h in halves], dtype=bool)
        self.ip_hi = np.array([h[1] for h in halves], dtype=np.uint64)
        self.ip_lo = np.array([h[2] for h in halves], dtype=np.uint64)
        self.ports = np.full((n, MAX_LB_PORTS), _NO_PORT, dtype=np.int32)
        self.n_targets = np.array([len(lb.targets) for lb in lbs], dtype=np.int32)
        self.maglev = np.zeros((n, MAGLEV_SIZE), dtype=np.int16)
        self.target_hi = np.zeros((n, MAX_LB_TARGETS), dtype=np.uint64)
        self.target_lo = np.zeros((n, MAX_LB_TARGETS), dtype=np.uint64)
        self.underlay_hi = np.zeros(n, dtype=np.uint64)
        self.underlay_lo = np.zeros(n, dtype=np.uint64)
        for i, lb in enumerate(lbs):
            for j, port in enumerate(lb.ports[:MAX_LB_PORTS]):
                self.ports[i, j] = port_key(int(port.protocol), port.port)
            if lb.targets and len(lb.maglev) == MAGLEV_SIZE:
                self.maglev[i] = lb.maglev
                for j, target in enumerate(lb.targets[:MAX_LB_TARGETS]):
                    self.target_hi[i, j], self.target_lo[i, j] = split(target)
            else:
                self.n_targets[i] = 0  # no usable table: treated as "no targets"
            self.underlay_hi[i], self.underlay_lo[i] = split(lb.underlay)

    def lookup(self, vni: npt.NDArray[np.uint32], is_v6: BOOL, hi: U64, lo: U64) -> I32:
        """The LB index of each (VNI, destination address), or :data:`NO_LB`."""
        n = len(vni)
        if self.size == 0 or n == 0:
            return np.full(n, NO_LB, dtype=np.int32)
        # (packets, LBs) comparison: LBs are few (≤ 256) and only new flows get here
        match = (
            (vni[:, np.newaxis] == self.vni)
            & (is_v6[:, np.newaxis] == self.is_v6)
            & (hi[:, np.newaxis] == self.ip_hi)
            & (lo[:, np.newaxis] == self.ip_lo)
        )
        found = match.any(axis=1)
        return np.where(found, match.argmax(axis=1), NO_LB).astype(np.int32)

    def port_matches(self, lb: I32, proto: npt.NDArray[np.uint8], dport: npt.NDArray[np.uint16]) -> BOOL:
        """Whether each (protocol, destination port) is balanced by LB ``lb`` (``NO_LB``: no)."""
        if self.size == 0:
            return np.zeros(len(lb), dtype=bool)
        keys = port_key(proto.astype(np.int32), dport.astype(np.int32))
        hit: BOOL = (self.ports[np.maximum(lb, 0)] == keys[:, np.newaxis]).any(axis=1) & (lb >= 0)
        return hit

    def has_targets(self, lb: I32) -> BOOL:
        if self.size == 0:
            return np.zeros(len(lb), dtype=bool)
        result: BOOL = (lb >= 0) & (self.n_targets[np.maximum(lb, 0)] > 0)
        return result

    def underlay_of(self, lb: I32) -> tuple[U64, U64]:
        """Each LB's own underlay address (zeros for ``NO_LB``)."""
        if self.size == 0:
            return np.zeros(len(lb), dtype=np.uint64), np.zeros(len(lb), dtype=np.uint64)
        row = np.maximum(lb, 0)
        known = lb >= 0
        return np.where(known, self.underlay_hi[row], 0).astype(np.uint64), np.where(
            known, self.underlay_lo[row], 0
        ).astype(np.uint64)

    def select(self, lb: I32, flow_hash: npt.NDArray[np.uint32]) -> tuple[npt.NDArray[np.int16], U64, U64]:
        """Target index and address halves for each (LB, hash); rows without targets get garbage."""
        row = np.maximum(lb, 0)
        if self.size == 0:
            zeros = np.zeros(len(lb), dtype=np.uint64)
            return np.full(len(lb), -1, dtype=np.int16), zeros, zeros.copy()
        slot = (flow_hash.astype(np.int64) % MAGLEV_SIZE).astype(np.intp)
        index = self.maglev[row, slot]
        return index, self.target_hi[row, index], self.target_lo[row, index]


def port_key(proto: int | npt.NDArray[np.int32], port: int | npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """One integer per (IP protocol, port): ``proto << 16 | port``."""
    return np.asarray((np.asarray(proto, dtype=np.int32) << 16) | np.asarray(port, dtype=np.int32))
