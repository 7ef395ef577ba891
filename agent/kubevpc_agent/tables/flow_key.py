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
    b = batch
    return key_words(
        l3=b.l3, proto=b.proto, src_hi=b.src_hi, src_lo=b.src_lo, dst_hi=b.dst_hi, dst_lo=b.dst_lo,
        sport=b.sport, dport=b.dport, vni=b.vni, vnf_type=b.vnf_type,
    )  # fmt: skip


def key_words(
    *,
    l3: npt.NDArray[np.uint8],
    proto: npt.NDArray[np.uint8],
    src_hi: npt.NDArray[np.uint64],
    src_lo: npt.NDArray[np.uint64],
    dst_hi: npt.NDArray[np.uint64],
    dst_lo: npt.NDArray[np.uint64],
    sport: npt.NDArray[np.uint16],
    dport: npt.NDArray[np.uint16],
    vni: npt.NDArray[np.uint32],
    vnf_type: npt.NDArray[np.uint8],
) -> U32:
    """The ``(n, 11)`` words of flow keys given as columns (conntrack keeps keys as columns too)."""
    n = len(l3)
    words = np.zeros((n, KEY_WORDS), dtype=np.uint32)
    v6 = l3 == L3.IPV6
    v6u = v6.astype(np.uint32)
    for base, hi, lo in ((0, dst_hi, dst_lo), (5, src_hi, src_lo)):
        # IPv6: the 16 address bytes as they are; IPv4: the host-order address value in word 0
        words[:, base] = np.where(v6, _swap(hi >> np.uint64(32)), (lo & M32).astype(np.uint32))
        words[:, base + 1] = np.where(v6, _swap(hi), 0)
        words[:, base + 2] = np.where(v6, _swap(lo >> np.uint64(32)), 0)
        words[:, base + 3] = np.where(v6, _swap(lo), 0)
    words[:, 4] = v6u | (proto.astype(np.uint32) << np.uint32(8)) | (dport.astype(np.uint32) << np.uint32(16))
    words[:, 9] = (
        v6u | (vnf_type.astype(np.uint32) << np.uint32(8)) | (sport.astype(np.uint32) << np.uint32(16))
    )
    words[:, 10] = vni
    return words


def flow_hash(batch: Batch) -> U32:
    """dpservice's flow hash of every packet (the packet's own direction, as ``dp_cntrack`` does)."""
    return jhash_32b_vec(flow_key_words(batch), DPSERVICE_INITVAL)
