"""The underlay exact-match table, and the per-port view (VNI, attachment, encap source)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import numpy as np

from kubevpc_agent.protocols.ipv6 import split
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.model import VnfType
from kubevpc_agent.tables.port_table import PortTable
from kubevpc_agent.tables.vnf_map import MISS, VnfMap
from testkit.dp_topology import CONFIG, PF0, PF1, VF0, VF1, VF2, VF3, VM1, VM2
from testkit.overlay import build_state, underlay_of


def lookup(vnf: VnfMap, addrs: list[IPv6Address]) -> list[int]:
    halves = [split(a) for a in addrs]
    return vnf.lookup(
        np.array([h for h, _ in halves], np.uint64), np.array([lo for _, lo in halves], np.uint64)
    ).tolist()


def test_every_underlay_maps_to_its_entry_and_others_miss() -> None:
    state = build_state()
    alias = IPv6Address("fc00:1::d0:0:1:1")
    state.apply(cmd.CreatePrefix(VM2.name, IPv4Address("10.100.2.0"), 24, alias))
    vnf = VnfMap(state)
    found = lookup(vnf, [underlay_of(VM1), alias, IPv6Address("fc00:1::1"), IPv6Address("::")])
    assert found[2:] == [MISS, MISS]
    assert (int(vnf.vni[found[0]]), int(vnf.vnf_type[found[0]]), int(vnf.port[found[0]])) == (
        100,
        VnfType.INTERFACE_IP,
        VF0,
    )
    assert (int(vnf.vnf_type[found[1]]), int(vnf.port[found[1]])) == (VnfType.ALIAS_PFX, VF1)


def test_table_follows_the_state() -> None:
    state = build_state(vms=(VM1,))
    vnf = VnfMap(state)
    assert lookup(vnf, [underlay_of(VM1)]) != [MISS]
    state.apply(cmd.DeleteInterface(VM1.name))
    assert vnf.refresh()
    assert lookup(vnf, [underlay_of(VM1)]) == [MISS]


def test_port_table() -> None:
    state = build_state(vms=(VM1,))
    ports = PortTable(state)
    assert ports.is_pf.tolist() == [True, True, False, False, False, False]
    assert ports.attached.tolist() == [True, True, True, False, False, False]
    assert int(ports.vni[VF0]) == 100
    assert (int(ports.ul_hi[VF0]), int(ports.ul_lo[VF0])) == split(underlay_of(VM1))
    assert (int(ports.ul_hi[PF1]), int(ports.ul_lo[PF1])) == split(CONFIG.underlay_ipv6)
    assert (int(ports.ul_hi[VF2]), int(ports.ul_lo[VF2])) == split(CONFIG.underlay_ipv6)
    idx, valid = ports.index(np.array([PF0, VF3, -1, 99], dtype=np.int16))
    assert valid.tolist() == [True, True, False, False]
    assert idx.tolist()[:2] == [PF0, VF3]
