"""The operator's runtime core: the node syncers, and what they share.

One ``Fabric`` lives in kopf's memo. It

- plans for any node on demand (``desired_for``): the topology from the current cluster view, NAT
  slots from its allocation memory, underlay addresses from what the syncers observed (or, for
  nodes not observed yet, what the objects' status recorded);
- fans out: when a node's exported underlay addresses change (an interface was created, an agent
  restarted and got new addresses), every node that routes to them is asked to sync again;
- turns applied operations into log lines and Kubernetes events on the owning objects.

Cross-node wiring therefore needs no extra protocol: it is level-triggered, per node and VNI.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from kubevpc_operator.agents.apply import OpResult
from kubevpc_operator.agents.pool import AgentPool
from kubevpc_operator.agents.syncer import NodeSyncer, SyncReport
from kubevpc_operator.models.cluster import ClusterView
from kubevpc_operator.models.nat_gateway import NatSlot
from kubevpc_operator.models.vpc import MAX_VNI
from kubevpc_operator.planning.desired import Exports, NodeDesired, build_node_desired, protected_for
from kubevpc_operator.planning.nat import NatAllocation, allocate_nat_slots
from kubevpc_operator.planning.report import merge_exports
from kubevpc_operator.planning.state import Export, ExportKind, Owner, Protected
from kubevpc_operator.planning.topology import Topology, resolve_topology
from kubevpc_operator.planning.vpcs import FIRST_VNI, allocate_vni

logger = logging.getLogger("kubevpc.fabric")

EventSink = Callable[[Owner, str, str, str], None]  # (owner, Normal|Warning, reason, message)


@dataclass(frozen=True)
class FabricSettings:
    concurrency: int = 64  # agent calls in flight per node
    poll_interval: float = 2.0  # seconds between CheckInitialized polls of one agent
    resync_interval: float = 300.0  # seconds between full observations of one agent
    vni_first: int = FIRST_VNI
    vni_last: int = MAX_VNI
    router_address: str = ""  # border router: default routes in every VNI ("" = none)


class Fabric:
    def __init__(
        self,
        pool: AgentPool,
        settings: FabricSettings | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings or FabricSettings()
        self._on_event = on_event
        self._view: Callable[[], ClusterView] = ClusterView
        self._recorded: Callable[[], Mapping[tuple[str, Export], str]] = dict
        self._syncers: dict[str, NodeSyncer] = {}
        self._observed: dict[str, Mapping[Export, str]] = {}
        self._nat: dict[str, dict[str, NatSlot]] = {}  # gateway uid -> interface name -> slot
        self._vni_reservations: dict[str, int] = {}  # VPC uid -> VNI not yet visible in its status
        self._topology: tuple[ClusterView, Topology] | None = None
        self.ready = False  # set by the first resource handler: kopf's indices are complete
        self._nat_cache: tuple[Topology, dict[str, NatAllocation]] | None = None
        pool.on_change = self._endpoint_changed

    def mark_ready(self) -> None:
        """kopf runs resource handlers only once every index is filled: from then on the view is
        complete and background syncs (endpoint changes) may plan against it."""
        self.ready = True

    def attach(
        self,
        view: Callable[[], ClusterView],
        recorded: Callable[[], Mapping[tuple[str, Export], str]] | None = None,
    ) -> None:
        """Where the cluster view and the recorded underlay addresses come from."""
        self._view = view
        self._recorded = recorded or dict

    # ---- planning -----------------------------------------------------------------------------

    def view(self) -> ClusterView:
        return self._view()

    def topology(self, view: ClusterView | None = None) -> Topology:
        """The resolved topology of ``view`` (default: the current one), cached per view object."""
        view = view if view is not None else self._view()
        cached = self._topology
        if cached is not None and cached[0] is view:
            return cached[1]
        topology = resolve_topology(view)
        self._topology = (view, topology)
        return topology

    def exports(self) -> Exports:
        return merge_exports(self._recorded(), self._observed)

    def nat_allocations(self, topology: Topology) -> dict[str, NatAllocation]:
        """Slots for every gateway; the memory of previous slots makes them stable.

        Computed once per topology: allocation only depends on it and on the memory it updates.
        """
        cached = self._nat_cache
        if cached is not None and cached[0] is topology:
            return cached[1]

        def hints() -> dict[str, NatSlot]:
            return self._nat_hints(topology)

        result: dict[str, NatAllocation] = {}
        for uid, membership in topology.nat_gateways.items():
            previous = self._nat.get(uid)
            if previous is None:
                previous = dict(membership.gateway.recorded)  # first sight after a start: the status
            allocation = allocate_nat_slots(
                membership.gateway, membership.members, previous, hints=hints, keep=membership.keep
            )
            self._nat[uid] = dict(allocation.assigned)
            result[uid] = allocation
        for uid in set(self._nat) - set(topology.nat_gateways):
            if uid not in topology.frozen:
                del self._nat[uid]
        self._nat_cache = (topology, result)
        return result

    def _nat_hints(self, topology: Topology) -> dict[str, NatSlot]:
        """NAT ranges the agents already hold, by interface name (adopted by new allocations)."""
        hints: dict[str, NatSlot] = {}
        for syncer in self._syncers.values():
            if syncer.known is None:
                continue
            for interface_id, state in syncer.known.state.interfaces.items():
                resolved = topology.interfaces.get(interface_id)
                if resolved is not None and state.nat is not None:
                    nat = state.nat
                    hints[resolved.nic.meta.name] = NatSlot(
                        ipaddress.IPv4Address(nat.ip), nat.min_port, nat.max_port
                    )
        return hints

    def desired_for(self, node: str) -> tuple[NodeDesired, Protected]:
        topology = self.topology()
        exports = self.exports()
        desired = build_node_desired(
            topology, self.nat_allocations(topology), exports, node, self.settings.router_address
        )
        return desired, protected_for(topology, exports)

    def allocate_vni(self, uid: str, taken: Collection[int]) -> int:
        """A VNI for a VPC: the one reserved for it earlier, else a new one (see planning.vpcs)."""
        reserved = self._vni_reservations.get(uid)
        if reserved is not None:
            return reserved
        others = set(taken) | {vni for owner, vni in self._vni_reservations.items() if owner != uid}
        vni = allocate_vni(uid, others, self.settings.vni_first, self.settings.vni_last)
        self._vni_reservations[uid] = vni
        return vni

    def reservations(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self._vni_reservations.items()))

    def reserved_vni(self, uid: str) -> int | None:
        return self._vni_reservations.get(uid)

    def release_vni_reservation(self, uid: str) -> None:
        """The VNI is recorded in the VPC's status (or the VPC is gone): no need to hold it here."""
        self._vni_reservations.pop(uid, None)

    # ---- nodes ----------------------------------------------------------------------------------

    def syncer(self, node: str) -> NodeSyncer:
        syncer = self._syncers.get(node)
        if syncer is None:
            syncer = NodeSyncer(
                node,
                self.pool,
                self,
                concurrency=self.settings.concurrency,
                poll_interval=self.settings.poll_interval,
                resync_interval=self.settings.resync_interval,
                on_report=self._report,
                on_result=self._result,
            )
            self._syncers[node] = syncer
        return syncer

    def reports(self) -> dict[str, SyncReport]:
        """The last report of every node that has an agent."""
        nodes = self.pool.nodes()
        return {
            node: syncer.last_report
            for node, syncer in self._syncers.items()
            if syncer.last_report is not None and node in nodes
        }

    async def sync(
        self,
        nodes: Iterable[str],
        scope: Collection[str] = (),
        *,
        full: bool = False,
        max_age: float | None = None,
    ) -> dict[str, SyncReport]:
        """Sync the nodes concurrently (coalesced with other requests) and return their reports."""
        wanted = sorted(set(nodes) & self.pool.nodes())
        reports = await asyncio.gather(
            *(self.syncer(node).sync(scope=scope, full=full, max_age=max_age) for node in wanted)
        )
        return dict(zip(wanted, reports, strict=True))

    async def poll(self, nodes: Iterable[str] | None = None) -> None:
        """CheckInitialized on each agent (rate-limited per node); replays are scheduled, not awaited."""
        targets = self.pool.nodes() if nodes is None else set(nodes) & self.pool.nodes()
        await asyncio.gather(*(self.syncer(node).check() for node in sorted(targets)))

    def device_of(self, node: str, interface_id: str) -> str | None:
        """The device an interface is bound to, as its agent last reported it."""
        syncer = self._syncers.get(node)
        known = syncer.known if syncer is not None else None
        interface = known.state.interfaces.get(interface_id) if known is not None else None
        return interface.device if interface is not None else None

    def related_nodes(self, uid: str, home: str | None = None, vnis: Iterable[int] = ()) -> set[str]:
        """Nodes where an object has or should have state: home, reported owners, VNI users."""
        topology = self.topology()
        nodes = {home} if home else set()
        nodes |= {node for node, report in self.reports().items() if uid in report.owners}
        wanted = set(vnis)
        for vni in list(wanted):
            wanted |= topology.peer_vnis(vni)
        nodes |= topology.nodes_serving(wanted)
        return nodes & set(self.pool.nodes())

    async def wait_idle(self) -> None:
        """Until no node sync is running or queued, follow-up syncs of the fan-out included."""
        while busy := [syncer for syncer in self._syncers.values() if syncer.busy]:
            await asyncio.gather(*(syncer.wait_idle() for syncer in busy))

    async def close(self) -> None:
        for syncer in self._syncers.values():
            await syncer.stop()
        await self.pool.close()

    # ---- fan-out and events -----------------------------------------------------------------------

    def _endpoint_changed(self, node: str) -> None:
        """A new agent address: forget what the old one held and sync the node in full."""
        logger.info("Agent endpoint of node %s changed", node)
        syncer = self._syncers.get(node)
        if syncer is not None:
            syncer.uuid = None
            syncer.known = None
        if not self.ready:
            return  # the view may still be incomplete (indices filling): never plan against it
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not in the operator's loop (a test): the next sync starts from scratch anyway
        if node in self.pool.nodes():
            self.syncer(node).request(full=True)

    def _report(self, report: SyncReport) -> None:
        if not report.error:
            before = self._observed.get(report.node, {})
            after = dict(report.exports)
            self._observed[report.node] = after
            changed = [e for e in before.keys() | after.keys() if before.get(e) != after.get(e)]
            if changed:
                self._fan_out(report.node, changed)
        self._emit_events(report)

    def _fan_out(self, node: str, changed: list[Export]) -> None:
        """Ask every node that may route to a changed address to sync again."""
        topology = self.topology()
        vnis: set[int] = set()
        unknown = False
        for export in changed:
            if export.kind is ExportKind.LOAD_BALANCER and export.uid in topology.load_balancers:
                vnis.add(topology.load_balancers[export.uid].vni)
            elif export.uid in topology.interfaces:
                vnis.add(topology.interfaces[export.uid].vni)
            else:
                unknown = True  # the owner is gone: its entries elsewhere are removed by its delete
        for vni in list(vnis):
            vnis |= {peer for peer, _ in topology.peers.get(vni, ())}
        targets = topology.nodes_serving(vnis)
        if unknown and not vnis:
            return
        for target in sorted(targets & self.pool.nodes()):
            self.syncer(target).request()

    def _result(self, node: str, result: OpResult) -> None:
        owner = f" for {result.op.owner}" if result.op.owner else ""
        if result.ok:
            logger.info("%s on node %s%s", result.op.describe(), node, owner)
        elif not result.skipped:
            logger.warning("%s on node %s%s: %s", result.op.describe_failure(), node, owner, result.error)

    def _emit_events(self, report: SyncReport) -> None:
        """One event per object and sync: what was applied on the node, or what failed."""
        if self._on_event is None:
            return
        by_owner: dict[str, list[OpResult]] = {}
        owners: dict[str, Owner] = {}
        for result in report.results:
            if result.op.owner is not None:
                by_owner.setdefault(result.op.owner.uid, []).append(result)
                owners[result.op.owner.uid] = result.op.owner
        for uid, results in by_owner.items():
            owner = owners[uid]
            failures = [r for r in results if not r.ok and not r.skipped]
            if failures:
                first = failures[0]
                more = f" (+{len(failures) - 1} more failures)" if len(failures) > 1 else ""
                message = f"Node {report.node}: {first.op.describe_failure()}: {first.error}{more}"
                self._on_event(owner, "Warning", "ProgrammingFailed", message)
            applied = [r for r in results if r.ok]
            if applied:
                self._on_event(owner, "Normal", "Programmed", f"Node {report.node}: {_summary(applied)}")


def _summary(results: list[OpResult]) -> str:
    """ "Created interface x; created route 10.0.0.2/32 ... (+3 more)", at most three spelled out."""
    verbs = Counter(type(r.op).__name__ for r in results)
    spelled = "; ".join(r.op.describe() for r in results[:3])
    if len(results) > 3:
        spelled += (
            f" (+{len(results) - 3} more: " + ", ".join(f"{n} x{c}" for n, c in sorted(verbs.items())) + ")"
        )
    return spelled
