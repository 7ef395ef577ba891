"""ipv6_lookup: the IPv6 overlay's longest prefix per VNI; underlay routes always leave through pf0."""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv6Address

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.nodes.cls import Cls
from kubevpc_agent.nodes.ipv6_lookup import Ipv6Lookup, Next
from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.lpm import Lpm6
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.dp_topology import CONFIG, PF0, PORTS, VF0, VF1, VF2, VM1, VM2, VM3
from testkit.overlay import REMOTE_UNDERLAY, add_route, build_state, receive, run_node

NH_64, NH_DEFAULT = IPv6Address("fc00:3::1"), IPv6Address("fc00:9::1")
VM2_MAC = "52:54:00:00:00:02"


def make_state() -> AgentState:
    state = build_state(replace(CONFIG, wcmp_percent=50))  # WCMP does not apply to IPv6
    add_route(state, 100, "2001:db8::/32")
    add_route(state, 100, "2001:db8:0:7::/64", NH_64)
    add_route(state, 100, "::/0", NH_DEFAULT)
    state.apply(cmd.CreatePrefix(VM2.name, IPv6Address("2000:100:2::"), 48, IPv6Address("fc00:1::d0:0:1:1")))
    return state


@dataclass
class Row:
    description: str
    port: int
    src: str
    dst: str
    edge: Next
    tx_port: int = -1
    nexthop: IPv6Address | None = None


ROWS = [
    Row("VM to VM in one VNI", VF0, VM1.ipv6, VM2.ipv6, Next.TX, VF1),
    Row("VM to an alias prefix", VF0, VM1.ipv6, "2000:100:2::99", Next.TX, VF1),
    Row("longest prefix: /64 over /32", VF0, VM1.ipv6, "2001:db8:0:7::5", Next.IPIP_ENCAP, PF0, NH_64),
    Row("a /32 route", VF0, VM1.ipv6, "2001:db8:1::5", Next.IPIP_ENCAP, PF0, REMOTE_UNDERLAY),
    Row("the default route", VF0, VM1.ipv6, "2a00::1", Next.IPIP_ENCAP, PF0, NH_DEFAULT),
    Row(
        "the last address of the space",
        VF0,
        VM1.ipv6,
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        Next.IPIP_ENCAP,
        PF0,
        NH_DEFAULT,
    ),
    Row("VNI isolation", VF2, VM3.ipv6, VM2.ipv6, Next.DROP),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.description for r in ROWS])
def test_route(row: Row) -> None:
    state = make_state()
    ports = PortTable(state)
    macs = PortMacs(PORTS)
    macs.learn(VF1, mac_bytes(VM2_MAC))
    cls, lookup = Cls(ports), Ipv6Lookup(Lpm6(state), ports, macs)
    frame = bytes(Ether() / IPv6(src=row.src, dst=row.dst) / UDP(sport=7, dport=9))
    batch = receive([frame], row.port)
    run_node(cls, batch)
    run = run_node(lookup, batch)
    assert run.edges == [row.edge]
    if row.edge == Next.DROP:
        assert run.counters == {"no_route": 1}
        return
    assert int(batch.tx_port[0]) == row.tx_port
    if row.nexthop is None:
        assert run.counters == {"to_vm": 1}
        assert run.frames[0] == mac_bytes(VM2_MAC) + mac_bytes(PORTS[VF1].mac) + frame[12:]
    else:
        assert run.counters == {"to_underlay": 1}
        assert (int(batch.nh_hi[0]), int(batch.nh_lo[0])) == split(row.nexthop)
