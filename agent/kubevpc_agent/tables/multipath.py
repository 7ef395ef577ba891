"""Egress uplink choice for routed overlay traffic: dpservice's ``dp_multi_path.c`` (DPSERVICE.md §4.14).

Without ``--wcmp`` (100 %) every flow leaves through pf0. With ``--wcmp=P`` a table of ten slots
holds ``lround(P / 10)`` pf0 slots followed by pf1 slots, and a flow takes slot ``hash % 10`` of
its dpservice flow hash, so the split is per flow and agrees with dpservice's for the same flow.
dpservice also falls back to the other uplink while one's link is down; link state is not known
to the agent's tables yet, so both links count as up.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SLOTS = 10  # PORT_SELECT_TABLE_SIZE: WCMP resolution is 10 %


class Multipath:
    """Maps flow hashes to uplink port ids."""

    def __init__(self, pf_ids: list[int], wcmp_percent: int) -> None:
        if not pf_ids:
            raise ValueError("multipath needs at least one uplink")
        self.pf0 = pf_ids[0]
        self.pf1 = pf_ids[1] if len(pf_ids) > 1 else pf_ids[0]
        # WCMP is on iff --wcmp < 100 (dpservice's dp_conf_is_wcmp_enabled); lround rounds half up
        self.enabled = wcmp_percent < 100 and self.pf1 != self.pf0
        pf0_slots = math.floor(wcmp_percent / (100 / SLOTS) + 0.5)
        self.table = np.array([self.pf0] * pf0_slots + [self.pf1] * (SLOTS - pf0_slots), dtype=np.int16)

    def select(self, flow_hash: npt.NDArray[np.uint32]) -> npt.NDArray[np.int16]:
        """The uplink for each flow hash."""
        if not self.enabled:
            return np.full(len(flow_hash), self.pf0, dtype=np.int16)
        chosen: npt.NDArray[np.int16] = self.table[flow_hash % np.uint32(SLOTS)]
        return chosen
