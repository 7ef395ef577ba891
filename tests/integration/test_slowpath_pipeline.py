"""The slow-path nodes inside the whole pipeline: cls/conntrack steer VM requests to them, tx sends
the answers back out of the port they came in on (DPSERVICE.md §3.1: arp, ipv6_nd, dhcp, dhcpv6)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Advertise,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from kubevpc_agent.tables.vm_mac import mac_bytes
from testkit.dp_topology import CONFIG, PF0, PORTS, VF1, VM2
from testkit.overlay import Harness, build_state

CLIENT_LL = "fe80::6466:66ff:fe66:6601"


def arp_request() -> bytes:
    return bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=VM2.mac) / ARP(pdst="169.254.0.1", hwsrc=VM2.mac, psrc=VM2.ip)
    )


def dhcp_discover() -> bytes:
    return bytes(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=VM2.mac)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=mac_bytes(VM2.mac))
        / DHCP(options=[("message-type", "discover"), "end"])
    )


def dhcpv6_solicit() -> bytes:
    return bytes(
        Ether(dst="33:33:00:01:00:02", src=VM2.mac)
        / IPv6(src=CLIENT_LL, dst="ff02::1:2")
        / UDP(sport=546, dport=547)
        / DHCP6_Solicit(trid=5)
        / DHCP6OptClientId(duid=DUID_LL(lladdr=VM2.mac))
        / DHCP6OptIA_NA(iaid=7)
    )


def neighbor_solicitation() -> bytes:
    return bytes(
        Ether(dst="33:33:ff:00:00:01", src=VM2.mac)
        / IPv6(src=CLIENT_LL, dst="ff02::1:ff00:1", hlim=255)
        / ICMPv6ND_NS(tgt="fe80::1")
        / ICMPv6NDOptSrcLLAddr(lladdr=VM2.mac)
    )


def router_solicitation() -> bytes:
    return bytes(
        Ether(dst="33:33:00:00:00:02", src=VM2.mac)
        / IPv6(src=CLIENT_LL, dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
    )


def test_every_slow_path_request_is_answered_on_its_port() -> None:
    harness = Harness(build_state())
    frames = [
        arp_request(),
        dhcp_discover(),
        dhcpv6_solicit(),
        neighbor_solicitation(),
        router_solicitation(),
    ]
    out = harness.send(VF1, frames)
    assert list(out) == [VF1]  # nothing leaks to other VFs or the uplinks
    replies = [Ether(f) for f in out[VF1]]
    assert all(r.src == PORTS[VF1].mac for r in replies)
    by_kind = {
        "arp": [r for r in replies if ARP in r and r[ARP].op == 2],
        "dhcp": [r for r in replies if BOOTP in r and r[BOOTP].yiaddr == VM2.ip],
        "dhcpv6": [r for r in replies if DHCP6_Advertise in r and r[DHCP6OptIAAddress].addr == VM2.ipv6],
        "na": [r for r in replies if ICMPv6ND_NA in r],
        "ra": [r for r in replies if ICMPv6ND_RA in r],
    }
    assert {k: len(v) for k, v in by_kind.items()} == {"arp": 1, "dhcp": 1, "dhcpv6": 1, "na": 1, "ra": 1}
    counters = harness.counters()
    assert counters["arp.replied"] == 1
    assert counters["dhcp.offered"] == 1
    assert counters["dhcpv6.advertised"] == 1
    assert counters["ipv6_nd.neighbor_advertised"] == 1
    assert counters["ipv6_nd.router_advertised"] == 1
    assert harness.pool.available == harness.pool.capacity


def test_nd_is_dropped_without_ipv6_overlay() -> None:
    harness = Harness(build_state(replace(CONFIG, enable_ipv6_overlay=False)))
    assert harness.send(VF1, [neighbor_solicitation(), router_solicitation()]) == {}
    assert harness.counters()["ipv6_nd.overlay_disabled"] == 2


@pytest.mark.parametrize("frame", [arp_request(), dhcp_discover()], ids=["arp", "dhcp"])
def test_uplink_requests_get_no_answer(frame: bytes) -> None:
    harness = Harness(build_state())
    assert harness.send(PF0, [frame]) == {}
    assert harness.pool.available == harness.pool.capacity
