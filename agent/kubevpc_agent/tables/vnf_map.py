"""Exact match of underlay destination addresses for a whole batch (dpservice's VNF table).

``ipip_decap`` looks up every packet's outer IPv6 destination among this node's underlay addresses
(``AgentState.vnf``: interfaces, alias and LB prefixes, VIPs, NAT slices, load balancers) to learn
the packet's VNI, what the address stands for and the port behind it (DPSERVICE.md §3.1, §3.3).

All generated underlays share the host's /64, so the high halves are nearly all equal and the low
half is what tells addresses apart: entries are sorted by (lo, hi), a search on the low half finds
the first candidate and the next ``run`` entries (``run`` = the longest group of entries sharing a
low half, normally 1) are compared in full. The table holds at most ~1,000 entries (§7) and is
rebuilt when ``AgentState.vnf_version`` changes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables.state import AgentState

U64 = npt.NDArray[np.uint64]
MISS = -1
MAX64 = (1 << 64) - 1


class VnfMap:
    """Sorted arrays of this node's underlay addresses and what each one maps to."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._version = -1
        self.refresh()

    def refresh(self) -> bool:
        """Rebuild if the VNF table changed; True if it did."""
        state = self.state
        if state.vnf_version == self._version:
            return False
        self._version = state.vnf_version
        entries = sorted(state.vnf.values(), key=lambda e: (int(e.underlay) & MAX64, int(e.underlay) >> 64))
        halves = [split(e.underlay) for e in entries]
        # a final pad entry (all ones, never an underlay we hand out) keeps searches in bounds
        self.hi = np.array([h for h, _ in halves] + [MAX64], dtype=np.uint64)
        self.lo = np.array([lo for _, lo in halves] + [MAX64], dtype=np.uint64)
        self.vni = np.array([e.vni for e in entries] + [0], dtype=np.uint32)
        self.vnf_type = np.array([e.type for e in entries] + [0], dtype=np.uint8)
        self.port = np.array([e.port_id for e in entries] + [-1], dtype=np.int16)
        self.size = len(entries)
        run = 1
        if self.size > 1:
            same = np.flatnonzero(np.diff(self.lo[: self.size]) == 0)
            run = 1 + int(_longest_consecutive(same)) if len(same) else 1
        self.run = run
        return True

    def lookup(self, hi: U64, lo: U64) -> npt.NDArray[np.int32]:
        """Entry index for each (hi, lo) address, or MISS (which indexes the pad entry)."""
        first = np.searchsorted(self.lo, lo)  # never past the pad entry
        found = first
        match = (self.lo[first] == lo) & (self.hi[first] == hi) & (first < self.size)
        for k in range(1, self.run):  # entries sharing a low half; bounded by the table, not the batch
            idx = np.minimum(first + k, self.size)
            match_k = ~match & (self.lo[idx] == lo) & (self.hi[idx] == hi) & (idx < self.size)
            found = np.where(match_k, idx, found)
            match |= match_k
        result: npt.NDArray[np.int32] = np.where(match, found, MISS).astype(np.int32)
        return result


def _longest_consecutive(positions: npt.NDArray[np.intp]) -> int:
    """Length of the longest run of consecutive integers in a sorted array (≥ 1 if non-empty)."""
    breaks = np.flatnonzero(np.diff(positions) != 1)
    edges = np.concatenate([[-1], breaks, [len(positions) - 1]])
    return int(np.diff(edges).max())
