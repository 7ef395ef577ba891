"""VPC isolation as a property (BRIEF.md §7): over random layouts of VPCs, overlapping addresses
and routes, no packet reaches another VPC unless a route of its own VPC sends it there.

Each example puts the four VFs of dpservice's test topology into random VNIs with addresses drawn
from a small pool (so VPCs reuse each other's addresses), adds random routes to remote underlays,
then sends frames through the whole pipeline on memory ports:

* from a VM to any address of the pool: a frame that leaves on a VF must go to a VM of the
  sender's VNI that owns the destination address; a frame that leaves on an uplink must be
  IP-in-IPv6 from the sender's underlay to the next hop of the longest route of the sender's VNI
  that covers the destination (computed here, independently of the agent's LPM);
* from the underlay to a local interface's underlay address: that interface's VM gets it and no
  other (dpservice delivers by underlay address); to an underlay address nobody here has: no VM.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from kubevpc_agent.tables import commands as cmd
from testkit.dp_topology import CONFIG, PF0, PF1, PORTS, VF0, VF1, VF2, VF3, Vm
from testkit.overlay import ROUTER_MAC, Harness, build_state, underlay_of

VFS = (VF0, VF1, VF2, VF3)
VNIS = (100, 200, 300)
HOSTS = (1, 2, 3)  # 10.0.0.N and fd00::N: few enough that VPCs collide on them
PREFIXES4 = ("0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/24", "10.0.0.0/30", "10.0.0.3/32", "192.168.0.0/16")
PREFIXES6 = ("::/0", "fd00::/16", "fd00::/126", "fd00::3/128", "2001:db8::/32")
NEXTHOPS = tuple(IPv6Address(f"fc00:{n}::64:0:1") for n in (2, 3, 4))
DESTINATIONS = (
    *(f"10.0.0.{h}" for h in (*HOSTS, 4)),
    "192.168.7.7",
    "172.16.0.1",
    *(f"fd00::{h}" for h in (*HOSTS, 4)),
    "2001:db8::7",
    "2a00::1",
)
STRANGER_UNDERLAY = IPv6Address("fc00:1::dead")


@dataclass(frozen=True)
class Layout:
    vms: tuple[Vm, ...]
    routes: tuple[tuple[int, str, IPv6Address], ...]  # (vni, prefix, nexthop)

    def vm_on(self, port: int) -> Vm:
        return next(vm for vm in self.vms if vm.port == port)

    def best_route(self, vni: int, dst: str) -> IPv6Address | None:
        """The next hop of the longest matching route of ``vni`` (the last one added on a tie)."""
        addr = ip_address(dst)
        best: tuple[int, IPv6Address] | None = None
        for route_vni, prefix, nexthop in self.routes:
            net = ip_network(prefix)
            covers = route_vni == vni and net.version == addr.version and addr in net
            if covers and (best is None or net.prefixlen >= best[0]):
                best = (net.prefixlen, nexthop)
        return None if best is None else best[1]


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    vms = []
    for i, port in enumerate(VFS):
        vni = draw(st.sampled_from(VNIS))
        # Addresses are unique inside a VNI (the API refuses duplicates), not across VNIs.
        taken = {vm.ip for vm in vms if vm.vni == vni}
        free = [h for h in HOSTS if f"10.0.0.{h}" not in taken]
        if not free:
            vni, free = 999, list(HOSTS)  # a VPC of its own
        host = draw(st.sampled_from(free))
        vms.append(Vm(f"vm{i}", port, PORTS[port].mac, vni, f"10.0.0.{host}", f"fd00::{host}"))
    routes = draw(
        st.lists(
            st.tuples(
                st.sampled_from(VNIS),
                st.sampled_from(PREFIXES4 + PREFIXES6),
                st.sampled_from(NEXTHOPS),
            ),
            max_size=8,
            unique_by=lambda r: (r[0], r[1]),
        )
    )
    # A route must not shadow a VM address of its own VNI with an equal-length prefix: the API
    # lets that through in dpservice too, but what wins is then not a question of isolation.
    # Routes only go into VNIs in use (dpservice answers NO_VNI otherwise).
    own = {(vm.vni, f"{vm.ip}/32") for vm in vms} | {(vm.vni, f"{vm.ipv6}/128") for vm in vms}
    used = {vm.vni for vm in vms}
    kept = tuple(r for r in routes if (r[0], r[1]) not in own and r[0] in used)
    return Layout(tuple(vms), kept)


def harness_for(layout: Layout) -> Harness:
    state = build_state(CONFIG, layout.vms)
    for vni, prefix, nexthop in layout.routes:
        net = ip_network(prefix)
        state.apply(cmd.CreateRoute(vni=vni, ip=net.network_address, length=net.prefixlen, nexthop=nexthop))
    return Harness(state)


def udp_to(src: str, dst: str, sport: int) -> Packet:
    layer = IP(src=src, dst=dst) if ":" not in dst else IPv6(src=src, dst=dst)
    return layer / UDP(sport=sport, dport=7000) / b"isolation"


def inner_of(frame: bytes) -> Packet:
    return Ether(frame).payload


def check_vm_frame(layout: Layout, sender: Vm, dst: str, out: dict[int, list[bytes]]) -> None:
    # Reachability first, so a pipeline that drops everything cannot pass: a VM of the sender's
    # VNI that owns the address gets the frame, otherwise the longest route takes it.
    owner = next((vm for vm in layout.vms if vm.vni == sender.vni and dst in (vm.ip, vm.ipv6)), None)
    if owner is not None and owner is not sender:
        assert owner.port in out, f"{sender.name} -> {dst}: {owner.name} of the same VPC got nothing"
    elif owner is None and layout.best_route(sender.vni, dst) is not None:
        assert set(out) & {PF0, PF1}, f"{sender.name} -> {dst}: the route's frame never left"
    for port, frames in out.items():
        for frame in frames:
            if port in (PF0, PF1):
                outer = Ether(frame)[IPv6]
                assert outer.nh in (4, 41), f"{sender.name} -> {dst}: non-encapsulated frame on an uplink"
                assert IPv6Address(outer.src) == underlay_of(sender), (sender, dst, outer.src)
                nexthop = layout.best_route(sender.vni, dst)
                assert nexthop is not None, f"{sender.name} (VNI {sender.vni}) -> {dst} left without a route"
                assert IPv6Address(outer.dst) == nexthop, (sender, dst, outer.dst, nexthop)
            elif port != sender.port:  # on its own port a VM may get answers (ICMP errors)
                receiver = layout.vm_on(port)
                assert receiver.vni == sender.vni, (
                    f"{sender.name} (VNI {sender.vni}) reached {receiver.name} (VNI {receiver.vni})"
                )
                got = inner_of(frame)
                assert got.haslayer(UDP) and bytes(got[UDP].payload) == b"isolation", got.summary()
                assert dst in (receiver.ip, receiver.ipv6), (sender, dst, receiver)


def check_underlay_frame(layout: Layout, target: IPv6Address, out: dict[int, list[bytes]]) -> None:
    """As dpservice: the underlay address names the interface, so its VM gets the frame (whatever
    the inner destination; no route check) and no other VM does."""
    owner = next((vm for vm in layout.vms if underlay_of(vm) == target), None)
    reached = {port for port in out if port not in (PF0, PF1)}
    if owner is None:
        assert not reached, f"underlay {target} belongs to nobody here, yet ports {reached} got a frame"
    else:
        assert reached == {owner.port}, f"frame for {owner.name}'s underlay reached ports {reached}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=layouts(), data=st.data())
def test_no_frame_crosses_vpcs_without_a_route(layout: Layout, data: st.DataObject) -> None:
    h = harness_for(layout)
    sport = 20000
    for sender in layout.vms:
        for dst in data.draw(st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=6)):
            sport += 1
            src = sender.ipv6 if ":" in dst else sender.ip
            frame = bytes(Ether(src=sender.mac, dst=PORTS[sender.port].mac) / udp_to(src, dst, sport))
            check_vm_frame(layout, sender, dst, h.send(sender.port, [frame]))
    targets = [underlay_of(vm) for vm in layout.vms] + [STRANGER_UNDERLAY]
    for target in data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=6)):
        for dst in data.draw(st.lists(st.sampled_from(DESTINATIONS), min_size=1, max_size=3)):
            sport += 1
            inner = udp_to("198.51.100.9" if ":" not in dst else "2001:db8:ffff::9", dst, sport)
            frame = bytes(
                Ether(src=ROUTER_MAC, dst=PORTS[PF0].mac)
                / IPv6(src=str(NEXTHOPS[0]), dst=str(target), nh=4 if isinstance(inner, IP) else 41)
                / inner
            )
            check_underlay_frame(layout, target, h.send(PF0, [frame]))


def test_the_reference_lpm_picks_the_longest_route() -> None:
    layout = Layout(
        (),
        (
            (100, "10.0.0.0/8", NEXTHOPS[0]),
            (100, "10.0.0.0/24", NEXTHOPS[1]),
            (200, "10.0.0.0/30", NEXTHOPS[2]),
        ),
    )
    assert layout.best_route(100, "10.0.0.2") == NEXTHOPS[1]
    assert layout.best_route(100, "10.9.0.2") == NEXTHOPS[0]
    assert layout.best_route(200, "10.9.0.2") is None
    assert layout.best_route(100, "fd00::1") is None


def test_a_vpc_crossing_would_be_caught() -> None:
    """The checker itself: a frame of VNI 100 delivered to a VM of VNI 200 fails it."""
    a = Vm("a", VF0, PORTS[VF0].mac, 100, "10.0.0.1", "fd00::1")
    b = Vm("b", VF1, PORTS[VF1].mac, 200, "10.0.0.2", "fd00::2")
    layout = Layout((a, b), ())
    leaked = bytes(Ether(dst=b.mac) / udp_to(a.ip, b.ip, 1))
    try:
        check_vm_frame(layout, a, b.ip, {VF1: [leaked]})
    except AssertionError as crossing:
        assert "reached b (VNI 200)" in str(crossing)
    else:
        raise AssertionError("the checker let a VPC crossing through")
