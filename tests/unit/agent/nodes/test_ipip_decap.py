"""ipip_decap: the underlay destination selects VNI, type and port; a new Ethernet header towards the VM."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.ipip_decap import IpipDecap, Next
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from kubevpc_agent.tables.vnf_map import VnfMap
from testkit.dp_topology import PF0, PF1, PORTS, VF0, VF1, VF2, VM1, VM2, VM3
from testkit.overlay import REMOTE_UNDERLAY, ROUTER_MAC, build_state, receive, run_node, underlay_of

ALIAS_UNDERLAY = IPv6Address("fc00:1::d0:0:1:1")
VM_MACS = {VF0: "52:54:00:00:00:01", VF1: "52:54:00:00:00:02", VF2: "52:54:00:00:00:03"}
INNER_V4 = IP(src="192.168.1.1", dst=VM1.ip, ttl=3) / UDP(sport=53, dport=999) / b"reply"
INNER_V6 = IPv6(src="2001:db8::1", dst=VM3.ipv6, hlim=3) / UDP(sport=53, dport=999) / b"reply"


def tunnel(inner: IP | IPv6, dst: IPv6Address) -> bytes:
    nh = 4 if isinstance(inner, IP) else 41
    return bytes(
        Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac)
        / IPv6(src=str(REMOTE_UNDERLAY), dst=str(dst), nh=nh)
        / inner
    )


@pytest.fixture
def nodes() -> tuple[Cls, IpipDecap]:
    state = build_state()
    state.apply(cmd.CreatePrefix(VM2.name, IPv4Address("10.100.2.0"), 24, ALIAS_UNDERLAY))
    ports = PortTable(state)
    macs = PortMacs(PORTS)
    for port, mac in VM_MACS.items():
        macs.learn(port, mac_bytes(mac))
    return Cls(ports), IpipDecap(VnfMap(state), ports, macs)


@pytest.mark.parametrize(
    "inner, underlay, port, vni, vnf_type",
    [
        (INNER_V4, underlay_of(VM1), VF0, 100, VnfType.INTERFACE_IP),
        (INNER_V6, underlay_of(VM3), VF2, 200, VnfType.INTERFACE_IP),
        (IP(src="192.168.1.1", dst="10.100.2.7") / UDP(), ALIAS_UNDERLAY, VF1, 100, VnfType.ALIAS_PFX),
    ],
    ids=["IPv4 for an interface", "IPv6 for an interface in another VNI", "IPv4 for an alias prefix"],
)
def test_decapsulates_to_the_underlays_port(
    nodes: tuple[Cls, IpipDecap],
    inner: IP | IPv6,
    underlay: IPv6Address,
    port: int,
    vni: int,
    vnf_type: VnfType,
) -> None:
    cls, decap = nodes
    batch = receive([tunnel(inner, underlay)], PF1)
    run_node(cls, batch)
    run = run_node(decap, batch)
    assert run.edges == [Next.CONNTRACK]
    assert run.counters == {"decapsulated": 1}
    ether_type = b"\x08\x00" if isinstance(inner, IP) else b"\x86\xdd"
    assert run.frames[0] == mac_bytes(VM_MACS[port]) + mac_bytes(PORTS[port].mac) + ether_type + bytes(inner)
    assert (int(batch.vni[0]), int(batch.vnf_type[0]), int(batch.tx_port[0])) == (vni, vnf_type, port)
    assert int(batch.rx_port[0]) == PF1


def test_unknown_underlay_is_dropped(nodes: tuple[Cls, IpipDecap]) -> None:
    cls, decap = nodes
    frames = [tunnel(INNER_V4, IPv6Address("fc00:1::d0:0:0:99")), tunnel(INNER_V4, underlay_of(VM1))]
    batch = receive(frames, PF0)
    run_node(cls, batch)
    run = run_node(decap, batch)
    assert run.edges == [Next.DROP, Next.CONNTRACK]
    assert run.counters == {"no_underlay_match": 1, "decapsulated": 1}
    assert run.frames[1][14:] == bytes(INNER_V4)


def test_underlays_sharing_a_low_half_are_told_apart() -> None:
    """All generated underlays share the host /64, but a client may bring one from elsewhere."""
    state = build_state(vms=(VM1,))
    other = IPv6Address(f"fc00:99::{str(underlay_of(VM1)).split('::')[1]}")
    assert int(other) & (2**64 - 1) == int(underlay_of(VM1)) & (2**64 - 1)
    state.apply(cmd.CreatePrefix(VM1.name, IPv4Address("10.9.0.0"), 16, other))
    ports = PortTable(state)
    cls, decap = Cls(ports), IpipDecap(VnfMap(state), ports, PortMacs(PORTS))
    batch = receive([tunnel(INNER_V4, other), tunnel(INNER_V4, underlay_of(VM1))], PF0)
    run_node(cls, batch)
    run_node(decap, batch)
    assert batch.vnf_type.tolist() == [VnfType.ALIAS_PFX, VnfType.INTERFACE_IP]
