"""A border router between the IPv6 underlay and an "internet" namespace, for real-client tests.

Why it exists: in production the underlay's border routers terminate the IP-in-IPv6 tunnels the
agents send towards the default route's next hop (dpservice's tests call it ``fc00::ffff``) and
send internet traffic for a public IP (a VIP, a NAT IP, a load balancer) back encapsulated
towards the underlay address the agent registered for it. Tests need the same to let a VM fetch
a page from a server "on the internet", but this kernel has no ``ip6tnl``/``ipip`` tunnel
devices, so this fixture does the tunnel work in user space.

How: a TUN device in the router namespace takes both directions from the kernel's routing.

* ``address/128 dev tun``: encapsulated packets for the router's underlay address come out of the
  TUN; their inner IPv4/IPv6 packet is written back into it, and the kernel forwards it to the
  internet namespace like any received packet.
* ``<public>/len dev tun`` for every :meth:`BorderRouter.announce`: internet packets for a public
  address come out of the TUN; they are wrapped in ``IPv6(src = address, dst = the announced
  underlay, next header 4 or 41, hop limit 64)`` and written back, and the kernel routes them to
  the node that owns that underlay (the lab router's per-node routes).

:func:`attach_internet` adds the internet namespace itself: a veth to the router, the router at
``45.86.6.1/24`` and ``2001:db8:ffff::1/64``, the server at ``45.86.6.6`` and ``2001:db8:ffff::6``
(dpservice's public test address), default routes back through the router.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_network

from kubevpc_agent.lab.topology import Lab
from testkit.netns import Netns, NetnsPool, inside, leftover_namespaces

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPV6_HEADER = struct.Struct("!IHBB16s16s")
NH_IPIP, NH_IPV6 = 4, 41
HOP_LIMIT = 64

INTERNET_V4 = IPv4Address("45.86.6.6")  # dpservice's "public" test address
INTERNET_V6 = IPv6Address("2001:db8:ffff::6")
ROUTER_V4 = IPv4Address("45.86.6.1")
ROUTER_V6 = IPv6Address("2001:db8:ffff::1")


@dataclass
class Counters:
    decapsulated: int = 0
    encapsulated: int = 0
    ignored: int = 0  # neither tunnelled to us nor for an announced public address


class BorderRouter:
    """User-space IP-in-IPv6 termination in ``router``; see the module docstring."""

    def __init__(self, router: Netns, address: IPv6Address | str, tun: str = "kvpc-border") -> None:
        self.router = router
        self.address = IPv6Address(address)
        self.tun = tun
        self.routes: list[tuple[IPv4Address | IPv6Address, int, IPv6Address]] = []  # (net, len, underlay)
        self.counters = Counters()
        self._fd = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def __enter__(self) -> BorderRouter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        with inside(self.router):  # the TUN netdev is created in the namespace of the opener
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", self.tun.encode(), IFF_TUN | IFF_NO_PI))
        self._fd = fd
        r = self.router
        r.ip("link", "set", self.tun, "up")
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            r.sysctl(key, 1)
        for scope in ("all", "default", self.tun):
            r.sysctl(f"net.ipv4.conf.{scope}.rp_filter", 0)
        r.ip("-6", "route", "replace", f"{self.address}/128", "dev", self.tun)
        self._thread = threading.Thread(target=self._loop, name="border-router", daemon=True)
        self._thread.start()

    def announce(self, public: str | IPv4Address | IPv6Address, underlay: IPv6Address | str) -> None:
        """Send internet traffic for ``public`` (an address or prefix) to ``underlay``, encapsulated."""
        net = ip_network(str(public), strict=False)
        family = "-4" if net.version == 4 else "-6"
        with self._lock:
            self.routes = [r for r in self.routes if (r[0], r[1]) != (net.network_address, net.prefixlen)]
            self.routes.append((net.network_address, net.prefixlen, IPv6Address(underlay)))
            self.routes.sort(key=lambda r: -r[1])  # longest prefix first
        self.router.ip(family, "route", "replace", str(net), "dev", self.tun)

    def withdraw(self, public: str | IPv4Address | IPv6Address) -> None:
        net = ip_network(str(public), strict=False)
        with self._lock:
            self.routes = [r for r in self.routes if (r[0], r[1]) != (net.network_address, net.prefixlen)]
        self.router.ip("-4" if net.version == 4 else "-6", "route", "del", str(net), check=False)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._fd >= 0:
            os.close(self._fd)  # the TUN netdev and its routes go with the fd
            self._fd = -1

    def check(self) -> None:
        """Raise what the forwarding thread died of, if anything."""
        if self.error is not None:
            raise AssertionError("border router failed") from self.error

    # --- forwarding --------------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._fd], [], [], 0.05)
                if not ready:
                    continue
                while True:
                    try:
                        packet = os.read(self._fd, 65536)
                    except BlockingIOError:
                        break
                    out = self.forward(packet)
                    if out is not None:
                        os.write(self._fd, out)
        except BaseException as exc:  # surfaced by check()
            self.error = exc

    def forward(self, packet: bytes) -> bytes | None:
        """What to write back into the TUN for one packet read from it (None: drop it)."""
        version = packet[0] >> 4 if packet else 0
        if version == 6 and len(packet) >= 40:
            _, plen, nh, _, _, dst = IPV6_HEADER.unpack_from(packet)
            if dst == self.address.packed and nh in (NH_IPIP, NH_IPV6):
                self.counters.decapsulated += 1
                return packet[40 : 40 + plen]
        dst_ip = self._destination(packet, version)
        underlay = None if dst_ip is None else self._underlay_for(dst_ip)
        if underlay is None:
            self.counters.ignored += 1
            return None
        self.counters.encapsulated += 1
        nh = NH_IPIP if version == 4 else NH_IPV6
        outer = IPV6_HEADER.pack(0x60000000, len(packet), nh, HOP_LIMIT, self.address.packed, underlay.packed)
        return outer + packet

    @staticmethod
    def _destination(packet: bytes, version: int) -> IPv4Address | IPv6Address | None:
        if version == 4 and len(packet) >= 20:
            return IPv4Address(packet[16:20])
        if version == 6 and len(packet) >= 40:
            return IPv6Address(packet[24:40])
        return None

    def _underlay_for(self, dst: IPv4Address | IPv6Address) -> IPv6Address | None:
        with self._lock:
            routes = list(self.routes)
        for net, length, underlay in routes:
            if (
                net.version == dst.version
                and ip_network(f"{dst}/{length}", strict=False).network_address == net
            ):
                return underlay
        return None


def attach_internet(pool: NetnsPool, router: Netns, name: str = "inet") -> Netns:
    """An "internet" namespace behind ``router`` holding the server addresses (module docstring)."""
    inet = pool.netns(name)
    pool.veth("inet0", router, "eth0", inet)
    router.ip("addr", "add", f"{ROUTER_V4}/24", "dev", "inet0")
    router.ip("-6", "addr", "add", f"{ROUTER_V6}/64", "dev", "inet0", "nodad")
    inet.ip("addr", "add", f"{INTERNET_V4}/24", "dev", "eth0")
    inet.ip("-6", "addr", "add", f"{INTERNET_V6}/64", "dev", "eth0", "nodad")
    inet.ip("route", "add", "default", "via", str(ROUTER_V4))
    inet.ip("-6", "route", "add", "default", "via", str(ROUTER_V6))
    with contextlib.suppress(Exception):
        inet.sysctl("net.ipv6.conf.all.accept_dad", 0)
    return inet


@contextlib.contextmanager
def lab_with_border(border: str) -> Iterator[tuple[NetnsPool, Lab, BorderRouter]]:
    """A lab whose underlay router also hosts the border router ``border``; on the way out the
    border stops, the lab and its namespaces go, and none may be left behind."""
    pool = NetnsPool()
    lab = Lab(pool)
    router = BorderRouter(lab.router, border)
    try:
        yield pool, lab, router
    finally:
        names = [ns.name for ns in pool.namespaces]
        router.stop()
        lab.close()
        pool.close()
        assert leftover_namespaces(names) == []
