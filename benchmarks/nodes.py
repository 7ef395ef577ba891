"""Per-node and per-path cost of the vectorized graph, in ns per packet, on memory-resident batches.

No I/O: frames are copied into pool slots before each timed call (not timed), so the figures are
what the nodes themselves cost. Rows:

* the whole graph (``build_pipeline``, whatever nodes it wires today) for VF→VF (same VNI, Ethernet
  rewrite), VF→PF (IP-in-IPv6 encap), PF→VF (decap) and VF→VF over IPv6, enqueue to tx (a port
  that discards), at batch 32, 256 and 1024, established flows (two warm-up batches first);
* each node's share on those paths (its ``process`` timed inside the same runs), ns per packet
  that reached it;
* LPM lookups (IPv4 and IPv6) with 10 and with 100,000 routes in the VNI: ns per lookup and
  compile time; and the VF→VF path with 100,000 routes in the VNI.

Frames are 60 bytes (64 on the wire) spread over 1024 UDP flows. Run from the repository root:
``python -m benchmarks.nodes [--repeat N] [--json]``. Nothing here is asserted by any test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import numpy as np

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.dataplane.pipeline import build_pipeline
from kubevpc_agent.graph.batch import HEADROOM, Batch, Edges, PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.protocols.checksum import checksum
from kubevpc_agent.protocols.ipv4 import build_ipv4
from kubevpc_agent.protocols.ipv6 import build_ipv6
from kubevpc_agent.protocols.udp import build_udp
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.lpm import Lpm4, Lpm6
from kubevpc_agent.tables.model import NextHopKind, RouteEntry
from kubevpc_agent.tables.state import AgentState, VniTables
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes

BATCHES = (32, 256, 1024)
FLOWS = 1024
FRAME_LEN = 60
PF0, PF1, VF0, VF1 = range(4)
PORTS = (
    PortSpec(PF0, "pf0", "pf0", "22:22:22:22:22:00", PortKind.PF, "memory"),
    PortSpec(PF1, "pf1", "pf1", "22:22:22:22:22:01", PortKind.PF, "memory"),
    PortSpec(VF0, "vf0", "vf0", "66:66:66:66:66:00", PortKind.VF, "memory"),
    PortSpec(VF1, "vf1", "vf1", "66:66:66:66:66:01", PortKind.VF, "memory"),
)
VNI = 100
VM0_V4, VM1_V4 = IPv4Address("198.18.0.1"), IPv4Address("198.18.0.2")
VM0_V6, VM1_V6 = IPv6Address("2001:2::1"), IPv6Address("2001:2::2")
REMOTE_V4 = IPv4Address("198.19.0.1")
UNDERLAY = {VF0: IPv6Address("fc00:1::d0:0:0:2"), VF1: IPv6Address("fc00:1::d0:0:0:3")}
REMOTE_UNDERLAY = IPv6Address("fc00:2::64")


class NullPort:
    """A port whose wire discards: ``send`` accepts everything and copies nothing."""

    def __init__(self, spec: PortSpec) -> None:
        self.spec = spec
        self.sent = 0

    def receive(self, pool: PacketPool, budget: int) -> Batch:
        return Batch(pool, 0)

    def send(self, batch: Batch) -> int:
        self.sent += len(batch)
        return len(batch)

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


def make_state(extra_routes: int = 0) -> AgentState:
    state = AgentState(AgentConfig(ports=PORTS, underlay_ipv6=IPv6Address("fc00:1::1"), wcmp_percent=100))
    for port, v4, v6 in ((VF0, VM0_V4, VM0_V6), (VF1, VM1_V4, VM1_V6)):
        state.apply(cmd.CreateInterface(f"vm{port}", PORTS[port].device, VNI, v4, v6, UNDERLAY[port]))
    state.apply(cmd.CreateRoute(VNI, IPv4Address("198.19.0.0"), 16, REMOTE_UNDERLAY))
    state.apply(cmd.CreateRoute(VNI, IPv6Address("2001:3::"), 48, REMOTE_UNDERLAY))
    if extra_routes:
        add_random_routes(state.vnis[VNI], extra_routes)
        state.version += 1
    return state


def add_random_routes(tables: VniTables, n: int, seed: int = 1) -> None:
    """``n`` random IPv4 and IPv6 routes (lengths 8-32 / 16-64) that avoid the benchmark's own addresses."""
    rng = np.random.default_rng(seed)
    for addr, length in zip(
        rng.integers(0x0B000000, 0xC0000000, n).tolist(), rng.integers(8, 33, n).tolist(), strict=True
    ):
        net = IPv4Network((addr >> (32 - length) << (32 - length), length))
        tables.routes4[net] = RouteEntry(net, NextHopKind.UNDERLAY, nexthop=REMOTE_UNDERLAY)
    for hi, length in zip(
        rng.integers(0x2400 << 48, 0x2C00 << 48, n).tolist(), rng.integers(16, 65, n).tolist(), strict=True
    ):
        net6 = IPv6Network(((hi >> (64 - length) << (64 - length)) << 64, length))
        tables.routes6[net6] = RouteEntry(net6, NextHopKind.UNDERLAY, nexthop=REMOTE_UNDERLAY)
    tables.version += 1


