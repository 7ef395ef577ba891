"""Cost of the load balancer and the firewall, in ns per packet, on memory-resident batches.

Rows (batch 32, 256 and 1024; 60-byte frames over 1024 UDP flows; no I/O, as ``benchmarks/nodes.py``):

* whole graph, established flows: uplink → ``lb`` → remote target (relay out the uplink), uplink →
  ``lb`` → local target (recirculated through ``cls`` … ``firewall`` to the VM), VM → uplink through
  ``firewall`` with no rules and with 10 egress rules (the last one matching); each with the
  ``lb`` / ``firewall`` node's own share;
* new flows: the ``firewall`` node deciding a batch of new flows against 1, 10, 100 and 1,000
  rules; the ``lb`` node choosing targets for a batch of new flows (4 and 64 targets).

Run from the repository root: ``python -m benchmarks.lb_firewall [--repeat N] [--json]``.
Nothing here is asserted by any test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import numpy as np
from benchmarks.nodes import (
    PF0,
    PORTS,
    REMOTE_V4,
    VF0,
    VM0_V4,
    Template,
    graph_for,
    make_state,
    time_delivered,
    tunnel_frames,
    udp_frames,
)

from kubevpc_agent.graph.batch import Batch, PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.nodes.firewall import Firewall
from kubevpc_agent.nodes.lb import Lb
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.conntrack import FlowFlag, FwAction
from kubevpc_agent.tables.maglev import build_maglev, sort_targets
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, LbPort, PortRange, Protocol
from kubevpc_agent.tables.state import AgentState

BATCHES = (32, 256, 1024)
LB_IP = IPv4Address("198.18.100.1")
LB_UL = IPv6Address("fc00:1::4c:0:0:1")
LB_PFX_UL = IPv6Address("fc00:1::4c:0:0:2")
ANY4 = IPv4Network("0.0.0.0/0")
_NOT_DST_LB = np.uint8(~FlowFlag.DST_LB & 0xFF)


def remote_targets(n: int) -> list[IPv6Address]:
    return [IPv6Address(f"fc00:{2 + i:x}::64:0:1") for i in range(n)]


def with_lb(state: AgentState, targets: list[IPv6Address], local: bool = False) -> AgentState:
    state.apply(cmd.CreateLoadBalancer("lb", 100, LB_IP, (LbPort(Protocol.UDP, 9),), LB_UL))
    if local:
        state.apply(cmd.CreateLbPrefix("vm2", LB_IP, 32, LB_PFX_UL))  # benchmarks.nodes names VF0 "vm2"
        targets = [LB_PFX_UL]
    chosen: list[IPv6Address] = []
    for target in targets:
        chosen = sort_targets([*chosen, target])
        state.apply(cmd.CreateLbTarget("lb", target, build_maglev(chosen)))
    return state


def with_rules(state: AgentState, n: int) -> AgentState:
    """``n`` egress rules on VF0; only the last one (UDP) matches the benchmark's flows."""
    for i in range(n):
        last = i == n - 1
        rule = FirewallRule(
            f"r{i}",
            Direction.EGRESS,
            Action.ACCEPT,
            1000,
            ANY4,
            ANY4,
            Protocol.UDP if last else Protocol.TCP,
            dst_ports=PortRange(-1, -1) if last else PortRange(10_000 + i, 10_000 + i),
        )
        state.apply(cmd.CreateFirewallRule("vm2", rule, ANY4.network_address, ANY4.network_address))
    return state


@dataclass
class Case:
    name: str
    state: Callable[[], AgentState]
    frames: list[bytes]
    rx_port: int
    delivered_to: int
    node: str  # the node whose share is reported


def cases() -> list[Case]:
    to_lb = tunnel_frames(udp_frames(REMOTE_V4, LB_IP, PORTS[PF0].mac), LB_UL)
    vm_out = udp_frames(VM0_V4, REMOTE_V4, PORTS[VF0].mac)
    return [
        Case("PF→lb→remote target", lambda: with_lb(make_state(), remote_targets(4)), to_lb, PF0, PF0, "lb"),
        Case(
            "PF→lb→local target (recirc)",
            lambda: with_lb(make_state(), [], local=True),
            to_lb,
            PF0,
            VF0,
            "lb",
        ),
        Case("VF→PF, firewall without rules", make_state, vm_out, VF0, PF0, "firewall"),
        Case(
            "VF→PF, firewall with 10 rules",
            lambda: with_rules(make_state(), 10),
            vm_out,
            VF0,
            PF0,
            "firewall",
        ),
    ]


