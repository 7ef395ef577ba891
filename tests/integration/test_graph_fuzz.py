"""Random, truncated and mutated frames into the whole graph on every port kind: never an exception,
every frame either leaves a port or is dropped with a reason, and no pool slot leaks."""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.fuzz import PORT_IDS, SEEDS, assert_conserved, drain
from testkit.overlay import Harness, add_route, build_state


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(frame) - 1))
        frame[at] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(frame) + 8))
    return bytes(frame[:cut]) + draw(st.binary(max_size=8)) if cut > len(frame) else bytes(frame[:cut])


FRAMES = st.one_of(st.binary(max_size=160), mutated())


def make_harness() -> Harness:
    state = build_state()
    add_route(state, 100, "192.168.0.0/16")
    add_route(state, 100, "::/0", IPv6Address("fc00:9::1"))
    return Harness(state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PORT_IDS), FRAMES), min_size=1, max_size=40))
def test_any_frames_are_forwarded_or_counted(traffic: list[tuple[int, bytes]]) -> None:
    h = make_harness()
    for port, frame in traffic:
        h.ports[port].inject([frame])
    drain(h)
    assert_conserved(h, len(traffic))
