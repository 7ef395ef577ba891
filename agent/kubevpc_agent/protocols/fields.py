"""Big-endian header fields of a whole batch at once, read out of an ``(n, k)`` byte matrix.

A field at byte column ``at`` becomes one host-order integer per row by *viewing* the matrix's
bytes as a big-endian type and converting once: two numpy calls per field, whatever the batch
size, several times cheaper than assembling the value from shifted byte columns. The matrix's
last axis must be contiguous (any row slice of ``Batch.read``'s result is).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]


def u16(m: U8, at: int) -> npt.NDArray[np.uint16]:
    """The big-endian 16-bit field at column ``at`` of every row."""
    value: npt.NDArray[np.uint16] = m[:, at : at + 2].view(">u2")[:, 0].astype(np.uint16)
    return value


def u32(m: U8, at: int) -> npt.NDArray[np.uint64]:
    """The big-endian 32-bit field at column ``at``, widened to ``uint64`` (addresses share columns)."""
    value: npt.NDArray[np.uint64] = m[:, at : at + 4].view(">u4")[:, 0].astype(np.uint64)
    return value


def u64(m: U8, at: int) -> npt.NDArray[np.uint64]:
    """The big-endian 64-bit field at column ``at`` (an IPv6 address half)."""
    value: npt.NDArray[np.uint64] = m[:, at : at + 8].view(">u8")[:, 0].astype(np.uint64)
    return value