def udp_frames(src: IPv4Address, dst: IPv4Address, dst_mac: str) -> list[bytes]:
    """60-byte Ether/IPv4/UDP frames, one per flow."""
    payload = b"\x00" * (FRAME_LEN - 14 - 20 - 8)
    out = []
    for flow in range(FLOWS):
        l4 = build_udp(src.packed, dst.packed, 1024 + flow, 9, payload)
        out.append(
            mac_bytes(dst_mac)
            + mac_bytes("52:54:00:00:00:01")
            + b"\x08\x00"
            + build_ipv4(src.packed, dst.packed, 17, len(l4))
            + l4
        )
    assert checksum(out[0][14:34]) == 0 and len(out[0]) == FRAME_LEN
    return out


def udp6_frames(src: IPv6Address, dst: IPv6Address) -> list[bytes]:
    payload = b"\x00" * (FRAME_LEN + 20 - 14 - 40 - 8)
    return [
        mac_bytes(PORTS[VF0].mac)
        + mac_bytes("52:54:00:00:00:01")
        + b"\x86\xdd"
        + build_ipv6(src.packed, dst.packed, 17, 8 + len(payload))
        + build_udp(src.packed, dst.packed, 1024 + f, 9, payload)
        for f in range(FLOWS)
    ]


def tunnel_frames(inner: list[bytes], dst: IPv6Address) -> list[bytes]:
    outer_eth = mac_bytes(PORTS[PF0].mac) + mac_bytes("02:aa:bb:cc:dd:01") + b"\x86\xdd"
    return [
        outer_eth + build_ipv6(REMOTE_UNDERLAY.packed, dst.packed, 4, len(f) - 14) + f[14:] for f in inner
    ]


@dataclass
class Template:
    """Frames laid out in pool slots once; ``fresh`` restores bytes and columns (untimed)."""

    pool: PacketPool
    matrix: np.ndarray  # (n, width) frame bytes
    lengths: np.ndarray
    rx_port: int

    @staticmethod
    def of(frames: Sequence[bytes], n: int, rx_port: int, pool: PacketPool) -> Template:
        width = max(len(f) for f in frames)
        matrix = np.zeros((n, width), dtype=np.uint8)
        lengths = np.zeros(n, dtype=np.int32)
        for i in range(n):
            f = frames[i % len(frames)]
            matrix[i, : len(f)] = np.frombuffer(f, dtype=np.uint8)
            lengths[i] = len(f)
        return Template(pool, matrix, lengths, rx_port)

    def fresh(self, slots: np.ndarray | None = None) -> Batch:
        n, width = self.matrix.shape
        batch = Batch(self.pool, n)
        batch.slot[:] = np.arange(n, dtype=np.int32) if slots is None else slots
        batch.off[:] = HEADROOM
        batch.length[:] = self.lengths
        batch.rx_port[:] = self.rx_port
        batch.pkt_id[:] = np.arange(n, dtype=np.uint64)
        self.pool.data[batch.slot, HEADROOM : HEADROOM + width] = self.matrix
        return batch


