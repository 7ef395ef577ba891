"""The state an agent holds after some operations succeeded: ``after(state, ops)``.

The syncer uses it to keep its picture of an agent current without listing everything again after
each apply (the operator is the agent's only writer; a changed agent UUID or a periodic full
resync discards the picture). The tests use it to check that applying a plan converges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from kubevpc_operator.planning import ops
from kubevpc_operator.planning.state import (
    InterfaceState,
    LoadBalancerState,
    Nat,
    NeighborNatState,
    NodeState,
    RouteState,
)


def after(state: NodeState, applied: Iterable[ops.Op]) -> NodeState:
    interfaces = dict(state.interfaces)
    lbs = dict(state.load_balancers)
    routes = dict(state.routes)
    nats = dict(state.neighbor_nats)

    def change(interface_id: str, **fields: object) -> None:
        current = interfaces.get(interface_id)
        if current is not None:
            interfaces[interface_id] = dataclasses.replace(current, **fields)  # type: ignore[arg-type]

    for op in applied:
        match op:
            case ops.CreateInterface():
                interfaces[op.interface_id] = InterfaceState(
                    op.interface_id, op.vni, op.device, op.ipv4, op.ipv6, op.hostname, op.pxe, owner=op.owner
                )
            case ops.DeleteInterface():
                removed = interfaces.pop(op.interface_id, None)
                if removed is not None:
                    routes, nats = _release_vni(removed.vni, interfaces, lbs, routes, nats)
            case ops.CreatePrefix() | ops.DeletePrefix():
                current = interfaces.get(op.interface_id)
                if current is not None:
                    prefixes = set(current.prefixes)
                    (prefixes.add if isinstance(op, ops.CreatePrefix) else prefixes.discard)(op.prefix)
                    change(op.interface_id, prefixes=frozenset(prefixes))
            case ops.CreateLoadBalancerPrefix() | ops.DeleteLoadBalancerPrefix():
                current = interfaces.get(op.interface_id)
                if current is not None:
                    prefixes = set(current.lb_prefixes)
                    (prefixes.add if isinstance(op, ops.CreateLoadBalancerPrefix) else prefixes.discard)(
                        op.prefix
                    )
                    change(op.interface_id, lb_prefixes=frozenset(prefixes))
            case ops.CreateVip():
                change(op.interface_id, vip=op.ip)
            case ops.DeleteVip():
                change(op.interface_id, vip=None)
            case ops.CreateNat():
                change(op.interface_id, nat=Nat(op.ip, op.min_port, op.max_port))
            case ops.DeleteNat():
                change(op.interface_id, nat=None)
            case ops.CreateFirewallRule():
                current = interfaces.get(op.interface_id)
                if current is not None and all(r.id != op.rule.id for r in current.firewall_rules):
                    change(op.interface_id, firewall_rules=(*current.firewall_rules, op.rule))
            case ops.DeleteFirewallRule():
                current = interfaces.get(op.interface_id)
                if current is not None:
                    rules = tuple(r for r in current.firewall_rules if r.id != op.rule_id)
                    change(op.interface_id, firewall_rules=rules)
            case ops.CreateLoadBalancer():
                lbs[op.lb_id] = LoadBalancerState(op.lb_id, op.vni, op.ip, op.ports, owner=op.owner)
            case ops.DeleteLoadBalancer():
                removed_lb = lbs.pop(op.lb_id, None)
                if removed_lb is not None:
                    routes, nats = _release_vni(removed_lb.vni, interfaces, lbs, routes, nats)
            case ops.CreateLoadBalancerTarget():
                lb = lbs.get(op.lb_id)
                if lb is not None:
                    lbs[op.lb_id] = dataclasses.replace(lb, targets=lb.targets | {op.target})
            case ops.DeleteLoadBalancerTarget():
                lb = lbs.get(op.lb_id)
                if lb is not None:
                    lbs[op.lb_id] = dataclasses.replace(lb, targets=lb.targets - {op.target})
            case ops.CreateRoute():
                route = RouteState(op.vni, op.prefix, op.nexthop_vni, op.nexthop, owner=op.owner)
                routes[route.key] = route
            case ops.DeleteRoute():
                routes.pop((op.vni, op.prefix), None)
            case ops.CreateNeighborNat():
                entry = NeighborNatState(op.ip, op.vni, op.min_port, op.max_port, op.underlay, owner=op.owner)
                nats[entry.key] = entry
            case ops.DeleteNeighborNat():
                nats.pop((op.ip, op.vni, op.min_port, op.max_port), None)
            case _:
                raise TypeError(f"unknown operation {op!r}")
    return NodeState(interfaces, lbs, routes, nats)


def _release_vni(
    vni: int,
    interfaces: dict[str, InterfaceState],
    lbs: dict[str, LoadBalancerState],
    routes: dict[tuple[int, str], RouteState],
    nats: dict[tuple[str, int, int, int], NeighborNatState],
) -> tuple[dict[tuple[int, str], RouteState], dict[tuple[str, int, int, int], NeighborNatState]]:
    """The agent frees a VNI with its last user, and with it the VNI's routes and neighbor NATs."""
    if any(i.vni == vni for i in interfaces.values()) or any(lb.vni == vni for lb in lbs.values()):
        return routes, nats
    return (
        {k: r for k, r in routes.items() if r.vni != vni},
        {k: n for k, n in nats.items() if n.vni != vni},
    )
