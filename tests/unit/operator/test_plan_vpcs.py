"""VNIs: allocated deterministically, unique, pinned ones win by age; peerings need both sides."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevpc_operator.models import VPC
from kubevpc_operator.planning.vpcs import active_peerings, allocate_vni, resolve_vnis
from testkit import operator_objects as objects


def test_allocation_is_stable_for_a_uid_and_avoids_taken_vnis() -> None:
    first = allocate_vni("uid-1", taken=())
    assert first == allocate_vni("uid-1", taken=())
    assert 1 <= first <= 0xFFFFFF
    assert allocate_vni("uid-1", taken={first}) != first


@settings(max_examples=50, deadline=None)
@given(st.sets(st.integers(min_value=1, max_value=20), max_size=19))
def test_allocation_never_returns_a_taken_vni(taken: set[int]) -> None:
    vni = allocate_vni("uid", taken=taken, first=1, last=20)
    assert vni not in taken and 1 <= vni <= 20


def test_exhausted_range_raises() -> None:
    import pytest

    from kubevpc_operator.planning.vpcs import VniExhaustedError

    with pytest.raises(VniExhaustedError, match="all 3 VNIs"):
        allocate_vni("uid", taken={1, 2, 3}, first=1, last=3)


def test_a_younger_vpc_cannot_take_a_held_vni() -> None:
    older = VPC.from_body(objects.vpc("older", vni=100))
    younger = VPC.from_body(objects.vpc("younger", vni=100))
    recorded = VPC.from_body(objects.vpc("recorded", status_vni=200))
    assignment = resolve_vnis([younger, recorded, older])
    assert assignment.vnis == {older.key: 100, recorded.key: 200}
    assert assignment.conflicts == {younger.key: "VNI 100 is already used by VPC default/older"}


def test_peering_is_active_only_when_both_sides_list_each_other() -> None:
    a = VPC.from_body(
        objects.vpc("a", vni=1, peerings=[{"vpcRef": {"name": "b"}, "prefixes": ["10.2.0.0/16"]}])
    )
    b = VPC.from_body(objects.vpc("b", vni=2, peerings=[{"vpcRef": {"name": "a"}}]))
    c = VPC.from_body(objects.vpc("c", vni=3, peerings=[{"vpcRef": {"name": "a"}}]))
    links = active_peerings([a, b, c])
    assert [peer.name for peer, _ in links[a.key]] == ["b"]
    assert [str(p) for p in links[a.key][0][1].prefixes] == ["10.2.0.0/16"]
    assert [peer.name for peer, _ in links[b.key]] == ["a"]
    assert c.key not in links  # a only lists b