class NodeTimer:
    """Wraps every node's ``process`` to time it; one sample (ns per packet) per node and graph run."""

    def __init__(self, graph: Graph) -> None:
        self.run_ns: dict[str, int] = {}
        self.run_packets: dict[str, int] = {}
        self.samples: dict[str, list[float]] = {}
        for node in graph.nodes:
            self._wrap(node)

    def _wrap(self, node: Node) -> None:
        inner = node.process
        name = node.name

        def timed(batch: Batch) -> int | Edges:
            started = time.perf_counter_ns()
            result = inner(batch)
            self.run_ns[name] = self.run_ns.get(name, 0) + time.perf_counter_ns() - started
            self.run_packets[name] = self.run_packets.get(name, 0) + len(batch)
            return result

        node.process = timed  # type: ignore[method-assign]

    def end_run(self, keep: bool) -> None:
        """Close one graph run: keep its per-node figures as samples (or discard a warm-up run)."""
        if keep:
            for name, ns in self.run_ns.items():
                self.samples.setdefault(name, []).append(ns / self.run_packets[name])
        self.run_ns.clear()
        self.run_packets.clear()

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(values) for name, values in self.samples.items()}


@dataclass
class Path:
    name: str
    frames: list[bytes]
    rx_port: int
    delivered_to: int


def paths() -> list[Path]:
    return [
        Path("VF→VF", udp_frames(VM0_V4, VM1_V4, PORTS[VF0].mac), VF0, VF1),
        Path("VF→PF (encap)", udp_frames(VM0_V4, REMOTE_V4, PORTS[VF0].mac), VF0, PF0),
        Path(
            "PF→VF (decap)",
            tunnel_frames(udp_frames(REMOTE_V4, VM0_V4, PORTS[VF0].mac), UNDERLAY[VF0]),
            PF0,
            VF0,
        ),
        Path("VF→VF IPv6", udp6_frames(VM0_V6, VM1_V6), VF0, VF1),
    ]


def graph_for(state: AgentState) -> tuple[Graph, list[NullPort]]:
    """The whole pipeline over null ports (the underlay router's MAC already learned)."""
    macs = PortMacs(PORTS)
    macs.learn(PF0, mac_bytes("02:aa:bb:cc:dd:01"))
    null_ports = [NullPort(p) for p in PORTS]
    return build_pipeline(state, macs, null_ports), null_ports


def time_delivered(
    name: str,
    state: AgentState,
    frames: Sequence[bytes],
    rx_port: int,
    delivered_to: int,
    n: int,
    repeat: int,
) -> tuple[float, dict[str, float]]:
    """Median ns/packet of the whole graph over batches of ``n`` copies of ``frames`` received on
    ``rx_port``, and each node's ns/packet; every timed frame must reach ``delivered_to``."""
    graph, null_ports = graph_for(state)
    pool = PacketPool(4 * n)
    template = Template.of(frames, n, rx_port, pool)
    timer = NodeTimer(graph)
    samples = []
    for i in range(repeat + 2):
        batch = template.fresh(pool.alloc(n))
        started = time.perf_counter_ns()
        graph.enqueue(batch)
        graph.run()
        elapsed = time.perf_counter_ns() - started
        timer.end_run(keep=i >= 2)
        if i < 2:  # warm-up: flows are created, balanced and evaluated, tables compiled
            null_ports[delivered_to].sent = 0
            continue
        samples.append(elapsed / n)
    delivered = null_ports[delivered_to].sent
    if delivered != n * repeat:
        raise RuntimeError(f"{name}: {delivered} of {n * repeat} frames delivered")
    return statistics.median(samples), timer.medians()


