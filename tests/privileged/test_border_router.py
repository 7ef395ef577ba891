"""The border router fixture: a tunnelled echo request reaches the internet, the reply comes back."""

from __future__ import annotations

import socket

import pytest
from scapy.layers.inet import ICMP, IP

from testkit.border_router import INTERNET_V4, BorderRouter, attach_internet
from testkit.netns import NetnsPool, inside, wait_for

pytestmark = pytest.mark.privileged

BORDER = "fc00::ffff"
NODE = "fc00:1::1"
PUBLIC = "172.20.0.1"


def test_decapsulates_to_the_internet_and_encapsulates_back(netns: NetnsPool) -> None:
    router = netns.netns("router")
    node = netns.netns("node")
    netns.veth("ul0", node, "n1", router)
    for ns in (router, node):
        ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
    router.ip("-6", "addr", "add", "fc00:1::fffe/64", "dev", "n1", "nodad")
    node.ip("-6", "addr", "add", f"{NODE}/64", "dev", "ul0", "nodad")
    node.ip("-6", "route", "add", "default", "via", "fc00:1::fffe")
    attach_internet(netns, router)
    with BorderRouter(router, BORDER) as border:
        border.announce(PUBLIC, NODE)
        with inside(node):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 4)  # IPv6 next header 4: IPv4 inside
        with sock:
            sock.settimeout(0.2)
            request = IP(src=PUBLIC, dst=str(INTERNET_V4)) / ICMP(id=0x40, seq=1)
            replies: list[IP] = []

            def answered() -> bool:
                sock.sendto(bytes(request), (BORDER, 0))
                try:
                    data = sock.recv(2048)
                except TimeoutError:
                    return False
                replies.append(IP(data))
                return True

            wait_for(answered, timeout=10, what="the tunnelled echo reply")
        border.check()
    reply = replies[0]
    assert (reply.src, reply.dst) == (str(INTERNET_V4), PUBLIC)
    assert reply[ICMP].type == 0 and reply[ICMP].id == 0x40
    assert border.counters.decapsulated >= 1 and border.counters.encapsulated >= 1
