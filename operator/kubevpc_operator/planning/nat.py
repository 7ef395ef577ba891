"""NAT gateway port slices and the neighbor NAT entries that follow from them.

Allocation is pure and deterministic: an interface keeps the slot it had (``previous``, i.e. what
the gateway's status recorded), else takes the slot its agent already holds (``hints``: state left
by a previous operator run), else the lowest free slot (IP order, then port order). Interfaces
that find no free slot are reported as unassigned; a slot is freed when its interface goes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from kubevpc_operator.models.nat_gateway import NATGateway, NatSlot
from kubevpc_operator.planning.keyed import plan_keyed
from kubevpc_operator.planning.ops import CreateNeighborNat, DeleteNeighborNat, Op
from kubevpc_operator.planning.state import NeighborNatState


@dataclass(frozen=True)
class NatAllocation:
    assigned: Mapping[str, NatSlot] = field(default_factory=dict)  # interface name -> slot
    unassigned: tuple[str, ...] = ()  # members left without a slot: the gateway is exhausted
    capacity: int = 0  # slots in total

    @property
    def free(self) -> int:
        return self.capacity - len(self.assigned)


def allocate_nat_slots(
    gateway: NATGateway,
    members: Collection[str],
    previous: Mapping[str, NatSlot],
    hints: Mapping[str, NatSlot] | Callable[[], Mapping[str, NatSlot]] | None = None,
    keep: Collection[str] = (),
) -> NatAllocation:
    """Slots for ``members`` (interface names); ``keep`` names hold their previous slot only.

    ``hints`` may be a callable: it is only called when a member has no previous slot.
    """
    slots = gateway.slots()
    used: set[NatSlot] = set()
    assigned: dict[str, NatSlot] = {}
    # Case: interfaces that already have a valid slot keep it (older records win a clash).
    for name in sorted(set(members) | set(keep)):
        slot = previous.get(name)
        if slot is not None and gateway.is_slot(slot) and slot not in used:
            assigned[name] = slot
            used.add(slot)
    # Case: a new interface whose agent already holds a free, valid slot takes that one.
    newcomers = [name for name in sorted(members) if name not in assigned]
    if newcomers and callable(hints):
        hints = hints()
    hints = hints if isinstance(hints, Mapping) else {}
    for name in newcomers:
        slot = hints.get(name)
        if name not in assigned and slot is not None and gateway.is_slot(slot) and slot not in used:
            assigned[name] = slot
            used.add(slot)
    # Case: everyone else takes the lowest free slot, in name order.
    free = (slot for slot in slots if slot not in used)
    unassigned: list[str] = []
    for name in sorted(members):
        if name in assigned:
            continue
        slot = next(free, None)
        if slot is None:
            unassigned.append(name)
        else:
            assigned[name] = slot
            used.add(slot)
    return NatAllocation(assigned=assigned, unassigned=tuple(unassigned), capacity=len(slots))


def plan_neighbor_nats(
    desired: Mapping[tuple[str, int, int, int], NeighborNatState],
    observed: Mapping[tuple[str, int, int, int], NeighborNatState],
    protected: frozenset[str] = frozenset(),
) -> list[Op]:
    """Set difference by (ip, vni, port range); an entry whose underlay changed is replaced."""
    return plan_keyed(
        desired,
        observed,
        protected,
        underlay=lambda entry: entry.underlay,
        delete=lambda have, owner: DeleteNeighborNat(
            have.ip, have.vni, have.min_port, have.max_port, owner=owner
        ),
        create=lambda want: CreateNeighborNat(
            want.ip, want.vni, want.min_port, want.max_port, want.underlay, owner=want.owner
        ),
    )
