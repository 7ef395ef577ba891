"""Properties of the flow table and the NAT port allocator (hypothesis).

* NAT never hands the same (NAT IP, NAT port, destination, destination port, protocol) to two live
  flows, ports stay inside their slice, one VM port keeps one NAT port for all destinations, and
  the allocator's bookkeeping equals what the live flows hold (nothing leaks, nothing is missing);
* ageing removes exactly the flows idle beyond their timeout, and only those;
* a flood of new flows never grows the table past its capacity and established flows survive it.
"""

from __future__ import annotations

from collections import Counter as Tally
from ipaddress import IPv6Address

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from kubevpc_agent.graph.batch import L3
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import NO_FLOW, FlowTable, KeyFields, NatType, invert, make_keys
from kubevpc_agent.tables.nat import NatPorts
from testkit.dp_topology import PORTS, VM1, VM2
from testkit.nat_rig import NAT_IP, NAT_UL, NatRig
from testkit.overlay import run_node

DESTINATIONS = ["45.86.6.6", "45.86.6.106", "45.86.6.206"]
VMS = [VM1, VM2]
SLICES = {VM1.name: (100, 104), VM2.name: (104, 106)}  # one NAT IP shared by two VMs, disjoint slices

new_flow = st.tuples(
    st.just("new"),
    st.integers(0, 1),  # VM
    st.sampled_from([1000, 1001, 1002]),  # VM source port / ICMP identifier
    st.integers(0, 2),  # destination
    st.sampled_from([53, 443]),
    st.sampled_from(["tcp", "udp", "icmp"]),
)
expire = st.tuples(st.just("expire"), st.integers(0, 10_000))


def packet(vm_index: int, sport: int, dst_index: int, dport: int, proto: str) -> bytes:
    vm = VMS[vm_index]
    l4 = {"tcp": TCP(sport=sport, dport=dport), "udp": UDP(sport=sport, dport=dport)}.get(
        proto, ICMP(type=8, id=sport)
    )
    return bytes(Ether(src=vm.mac, dst=PORTS[vm.port].mac) / IP(src=vm.ip, dst=DESTINATIONS[dst_index]) / l4)


def check_nat_invariants(rig: NatRig) -> None:
    flows = rig.flows
    live = np.flatnonzero(flows.live & (flows.nat_type == NatType.NETWORK_LOCAL))
    orig = KeyFields.of(flows.keys[2 * live])
    reply = KeyFields.of(flows.keys[2 * live + 1])
    owners = {}
    for i, f in enumerate(live.tolist()):
        nat_port = int(reply.dport[i])
        key = (int(reply.dst_lo[i]), nat_port, int(orig.dst_lo[i]), int(orig.dport[i]), int(orig.proto[i]))
        assert key not in owners, f"flows {owners.get(key)} and {f} share {key}"
        owners[key] = f
        port_id = int(flows.created_port[f])
        vm = next(v for v in VMS if v.port == port_id)
        lo, hi = SLICES[vm.name]
        assert lo <= nat_port < hi
    # endpoint-independent: one (VM, source port or identifier) -> one NAT port
    by_source: dict[tuple[int, int], set[int]] = {}
    for i in range(len(live)):
        is_icmp = int(orig.proto[i]) == 1
        source = (int(orig.src_lo[i]), int(orig.dport[i]) if is_icmp else int(orig.sport[i]))
        by_source.setdefault(source, set()).add(int(reply.dport[i]))
    assert all(len(ports) == 1 for ports in by_source.values()), by_source
    # the allocator holds exactly what the live flows hold
    ports: NatPorts = rig.nat_ports
    assert len(ports.overload) == len(owners)
    assert sum(entry[1] for entry in ports.portmap.values()) == len(live)
    per_port = Tally(int(flows.created_port[f]) for f in live.tolist())
    assert ports.used_by_port == dict(per_port)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(new_flow, expire), min_size=1, max_size=60))
def test_nat_ports_are_never_shared_and_never_leak(ops: list[tuple[object, ...]]) -> None:
    rig = NatRig()
    for i, vm in enumerate(VMS):
        lo, hi = SLICES[vm.name]
        rig.apply(cmd.CreateNat(vm.name, NAT_IP, lo, hi, IPv6Address(int(NAT_UL) + i)))
    for op in ops:
        if op[0] == "new":
            _, vm_index, sport, dst_index, dport, proto = op
            frame = packet(int(vm_index), int(sport), int(dst_index), int(dport), str(proto))  # type: ignore[call-overload]
            run_node(rig.snat, rig.upto(rig.snat, [frame], VMS[int(vm_index)].port))  # type: ignore[call-overload]
        else:
            live = np.flatnonzero(rig.flows.live)
            if len(live):
                rig.flows.remove(live[int(op[1]) % len(live) : int(op[1]) % len(live) + 1])
        check_nat_invariants(rig)


def random_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    return make_keys(
        l3=np.full(n, L3.IPV4, np.uint8),
        proto=rng.choice(np.array([6, 17], np.uint8), n),
        src_hi=np.zeros(n, np.uint64),
        src_lo=rng.integers(0, 2**32, n).astype(np.uint64),
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=rng.integers(0, 2**32, n).astype(np.uint64),
        sport=rng.integers(1, 2**16, n).astype(np.uint16),
        dport=rng.integers(1, 2**16, n).astype(np.uint16),
        vni=rng.integers(1, 4, n).astype(np.uint32),
        vnf_type=np.zeros(n, np.uint8),
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    now=st.floats(0, 200),
)
def test_ageing_frees_exactly_what_expired(seed: int, n: int, now: float) -> None:
    rng = np.random.default_rng(seed)
    table = FlowTable(512, flow_timeout=30)
    keys = np.unique(random_keys(rng, n), axis=0)
    flows = table.resolve(keys, 0.0, np.zeros(len(keys), np.int16)).flow
    assert (flows != NO_FLOW).all()
    table.last_seen[flows] = rng.uniform(0, 200, len(flows))
    table.timeout[flows] = rng.choice(np.array([30, 86_400], np.uint32), len(flows))
    expected = {int(f) for f in flows if now - table.last_seen[f] > table.timeout[f]}
    assert table.age(now) == len(expected)
    found, _ = table.lookup(keys)
    reply, _ = table.lookup(invert(keys))
    for f, again, back in zip(flows.tolist(), found.tolist(), reply.tolist(), strict=True):
        if f in expected:
            assert again == NO_FLOW and back == NO_FLOW
        else:
            assert again == f and back == f
    assert table.count == len(keys) - len(expected)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), capacity=st.integers(4, 400), floods=st.integers(1, 6))
def test_flood_respects_the_bound_and_spares_established_flows(seed: int, capacity: int, floods: int) -> None:
    rng = np.random.default_rng(seed)
    table = FlowTable(capacity)
    established = np.unique(random_keys(rng, capacity // 2), axis=0)
    kept = table.resolve(established, 0.0, np.zeros(len(established), np.int16)).flow
    for _ in range(floods):
        flood = random_keys(rng, int(rng.integers(1, 3 * capacity)))
        result = table.resolve(flood, 1.0, np.zeros(len(flood), np.int16))
        assert table.count <= capacity
        assert (result.full | (result.flow != NO_FLOW) | result.conflict).all()
        again, _ = table.lookup(established)
        assert (again == kept).all()
