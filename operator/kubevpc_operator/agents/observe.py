"""Read what one agent holds, as an ``ObservedNode``, with as few calls as the situation allows.

Node-wide tables are always listed (interfaces, load balancers with their targets, the routes of
each VNI in use, neighbor NATs). An interface's own children (prefixes, LB prefixes, VIP, NAT,
firewall rules: five calls) are fetched only when ``previous`` (the picture of the same agent
instance after the last sync) does not already cover it: the interface is new, changed, marked
``dirty``, or in ``scope``; ``previous=None`` fetches everything. Calls run concurrently, bounded.

Two things the wire cannot tell are taken from ``previous``: IPv6 routes (dpservice's ListRoutes
lists IPv4 only) and the PXE settings of an interface (not part of ListInterfaces).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Collection
from typing import TypeVar

from kubevpc_operator.agents.client import AgentClient, ListedInterface
from kubevpc_operator.agents.errors import AgentRejectedError
from kubevpc_operator.planning.codes import Code
from kubevpc_operator.planning.state import (
    Export,
    ExportKind,
    InterfaceState,
    LoadBalancerState,
    NeighborNatState,
    NodeState,
    ObservedNode,
    RouteState,
)

T = TypeVar("T")


async def observe_node(
    client: AgentClient,
    previous: ObservedNode | None = None,
    scope: Collection[str] = (),
    dirty: Collection[str] = (),
    concurrency: int = 64,
) -> ObservedNode:
    gate = asyncio.Semaphore(concurrency)

    async def bounded(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    listed, lbs, neighbor_nats = await asyncio.gather(
        client.list_interfaces(), client.list_load_balancers(), client.list_neighbor_nats()
    )
    exports: dict[Export, str] = {}
    for interface in listed:
        exports[Export(ExportKind.INTERFACE, interface.id)] = interface.underlay
    for lb in lbs:
        exports[Export(ExportKind.LOAD_BALANCER, lb.id)] = lb.underlay

    previous_state = previous.state if previous is not None else None
    wanted = set(scope) | set(dirty)
    reuse: dict[str, InterfaceState] = {}
    fetch: list[ListedInterface] = []
    for interface in listed:
        before = previous_state.interfaces.get(interface.id) if previous_state else None
        if before is not None and interface.id not in wanted and _same_base(before, interface):
            reuse[interface.id] = before
        else:
            fetch.append(interface)

    details = await asyncio.gather(*(bounded(_interface_details(client, i, previous_state)) for i in fetch))
    interfaces: dict[str, InterfaceState] = {}
    for interface_id, state in reuse.items():
        interfaces[interface_id] = state
        assert previous is not None
        for export, underlay in previous.exports.items():
            if export.uid == interface_id and export.kind is not ExportKind.INTERFACE:
                exports[export] = underlay
    for state, children_exports in details:
        interfaces[state.id] = state
        exports.update(children_exports)

    targets = await asyncio.gather(*(bounded(client.list_lb_targets(lb.id)) for lb in lbs))
    load_balancers = {
        lb.id: LoadBalancerState(lb.id, lb.vni, lb.ip, lb.ports, frozenset(t))
        for lb, t in zip(lbs, targets, strict=True)
    }

    vnis = sorted({i.vni for i in listed} | {lb.vni for lb in lbs})
    listed_routes = await asyncio.gather(*(bounded(client.list_routes(vni)) for vni in vnis))
    routes: dict[tuple[int, str], RouteState] = {}
    for table in listed_routes:
        for route in table:
            routes[route.key] = route
    if previous_state is not None:
        # IPv6 routes are not listed by dpservice: keep what this agent instance was given.
        for key, route in previous_state.routes.items():
            if ":" in route.prefix and route.vni in vnis and key not in routes:
                routes[key] = route

    nats: dict[tuple[str, int, int, int], NeighborNatState] = {n.key: n for n in neighbor_nats}
    return ObservedNode(NodeState(interfaces, load_balancers, routes, nats), exports)


def _same_base(before: InterfaceState, listed: ListedInterface) -> bool:
    return (before.vni, before.device, before.ipv4, before.ipv6, before.hostname) == (
        listed.vni,
        listed.device,
        listed.ipv4,
        listed.ipv6,
        listed.hostname,
    )


async def _interface_details(
    client: AgentClient, listed: ListedInterface, previous: NodeState | None
) -> tuple[InterfaceState, dict[Export, str]]:
    iid = listed.id
    try:
        prefixes, lb_prefixes, vip, nat, rules = await asyncio.gather(
            client.list_prefixes(iid),
            client.list_lb_prefixes(iid),
            client.get_vip(iid),
            client.get_nat(iid),
            client.list_firewall_rules(iid),
        )
    except AgentRejectedError as rejected:
        if rejected.code != Code.NO_VM:
            raise
        # Case: the interface went away between the listing and now; report it bare.
        prefixes, lb_prefixes, vip, nat, rules = {}, {}, None, None, []
    exports: dict[Export, str] = {}
    for prefix, underlay in prefixes.items():
        exports[Export(ExportKind.PREFIX, iid, prefix)] = underlay
    for prefix, underlay in lb_prefixes.items():
        exports[Export(ExportKind.LB_PREFIX, iid, prefix)] = underlay
    if vip is not None:
        exports[Export(ExportKind.VIP, iid)] = vip[1]
    if nat is not None:
        exports[Export(ExportKind.NAT, iid)] = nat[1]
    before = previous.interfaces.get(iid) if previous else None
    state = InterfaceState(
        id=iid,
        vni=listed.vni,
        device=listed.device,
        ipv4=listed.ipv4,
        ipv6=listed.ipv6,
        hostname=listed.hostname,
        pxe=before.pxe if before is not None else None,
        vip=vip[0] if vip is not None else None,
        nat=nat[0] if nat is not None else None,
        prefixes=frozenset(prefixes),
        lb_prefixes=frozenset(lb_prefixes),
        firewall_rules=tuple(rules),
        pxe_known=before is not None and before.pxe_known,
    )
    return state, exports


def with_exports(observed: ObservedNode, state: NodeState, changes: dict[Export, str | None]) -> ObservedNode:
    """``observed`` moved to ``state``, with exports added (address) or removed (None)."""
    exports = dict(observed.exports)
    for export, underlay in changes.items():
        if underlay is None:
            exports.pop(export, None)
            if export.kind is ExportKind.INTERFACE:
                for other in [e for e in exports if e.uid == export.uid]:
                    del exports[other]
        else:
            exports[export] = underlay
    return dataclasses.replace(observed, state=state, exports=exports)
