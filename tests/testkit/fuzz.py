"""Frames and checks shared by the fuzz tests: seed frames of every kind the pipeline handles
(ARP, DHCP, ND, TCP/UDP/ICMP in both families, IP-in-IPv6 from the underlay), running a harness
until every port is drained, and the invariants that must hold whatever came in."""

from __future__ import annotations

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Solicit
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6ND_RS, IPv6
from scapy.layers.l2 import ARP, Ether

from kubevpc_agent.graph.graph import Graph
from testkit.dp_topology import PF0, PF1, VF0, VF1, VF2, VF3, VM1, VM2
from testkit.overlay import REMOTE_UNDERLAY, Harness, underlay_of

PORT_IDS = [PF0, PF1, VF0, VF1, VF2, VF3]
ROUTE_DROPS = {"no_route", "uplink_to_uplink", "bad_next_hop"}
DROP_REASONS = {  # the hot-path nodes' drop-reason counters (the others count what went through)
    "cls": None,  # every cls counter is a drop reason
    "ipv4_lookup": ROUTE_DROPS,
    "ipv6_lookup": ROUTE_DROPS,
    "ipip_encap": {"no_headroom", "not_ip", "not_an_uplink"},
    "ipip_decap": {"no_underlay_match", "bad_port"},
}


def _tunnel(inner: object, nh: int) -> bytes:
    return bytes(Ether() / IPv6(src=str(REMOTE_UNDERLAY), dst=str(underlay_of(VM1)), nh=nh) / inner)


SEEDS = [
    bytes(Ether() / IP(src=VM1.ip, dst=VM2.ip) / TCP(flags="S") / b"data"),
    bytes(Ether() / IP(src=VM1.ip, dst="192.168.1.1") / UDP(dport=53) / b"q"),
    bytes(Ether() / IP(src=VM1.ip, dst=VM2.ip) / ICMP(type=3, code=3) / IP() / UDP()),
    bytes(Ether() / IPv6(src=VM1.ipv6, dst=VM2.ipv6) / ICMPv6EchoRequest()),
    bytes(Ether() / IPv6(src="fe80::2", dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fe80::1")),
    bytes(Ether() / IPv6(src="fe80::2", dst="ff02::2") / ICMPv6ND_RS()),
    bytes(Ether() / ARP(pdst="169.254.0.1", psrc=VM1.ip)),
    bytes(
        Ether()
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP()
        / DHCP(options=[("message-type", "discover"), "end"])
    ),
    bytes(Ether() / IPv6(src="fe80::2", dst="ff02::1:2") / UDP(sport=546, dport=547) / DHCP6_Solicit()),
    _tunnel(IP(src="192.168.1.1", dst=VM1.ip) / TCP(), 4),
    _tunnel(IPv6(src="2001:db8::1", dst=VM1.ipv6) / UDP(), 41),
]


def drain(h: Harness, batch: int = 1024) -> None:
    """Run the graph until no port has frames waiting (one batch at a time, as the worker does, so
    the pool never runs out)."""
    pending = True
    while pending:
        pending = False
        for port in h.ports:
            if port.rx_queue:
                pending = True
                h.graph.enqueue(port.receive(h.pool, batch))
                h.graph.run()


def drops_by_node(graph: Graph) -> dict[str, int]:
    return {node.name: graph.stats[i].drops for i, node in enumerate(graph.nodes)}


def assert_conserved(h: Harness, received: int) -> None:
    """Every frame that came in left a port or was dropped, with exactly one reason on the hot path,
    and every pool slot is back."""
    assert [p.rx_dropped for p in h.ports] == [0] * len(h.ports), "a port found no pool slot"
    c = h.counters()
    out = c.get("tx.sent", 0) + c.get("tx.port_refused", 0) + c.get("tx.no_tx_port", 0)
    assert out + c.get("drop.dropped", 0) == received, c
    assert h.pool.available == h.pool.capacity
    sent = sum(len(p.take_sent()) for p in h.ports)
    assert sent == c.get("tx.sent", 0)
    drops = drops_by_node(h.graph)
    for name, names in DROP_REASONS.items():
        counters = h.graph.node(name).counter_values()
        reasons = {k: v for k, v in counters.items() if names is None or k in names}
        assert sum(reasons.values()) == drops[name], (name, reasons, drops[name])
