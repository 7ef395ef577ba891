"""The few bpf(2) calls an AF_XDP port needs, through ctypes: an XSK map, a redirect program, an XDP link.

The program is five instructions, written out here instead of compiled (no clang, no libbpf at
run time)::

    r2 = *(u32 *)(r1 + 16)          ; ctx->rx_queue_index
    r1 = <xsk map>                  ; ld_imm64, BPF_PSEUDO_MAP_FD
    r3 = XDP_PASS                   ; what to do when the queue has no socket
    call bpf_redirect_map
    exit

It hands every frame of the netdev to the AF_XDP socket of its queue; the uplink variant
(``underlay_only``) first checks for IPv6 with next header 4 or 41 and passes everything else to
the kernel. It is attached with a BPF
link (``BPF_LINK_CREATE``), which the kernel detaches by itself when the last fd of the link is
closed: when the dataplane worker exits, the netdev is back to normal.
"""

from __future__ import annotations

import ctypes
import os
import struct

SYS_BPF = 321  # x86_64
BPF_MAP_CREATE = 0
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_MAP_TYPE_XSKMAP = 17
BPF_PROG_TYPE_XDP = 6
BPF_XDP = 37  # attach type
BPF_PSEUDO_MAP_FD = 1
BPF_FUNC_REDIRECT_MAP = 51
XDP_PASS = 2
XDP_FLAGS_SKB_MODE = 1 << 1  # generic XDP: works on every netdev

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class BpfError(OSError):
    """A bpf(2) call failed (no CAP_BPF, old kernel, verifier refusal: see the message)."""


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    ret = int(_libc.syscall(SYS_BPF, cmd, buf, 128))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def create_xsk_map(entries: int) -> int:
    """An XSKMAP (queue id -> AF_XDP socket) with ``entries`` slots; returns its fd."""
    return _bpf(BPF_MAP_CREATE, struct.pack("IIII", BPF_MAP_TYPE_XSKMAP, 4, 4, entries))


def set_xsk(map_fd: int, queue: int, xsk_fd: int) -> None:
    key, value = ctypes.c_uint32(queue), ctypes.c_uint32(xsk_fd)
    _bpf(
        BPF_MAP_UPDATE_ELEM,
        struct.pack("IIQQQ", map_fd, 0, ctypes.addressof(key), ctypes.addressof(value), 0),
    )


def _redirect(map_fd: int) -> list[bytes]:
    return [
        _insn(0x61, dst=2, src=1, off=16),  # ldxw r2, [r1 + 16]      ctx->rx_queue_index
        _insn(0x18, dst=1, src=BPF_PSEUDO_MAP_FD, imm=map_fd),  # ld_imm64 r1, map
        _insn(0x00),
        _insn(0xB7, dst=3, imm=XDP_PASS),  # mov64 r3, XDP_PASS
        _insn(0x85, imm=BPF_FUNC_REDIRECT_MAP),  # call bpf_redirect_map
        _insn(0x95),  # exit
    ]


def _ipip_only(map_fd: int) -> list[bytes]:
    """Redirect only IPv6 frames whose next header is 4 or 41 (the underlay); pass the rest.

    For an uplink shared with the host: its own traffic (neighbour discovery, management) stays
    with the kernel, as dpservice's flow isolation does on a Mellanox PF.
    """
    return [
        _insn(0x61, dst=2, src=1, off=0),  # 0: ldxw r2, [r1 + 0]      ctx->data
        _insn(0x61, dst=3, src=1, off=4),  # 1: ldxw r3, [r1 + 4]      ctx->data_end
        _insn(0xBF, dst=4, src=2),  # 2: mov64 r4, r2
        _insn(0x07, dst=4, imm=21),  # 3: add64 r4, 21
        _insn(0x2D, dst=4, src=3, off=11),  # 4: if r4 > r3 goto 16 (pass)
        _insn(0x69, dst=5, src=2, off=12),  # 5: ldxh r5, [r2 + 12]     ethertype
        _insn(0x55, dst=5, off=9, imm=0xDD86),  # 6: if r5 != htons(0x86dd) goto 16
        _insn(0x71, dst=5, src=2, off=20),  # 7: ldxb r5, [r2 + 20]     next header
        _insn(0x15, dst=5, off=1, imm=4),  # 8: if r5 == 4 goto 10
        _insn(0x55, dst=5, off=6, imm=41),  # 9: if r5 != 41 goto 16
        *_redirect(map_fd),  # 10-15
        _insn(0xB7, dst=0, imm=XDP_PASS),  # 16: mov64 r0, XDP_PASS
        _insn(0x95),  # 17: exit
    ]


def load_redirect_program(map_fd: int, underlay_only: bool = False) -> int:
    """A redirect program, loaded; returns its fd (the verifier log is in the error).

    ``underlay_only``: redirect only IP-in-IPv6 frames (for an uplink), else every frame.
    """
    insns = b"".join(_ipip_only(map_fd) if underlay_only else _redirect(map_fd))
    prog = ctypes.create_string_buffer(insns)
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(4096)
    attr = struct.pack(
        "IIQQIIQII16sII",
        BPF_PROG_TYPE_XDP,
        len(insns) // 8,
        ctypes.addressof(prog),
        ctypes.addressof(license_),
        1,  # log level
        len(log),
        ctypes.addressof(log),
        0,  # kern_version
        0,  # prog_flags
        b"kvpc_xsk",
        0,  # prog_ifindex
        BPF_XDP,  # expected_attach_type
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except BpfError as exc:
        raise BpfError(exc.errno, f"{exc.strerror}; verifier: {log.value.decode(errors='replace')}") from None


def attach_xdp(prog_fd: int, ifindex: int, flags: int = 0) -> int:
    """Attach ``prog_fd`` to a netdev with a BPF link; returns the link fd (close it to detach)."""
    return _bpf(BPF_LINK_CREATE, struct.pack("IIII", prog_fd, ifindex, BPF_XDP, flags))
