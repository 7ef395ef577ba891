"""A million mutated frames through the whole pipeline (BRIEF.md §7: fuzz the parsers for millions of
inputs), with NAT, a VIP, a load balancer and firewall rules configured so mutated flows reach
every network function, not only the parsers.

Frames are made with numpy in chunks: seeds of every kind (testkit.fuzz.SEEDS plus flows to the
NAT, VIP and LB addresses), up to four random byte changes, random truncation or extension, and a
share of pure random bytes, on random ports. The graph must never raise, every frame must leave a
port or be dropped with a reason, no pool slot may leak, and the network functions must have seen
traffic. ``KUBEVPC_FUZZ_FRAMES`` changes the count (default 1,000,000).
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.maglev import build_maglev, sort_targets
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, LbPort, PortRange, Protocol
from testkit.dp_topology import PORTS, VF0, VM1, VM2, VM3
from testkit.fuzz import PORT_IDS, SEEDS, assert_conserved, drain
from testkit.overlay import REMOTE_UNDERLAY, ROUTER_MAC, Harness, add_route, build_state

FRAMES = int(os.environ.get("KUBEVPC_FUZZ_FRAMES", "1000000"))
CHUNK = 16384
NAT_IP, VIP_IP, LB_IP = "172.21.1.1", "172.20.0.1", "172.22.0.1"
NAT_UL, VIP_UL, LB_UL = (IPv6Address(f"fc00:1::f{n}") for n in range(3))
TARGETS = [IPv6Address("fc00:1::d0:0:0:3"), IPv6Address("fc00:7::1")]


def from_underlay(dst: IPv6Address, inner: IP | IPv6) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(src=ROUTER_MAC, dst=PORTS[0].mac) / IPv6(src=str(REMOTE_UNDERLAY), dst=str(dst), nh=nh) / inner
    )


EXTRA_SEEDS = [
    bytes(Ether(src=VM1.mac, dst=PORTS[VF0].mac) / IP(src=VM1.ip, dst="8.8.8.8") / UDP(sport=4000, dport=53)),
    bytes(Ether(src=VM1.mac, dst=PORTS[VF0].mac) / IP(src=VM1.ip, dst=LB_IP) / TCP(dport=80, flags="S")),
    from_underlay(NAT_UL, IP(src="8.8.8.8", dst=NAT_IP) / UDP(sport=53, dport=100)),
    from_underlay(NAT_UL, IP(src="8.8.8.8", dst=NAT_IP) / ICMP(type=8)),
    from_underlay(VIP_UL, IP(src="8.8.4.4", dst=VIP_IP) / TCP(sport=5555, dport=22, flags="S")),
    from_underlay(LB_UL, IP(src="9.9.9.9", dst=LB_IP) / TCP(sport=6666, dport=80, flags="S")),
    from_underlay(LB_UL, IP(src="9.9.9.9", dst=LB_IP) / ICMP(type=8)),
]


def configured_harness() -> Harness:
    state = build_state()
    add_route(state, 100, "0.0.0.0/0")
    add_route(state, 100, "::/0", IPv6Address("fc00:9::1"))
    h = Harness(state)
    h.apply(cmd.CreateNat(VM1.name, IPv4Address(NAT_IP), 100, 102, NAT_UL))
    h.apply(cmd.CreateVip(VM2.name, IPv4Address(VIP_IP), VIP_UL))
    h.apply(cmd.CreateLoadBalancer("lb", 100, ip_address(LB_IP), (LbPort(Protocol.TCP, 80),), LB_UL))
    for i in range(len(TARGETS)):
        h.apply(cmd.CreateLbTarget("lb", TARGETS[i], build_maglev(sort_targets(TARGETS[: i + 1]))))
    rule = FirewallRule(
        id="deny-ssh",
        direction=Direction.INGRESS,
        action=Action.DROP,
        priority=100,
        source=ip_network("0.0.0.0/0"),
        destination=ip_network("0.0.0.0/0"),
        protocol=Protocol.TCP,
        src_ports=PortRange(-1, -1),
        dst_ports=PortRange(22, 22),
    )
    h.apply(cmd.CreateFirewallRule(VM3.name, rule, ip_address("0.0.0.0"), ip_address("0.0.0.0")))
    return h


def mutated_chunk(rng: np.random.Generator, seeds: list[bytes], n: int) -> list[bytes]:
    """``n`` frames: seeds with byte changes, truncated or extended, and 10 % random bytes."""
    width = max(len(s) for s in seeds) + 8  # room for an extension of up to 8 random bytes
    base = np.zeros((len(seeds), width), dtype=np.uint8)
    seed_len = np.array([len(s) for s in seeds])
    for i, seed in enumerate(seeds):
        base[i, : len(seed)] = np.frombuffer(seed, dtype=np.uint8)
    pick = rng.integers(0, len(seeds), n)
    frames = base[pick]
    lengths = seed_len[pick].copy()
    tail = rng.integers(0, 256, (n, width), dtype=np.uint8)  # what an extension appends
    grow = np.arange(width)[None, :] >= lengths[:, None]
    frames[grow] = tail[grow]
    for _ in range(4):  # up to four byte changes per frame, anywhere inside it
        hit = rng.random(n) < 0.5
        at = (rng.random(n) * lengths).astype(np.int64)
        frames[np.flatnonzero(hit), at[hit]] = rng.integers(0, 256, int(hit.sum()), dtype=np.uint8)
    cut = rng.random(n)
    lengths = np.where(cut < 0.25, (rng.random(n) * (lengths + 1)).astype(np.int64), lengths)
    lengths = np.where(cut > 0.9, np.minimum(lengths + rng.integers(1, 9, n), width), lengths)
    noise = rng.random(n) < 0.1
    frames[noise] = tail[noise]
    lengths[noise] = rng.integers(0, 161, int(noise.sum()))
    return [frames[i, : lengths[i]].tobytes() for i in range(n)]


@pytest.mark.slow
def test_a_million_mutated_frames_are_forwarded_or_counted() -> None:
    rng = np.random.default_rng(20261125)
    h = configured_harness()
    seeds = [*SEEDS, *EXTRA_SEEDS]
    done = 0
    while done < FRAMES:
        n = min(CHUNK, FRAMES - done)
        ports = rng.choice(PORT_IDS, n)
        frames = mutated_chunk(rng, seeds, n)
        for port in PORT_IDS:
            h.ports[port].inject([f for f, p in zip(frames, ports, strict=True) if p == port])
        drain(h)
        done += n
    assert_conserved(h, FRAMES)
    seen = {node.name: h.graph.stats[i].packets for i, node in enumerate(h.graph.nodes)}
    for name in ("conntrack", "dnat", "snat", "lb", "firewall", "ipip_encap", "ipip_decap", "arp", "dhcp"):
        assert seen[name] > 0, f"{name} never saw a frame: {seen}"
    counters = h.counters()
    assert counters.get("tx.sent", 0) > FRAMES // 100, counters  # plenty still made it through
