"""NAT port slices: never overlapping, stable across re-plans and restarts, freed on removal."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_operator.models import NATGateway
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.planning.nat import NatAllocation, allocate_nat_slots
from testkit import operator_objects as objects

NAMES = st.sets(st.sampled_from([f"nic-{i}" for i in range(80)]), max_size=80)
SIZES = st.sampled_from([64, 1024, 2048, 16384, 32768])
IP_COUNTS = st.integers(min_value=1, max_value=3)


def gateway(size: int, ips: int) -> NATGateway:
    return NATGateway.from_body(
        objects.nat_gateway("gw", ips=[f"203.0.113.{i + 1}" for i in range(ips)], ports=size)
    )


def overlaps(a: NatSlot, b: NatSlot) -> bool:
    return a.ip == b.ip and a.min_port < b.max_port and b.min_port < a.max_port


def check_sound(gw: NATGateway, members: set[str], allocation: NatAllocation) -> None:
    slots = list(allocation.assigned.values())
    for i, a in enumerate(slots):
        assert gw.is_slot(a)
        assert 1024 <= a.min_port < a.max_port <= 65535
        assert a.max_port - a.min_port == gw.ports_per_interface
        for b in slots[i + 1 :]:
            assert not overlaps(a, b), (a, b)
    assert set(allocation.assigned) | set(allocation.unassigned) == members
    # Exhaustion only when every slot is taken.
    assert not allocation.unassigned or len(allocation.assigned) == allocation.capacity


@settings(max_examples=150, deadline=None)
@given(size=SIZES, ips=IP_COUNTS, members=NAMES)
def test_slices_never_overlap_and_cover_members(size: int, ips: int, members: set[str]) -> None:
    gw = gateway(size, ips)
    check_sound(gw, members, allocate_nat_slots(gw, members, previous={}))


@settings(max_examples=150, deadline=None)
@given(size=SIZES, ips=IP_COUNTS, first=NAMES, later=NAMES)
def test_slices_are_stable_when_members_come_and_go(
    size: int, ips: int, first: set[str], later: set[str]
) -> None:
    gw = gateway(size, ips)
    before = allocate_nat_slots(gw, first, previous={})
    again = allocate_nat_slots(gw, first, previous=before.assigned)
    assert again.assigned == before.assigned  # a re-plan moves nothing
    after = allocate_nat_slots(gw, later, previous=before.assigned)
    check_sound(gw, later, after)
    for name in later & set(before.assigned):
        assert after.assigned[name] == before.assigned[name]  # survivors keep their slot
    for name in set(before.assigned) - later:
        assert name not in after.assigned  # leavers free theirs


@settings(max_examples=100, deadline=None)
@given(size=SIZES, members=NAMES)
def test_recorded_allocations_survive_a_restart(size: int, members: set[str]) -> None:
    gw = gateway(size, 2)
    first = allocate_nat_slots(gw, members, previous={})
    # A restarted operator knows only what the status recorded.
    body = objects.nat_gateway("gw", ips=["203.0.113.1", "203.0.113.2"], ports=size)
    body["status"] = {
        "allocations": [
            {"networkInterface": name, "ip": str(slot.ip), "minPort": slot.min_port, "maxPort": slot.max_port}
            for name, slot in first.assigned.items()
        ]
    }
    restarted = NATGateway.from_body(body)
    assert allocate_nat_slots(restarted, members, previous=restarted.recorded).assigned == first.assigned


def test_exhaustion_is_reported_and_freed_slots_are_reused() -> None:
    gw = gateway(32768, 1)  # one slot per IP
    allocation = allocate_nat_slots(gw, {"a", "b"}, previous={})
    assert list(allocation.assigned) == ["a"]
    assert allocation.unassigned == ("b",)
    assert allocation.free == 0
    freed = allocate_nat_slots(gw, {"b"}, previous=allocation.assigned)
    assert freed.assigned == {"b": NatSlot(ipaddress.IPv4Address("203.0.113.1"), 1024, 33792)}


def test_hints_adopt_what_an_agent_already_holds() -> None:
    gw = gateway(2048, 1)
    held = NatSlot(ipaddress.IPv4Address("203.0.113.1"), 1024 + 5 * 2048, 1024 + 6 * 2048)
    allocation = allocate_nat_slots(gw, {"a", "b"}, previous={}, hints={"b": held})
    assert allocation.assigned["b"] == held
    assert allocation.assigned["a"].min_port == 1024
    # A hint that is not a valid slot of this gateway is ignored.
    odd = NatSlot(ipaddress.IPv4Address("203.0.113.1"), 1000, 3048)
    assert allocate_nat_slots(gw, {"a"}, previous={}, hints={"a": odd}).assigned["a"].min_port == 1024


def test_frozen_members_keep_their_slot_without_being_members() -> None:
    gw = gateway(2048, 1)
    slot = NatSlot(ipaddress.IPv4Address("203.0.113.1"), 1024, 3072)
    allocation = allocate_nat_slots(gw, {"new"}, previous={"frozen": slot}, keep={"frozen"})
    assert allocation.assigned["frozen"] == slot
    assert allocation.assigned["new"] != slot
