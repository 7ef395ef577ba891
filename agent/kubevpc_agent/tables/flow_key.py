"""dpservice's conntrack flow key built from batch columns, and its hash (DPSERVICE.md §4.12).

The key is dpservice's packed 44-byte ``struct flow_key`` as little-endian x86 lays it out::

    offset  0  l3_dst    16 bytes: IPv6 in network order, or IPv4 as a host-order u32 + 12 zeros
           16  is_v6     1 byte
           17  proto     1 byte
           18  port_dst  u16 (ICMP echo: identifier)
           20  l3_src    16 bytes, as l3_dst
           36  is_v6     1 byte
           37  vnf_type  1 byte
           38  port_src  u16 (ICMP: type)
           40  vni       u32

hashed as eleven 32-bit words by ``rte_jhash_32b(key, 11, 0xfee1900d)``. Computing the same value
from the same fields makes WCMP uplink choice, Maglev backends and NAT port picks agree with
dpservice for the same flow. ``vnf_type`` is read from the batch column (conntrack fills it as
dpservice's ``dp_mark_vnf_type`` does; 0 until then).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kubevpc_agent.graph.batch import L3, Batch
from kubevpc_agent.protocols.jhash import DPSERVICE_INITVAL, jhash_32b_vec

KEY_WORDS = 11  # 44 bytes
U32 = npt.NDArray[np.uint32]
M32 = np.uint64(0xFFFFFFFF)


def _swap(x: npt.NDArray[np.uint64]) -> U32:
    """The low 32 bits of ``x`` as the little-endian word holding them in network order."""
    return (x & M32).astype(np.uint32).byteswap()


def flow_key_words(batch: Batch) -> U32:
    """The ``(n, 11)`` little-endian words of every packet's flow key."""
    n = len(batch)
    words = np.zeros((n, KEY_WORDS), dtype=np.uint32)
    v6 = batch.l3 == L3.IPV6
    v6u = v6.astype(np.uint32)
    for base, hi, lo in ((0, batch.dst_hi, batch.dst_lo), (5, batch.src_hi, batch.src_lo)):
        # IPv6: the 16 address bytes as they are; IPv4: the host-order address value in word 0
        words[:, base] = np.where(v6, _swap(hi >> np.uint64(32)), (lo & M32).astype(np.uint32))
        words[:, base + 1] = np.where(v6, _swap(hi), 0)
        words[:, base + 2] = np.where(v6, _swap(lo >> np.uint64(32)), 0)
        words[:, base + 3] = np.where(v6, _swap(lo), 0)
    words[:, 4] = (
        v6u
        | (batch.proto.astype(np.uint32) << np.uint32(8))
        | (batch.dport.astype(np.uint32) << np.uint32(16))
    )
    words[:, 9] = (
        v6u
        | (batch.vnf_type.astype(np.uint32) << np.uint32(8))
        | (batch.sport.astype(np.uint32) << np.uint32(16))
    )
    words[:, 10] = batch.vni
    return words


def flow_hash(batch: Batch) -> U32:
    """dpservice's flow hash of every packet (the packet's own direction, as ``dp_cntrack`` does)."""
    return jhash_32b_vec(flow_key_words(batch), DPSERVICE_INITVAL)