def bench_case(case: Case, n: int, repeat: int) -> tuple[float, float]:
    """Median ns/packet of the whole graph and the node's own ns/packet, established flows."""
    whole, nodes = time_delivered(
        case.name, case.state(), case.frames, case.rx_port, case.delivered_to, n, repeat
    )
    return whole, nodes[case.node]


def captured_input(graph: Graph, node_name: str, template: Template, n: int) -> Batch:
    """The batch ``node_name`` receives on a first pass (columns copied, flows created)."""
    node = graph.node(node_name)
    seen: list[Batch] = []
    inner = node.process

    def spy(batch: Batch) -> object:
        seen.append(batch.select(np.arange(len(batch))))
        return inner(batch)

    node.process = spy  # type: ignore[method-assign]
    graph.enqueue(template.fresh(template.pool.alloc(n)))
    graph.run()
    node.process = inner  # type: ignore[method-assign]
    return Batch.concat(seen)


def bench_new_firewall_flows(rules: int, n: int, repeat: int) -> float:
    """ns per new flow for the firewall node's decision against ``rules`` egress rules."""
    graph, _ = graph_for(with_rules(make_state(), rules))
    template = Template.of(udp_frames(VM0_V4, REMOTE_V4, PORTS[VF0].mac), n, VF0, PacketPool(4 * n))
    batch = captured_input(graph, "firewall", template, n)
    node = graph.node("firewall")
    assert isinstance(node, Firewall)
    flows = batch.flow
    samples = []
    for _ in range(repeat):
        node.flows.fw_action[flows] = FwAction.UNKNOWN
        started = time.perf_counter_ns()
        node.process(batch)
        samples.append((time.perf_counter_ns() - started) / n)
    return statistics.median(samples)


def bench_new_lb_flows(targets: int, n: int, repeat: int) -> float:
    """ns per new flow for the lb node's Maglev choice over ``targets`` remote targets."""
    graph, _ = graph_for(with_lb(make_state(), remote_targets(targets)))
    frames = tunnel_frames(udp_frames(REMOTE_V4, LB_IP, PORTS[PF0].mac), LB_UL)
    template = Template.of(frames, n, PF0, PacketPool(4 * n))
    batch = captured_input(graph, "lb", template, n)
    node = graph.node("lb")
    assert isinstance(node, Lb)
    flows = batch.flow
    samples = []
    for _ in range(repeat):
        node.flows.flags[flows] &= _NOT_DST_LB
        started = time.perf_counter_ns()
        node.process(batch)
        samples.append((time.perf_counter_ns() - started) / n)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="timed batches per figure (median)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    for case in cases():
        for n in BATCHES:
            total, own = bench_case(case, n, args.repeat)
            rows.append((f"path {case.name}", n, total))
            rows.append((f"  {case.name}: {case.node}", n, own))
    for rules in (1, 10, 100, 1000):
        for n in BATCHES:
            rows.append(
                (f"firewall, new flows, {rules} rules", n, bench_new_firewall_flows(rules, n, args.repeat))
            )
    for targets in (4, 64):
        for n in BATCHES:
            rows.append((f"lb, new flows, {targets} targets", n, bench_new_lb_flows(targets, n, args.repeat)))
    if args.json:
        print(json.dumps([{"what": w, "batch": b, "ns_per_packet": round(ns, 1)} for w, b, ns in rows]))
        return
    table: dict[str, dict[int, float]] = {}
    for what, n, ns in rows:
        table.setdefault(what, {})[n] = ns
    print(f"{'ns per packet (median)':<52}" + "".join(f"{'batch ' + str(b):>12}" for b in BATCHES))
    for what, by_batch in table.items():
        print(f"{what:<52}" + "".join(f"{by_batch.get(b, float('nan')):>12.0f}" for b in BATCHES))


if __name__ == "__main__":
    main()
