"""Where the uplink's next hop lives: the underlay router's MAC behind each PF.

Three sources, as in dpservice plus two for setups without a routing daemon:

* the kernel's IPv6 neighbour table of the PF netdev: an entry flagged ``NTF_ROUTER`` (dpservice
  ``dp_netlink.c``), polled with back-off 1, 2, 4 … 60 s;
* a static MAC given at start-up (``DataplaneOptions.router_macs``), which always wins;
* learning: the source MAC of IP-in-IPv6 frames received on the PF (the worker checks the last
  frame of each PF batch, so it costs one frame's worth of work per batch).
"""

from __future__ import annotations

import logging
import socket

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

NTF_ROUTER = 0x80
NUD_INCOMPLETE = 0x01
NUD_FAILED = 0x20
NUD_NOARP = 0x40
BACKOFF_MAX = 60.0


def kernel_router_mac(ifname: str) -> bytes | None:
    """The lladdr of a router neighbour on ``ifname`` (IPv6 table), if the kernel knows one."""
    try:
        ifindex = socket.if_nametoindex(ifname)
    except OSError:
        return None
    try:
        with IPRoute() as ipr:
            entries = list(ipr.get_neighbours(family=socket.AF_INET6, ifindex=ifindex))
    except Exception as exc:  # netlink trouble must never stop the dataplane
        log.debug("neighbour dump on %s failed: %s", ifname, exc)
        return None
    best: bytes | None = None
    for entry in entries:
        if not entry["flags"] & NTF_ROUTER or entry["state"] & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP):
            continue
        lladdr = entry.get_attr("NDA_LLADDR")
        if lladdr:
            best = bytes.fromhex(str(lladdr).replace(":", ""))
    return best


class Backoff:
    """When to look next: 1, 2, 4 … 60 s after each miss, every 60 s once found."""

    def __init__(self, now: float) -> None:
        self.delay = 1.0
        self.due = now

    def next(self, now: float, found: bool) -> None:
        if found:
            self.due = now + BACKOFF_MAX
            return
        self.due = now + self.delay
        self.delay = min(self.delay * 2, BACKOFF_MAX)
