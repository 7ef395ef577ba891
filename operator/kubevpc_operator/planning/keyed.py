"""Plan node-wide keyed entries (routes, neighbor NATs): a level-triggered set difference per key.

The agent cannot update such an entry in place: one whose value changed is deleted and created
again. An entry nobody wants any more is kept while it points at the underlay address of an
object with an invalid spec (``protected``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from kubevpc_operator.planning.ops import Op
from kubevpc_operator.planning.state import Owner


class Entry(Protocol):
    @property
    def owner(self) -> Owner | None: ...


K = TypeVar("K", bound=tuple[Any, ...])
E = TypeVar("E", bound=Entry)


def plan_keyed(
    desired: Mapping[K, E],
    observed: Mapping[K, E],
    protected: frozenset[str],
    *,
    underlay: Callable[[E], str],
    delete: Callable[[E, Owner | None], Op],
    create: Callable[[E], Op],
) -> list[Op]:
    """Deletes (of ``have``, on behalf of its successor's owner if any), then creates, in key order."""
    deletes: list[Op] = []
    creates: list[Op] = []
    for key in sorted(observed.keys() | desired.keys()):
        want, have = desired.get(key), observed.get(key)
        if want == have:
            continue
        if have is not None:
            if want is None and underlay(have) in protected:
                continue
            deletes.append(delete(have, (want or have).owner))
        if want is not None:
            creates.append(create(want))
    return deletes + creates
