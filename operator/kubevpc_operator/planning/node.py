"""Plan everything on one node: the composition of the per-kind planners, in apply order."""

from __future__ import annotations

from kubevpc_operator.planning.interfaces import plan_interfaces
from kubevpc_operator.planning.load_balancers import plan_load_balancers
from kubevpc_operator.planning.nat import plan_neighbor_nats
from kubevpc_operator.planning.ops import Op, ordered
from kubevpc_operator.planning.routes import plan_routes
from kubevpc_operator.planning.state import NodeState, Protected


def plan_node(desired: NodeState, observed: NodeState, protected: Protected | None = None) -> list[Op]:
    """Operations that turn ``observed`` into ``desired``; [] when they already match."""
    protected = protected or Protected()
    ops = plan_routes(desired.routes, observed.routes, protected.underlays)
    ops += plan_neighbor_nats(desired.neighbor_nats, observed.neighbor_nats, protected.underlays)
    ops += plan_load_balancers(
        desired.load_balancers, observed.load_balancers, protected.load_balancer_ids, protected.underlays
    )
    ops += plan_interfaces(desired.interfaces, observed.interfaces, protected.interface_ids)
    return ordered(ops)