def bench_path(path: Path, n: int, repeat: int, extra_routes: int = 0) -> tuple[float, dict[str, float]]:
    """Median ns/packet of the whole graph for ``path`` at batch ``n``, and each node's ns/packet."""
    state = make_state(extra_routes)
    return time_delivered(path.name, state, path.frames, path.rx_port, path.delivered_to, n, repeat)


def bench_lpm(repeat: int) -> list[tuple[str, int, float]]:
    rows = []
    rng = np.random.default_rng(3)
    for routes in (10, 100_000):
        state = make_state()
        add_random_routes(state.vnis[VNI], routes)
        state.version += 1
        started = time.perf_counter()
        lpm4 = Lpm4(state)
        compile4 = time.perf_counter() - started
        started = time.perf_counter()
        lpm6 = Lpm6(state)
        compile6 = time.perf_counter() - started
        for n in BATCHES:
            vni = np.full(n, VNI, dtype=np.uint32)
            addr = rng.integers(0, 2**32, n, dtype=np.uint64)
            hi = rng.integers(0x2400 << 48, 0x2C00 << 48, n, dtype=np.uint64)
            lo = rng.integers(0, 2**63, n, dtype=np.uint64)
            samples4, samples6 = [], []
            for _ in range(repeat):
                t0 = time.perf_counter_ns()
                lpm4.lookup(vni, addr)
                t1 = time.perf_counter_ns()
                lpm6.lookup(vni, hi, lo)
                t2 = time.perf_counter_ns()
                samples4.append((t1 - t0) / n)
                samples6.append((t2 - t1) / n)
            rows.append(
                (
                    f"lpm4 lookup, {routes:,} routes (compile {compile4 * 1e3:.0f} ms)",
                    n,
                    statistics.median(samples4),
                )
            )
            rows.append(
                (
                    f"lpm6 lookup, {routes:,} routes (compile {compile6 * 1e3:.0f} ms)",
                    n,
                    statistics.median(samples6),
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="timed batches per figure (median)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of tables")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    for path in paths():
        for n in BATCHES:
            total, per_node = bench_path(path, n, args.repeat)
            rows.append({"what": f"path {path.name}", "batch": n, "ns_per_packet": total})
            rows.extend(
                {"what": f"  {path.name}: {node}", "batch": n, "ns_per_packet": ns}
                for node, ns in per_node.items()
            )
    for path in paths()[:2]:
        for n in BATCHES:
            total, _ = bench_path(path, n, max(20, args.repeat // 4), extra_routes=100_000)
            rows.append(
                {"what": f"path {path.name}, 100,000 routes in the VNI", "batch": n, "ns_per_packet": total}
            )
    rows.extend({"what": w, "batch": b, "ns_per_packet": ns} for w, b, ns in bench_lpm(args.repeat))
    if args.json:
        print(json.dumps([{**r, "ns_per_packet": round(float(r["ns_per_packet"]), 1)} for r in rows]))  # type: ignore[arg-type]
        return
    table: dict[str, dict[int, float]] = {}
    for row in rows:
        table.setdefault(str(row["what"]), {})[int(row["batch"])] = float(row["ns_per_packet"])  # type: ignore[call-overload, arg-type]
    print(f"{'ns per packet (median)':<62}" + "".join(f"{'batch ' + str(b):>12}" for b in BATCHES))
    for what, by_batch in table.items():
        print(f"{what:<62}" + "".join(f"{by_batch.get(b, float('nan')):>12.0f}" for b in BATCHES))
    for name in ("path VF→VF", "path VF→PF (encap)"):
        ns = table.get(name, {}).get(1024)
        if ns:
            print(f"{name} at batch 1024: {ns:.0f} ns/packet of graph time = {1e3 / ns:.2f} Mpps on one core")


if __name__ == "__main__":
    main()
