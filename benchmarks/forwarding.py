"""Forwarding benchmark: the agent against the Linux kernel, measured side by side (BRIEF.md §6).

Topology per scenario: generator namespace -> device under test -> sink namespace, RFC 2544
addresses (198.18.0.0/15), static neighbours, no ARP in the measured path.

* ``kernel``: the kernel forwarding IPv4 between two veths in a router namespace (the baseline);
  its receive processing is steered (RPS) to the DUT core, the generator runs on the other one.
* ``io-veth`` / ``io-tap``: our ports and worker loop with a pass-through graph (I/O ceiling).
* ``agent-vf-vf``: the real agent, VF -> VF in one VNI on veth "VF" ports (TPACKET rings).
* ``agent-vf-pf``: the real agent, VF -> remote VM via an IPv6 underlay route, IP-in-IPv6
  encapsulated out of the uplink; the sink is the underlay router's namespace.
* ``agent-tap-vf-vf``: as ``agent-vf-vf`` with the VMs on TAP devices.

The generator is ``benchmarks/txgen.c`` (a drop-tolerant AF_PACKET TX-ring generator with qdisc
bypass; trafgen aborts on the first EAGAIN a veth returns under RPS) pinned to CPU 0; the device under
test owns CPU 1. Each point: 1.5 s warm-up, 4 s window, median of 3 runs. Before each run the
benchmark waits for the machine to be quiet and afterwards discards a run during which processes
outside our namespaces used more than ``--max-foreign`` CPU. Offered = frames the generator's veth
accepted, delivered = frames that reached the sink's device (where a tc filter drops them, so the
sink costs the same for every scenario).

Run as root: ``python -m benchmarks.forwarding [--scenarios kernel,agent-vf-vf,...] [--sizes 60,1400]``.
No timing here is ever asserted by a test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from socket import inet_aton

from kubevpc_agent.lab.netns import Netns, NetnsPool, leftover_namespaces, sh, wait_for
from kubevpc_agent.lab.topology import Lab

GEN_CPU = 0
DUT_CPU = 1
WARMUP = 1.5
WINDOW = 4.0
GEN_IP, SINK_IP = "198.18.0.1", "198.19.0.1"
GEN_NET_GW, SINK_NET_GW = "198.18.0.254", "198.19.0.254"
VNI = 100


# --- measurement -------------------------------------------------------------------------------


def link_stats(ns: Netns, dev: str) -> dict[str, int]:
    out = json.loads(ns.run("ip", "-j", "-s", "link", "show", "dev", dev))[0]
    stats = out.get("stats64", out.get("stats"))
    return {
        "rx_packets": stats["rx"]["packets"],
        "rx_bytes": stats["rx"]["bytes"],
        "rx_dropped": stats["rx"]["dropped"],
        "tx_packets": stats["tx"]["packets"],
        "tx_dropped": stats["tx"]["dropped"],
    }


def gen_stats(ends: Endpoints) -> dict[str, int]:
    return link_stats(ends.gen, ends.gen_dev)


def sink_stats(ends: Endpoints) -> dict[str, int]:
    return link_stats(ends.sink, ends.sink_dev)


def cpu_times_by_pid() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, user+system seconds) for every user-space process."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ppid, flags = int(fields[1]), int(fields[6])
        if flags & 0x00200000:  # PF_KTHREAD: softirq/ksoftirqd work belongs to whoever caused it
            continue
        out[int(entry.name)] = (ppid, (int(fields[11]) + int(fields[12])) / tick)
    return out


def our_pids(namespaces: Sequence[Netns]) -> set[int]:
    pids = {os.getpid()}
    for ns in namespaces:
        pids.update(ns.pids())
    return pids


def foreign_cpu(
    before: dict[int, tuple[int, float]], after: dict[int, tuple[int, float]], ours: set[int]
) -> float:
    """CPU seconds used between two samples by processes that are not ours (nor children of ours)."""
    total = 0.0
    for pid, (ppid, t1) in after.items():
        if pid in ours or ppid in ours:
            continue
        t0 = before.get(pid, (ppid, 0.0))[1]
        total += max(0.0, t1 - t0)
    return total


def wait_quiet(namespaces: Sequence[Netns], limit: float, timeout: float = 120.0) -> float:
    """Wait until foreign processes use under ``limit`` CPUs for half a second; returns that figure."""
    deadline = time.monotonic() + timeout
    while True:
        ours = our_pids(namespaces)
        before = cpu_times_by_pid()
        time.sleep(0.5)
        load = foreign_cpu(before, cpu_times_by_pid(), ours) / 0.5
        if load <= limit or time.monotonic() > deadline:
            return load
        time.sleep(1.0)


@dataclass
class Run:
    offered_pps: float
    delivered_pps: float
    delivered_gbps: float
    foreign_cpus: float  # CPUs used by other processes during the window
    valid: bool


BURST = 3000  # frames per burst: fits the 4096-frame rx ring and a TAP queue of 10000
BURSTS = 15

DRAIN_TIMER = """
import os, signal, sys, time
path, target, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def count():
    with open(path) as f:
        return int(f.read())
def cpu_ns():  # time the worker ran (user + kernel on its behalf), ns resolution
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])
start, cpu0 = count(), cpu_ns()
os.kill(pid, signal.SIGCONT)
t0 = time.perf_counter()
while count() - start < target and time.perf_counter() - t0 < 2.0:
    pass
elapsed = time.perf_counter() - t0
print(elapsed, count() - start, (cpu_ns() - cpu0) / 1e9)
"""


def worker_pid(dut: Netns) -> int:
    """The dataplane worker: the process in the DUT namespace whose parent is there too."""
    pids = set(dut.pids())
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in pids:
            return pid
    raise RuntimeError(f"no dataplane worker in {dut.name}")


def burst_capacity(
    ends: Endpoints, frame: int, max_foreign: float, quiet_timeout: float
) -> tuple[float, float]:
    """BRIEF.md §6 burst drain: pause the worker, queue a burst, resume it, time the drain.

    Returns packets per second of wall time and per second of the worker's own CPU time
    (``/proc/<pid>/schedstat``): the second does not count time other processes took the CPU.
    """
    assert ends.dut is not None
    pid = worker_pid(ends.dut)
    ends.gen.ip("link", "set", ends.gen_dev, "txqueuelen", "10000")
    # establish the flows first
    warm = Generator(ends, frame, 20000.0)
    time.sleep(1.0)
    warm.stop()
    rates: list[float] = []
    cpu_rates: list[float] = []
    for _ in range(BURSTS):
        wait_quiet(ends.namespaces, max_foreign, quiet_timeout)
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T")
            before = gen_stats(ends)
            gen = Generator(ends, frame, None, count=BURST)
            gen.proc.wait(30)
            gen.stop()
            # a TAP counts tx when the reader takes a frame, so count what was not dropped instead
            queued = BURST - (gen_stats(ends)["tx_dropped"] - before["tx_dropped"])
            timer = ends.sink.run(
                "taskset",
                "-c",
                str(GEN_CPU),  # never on the worker's CPU
                sys.executable,
                "-c",
                DRAIN_TIMER,
                f"/sys/class/net/{ends.sink_dev}/statistics/rx_packets",
                str(queued),
                str(pid),
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        seconds, delivered, cpu_seconds = timer.split()
        rates.append(int(delivered) / float(seconds))
        cpu_rates.append(int(delivered) / max(float(cpu_seconds), 1e-6))
    return statistics.median(rates), statistics.median(cpu_rates)


@dataclass
class Point:
    scenario: str
    frame: int
    runs: list[Run] = field(default_factory=list)
    note: str = ""
    capacity_pps: float = 0.0  # burst drain, per wall second (our dataplane only)
    capacity_cpu_pps: float = 0.0  # burst drain, per second of the worker's CPU time

    def valid_runs(self) -> list[Run]:
        return [r for r in self.runs if r.valid]

    def median(self, attr: str) -> float:
        runs = self.valid_runs() or self.runs
        return statistics.median(getattr(r, attr) for r in runs) if runs else 0.0


@dataclass
class Endpoints:
    """Where the generator sends and where the sink counts, plus the frame to send."""

    gen: Netns
    gen_dev: str
    dst_mac: str
    sink: Netns
    sink_dev: str
    namespaces: list[Netns]
    src_ip: str = GEN_IP
    dst_ip: str = SINK_IP
    dut: Netns | None = None  # where our dataplane worker runs (None: the kernel is the DUT)


def udp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, frame: int) -> bytes:
    """An IPv4/UDP frame of ``frame`` bytes (no FCS) from port 1024 to port 9."""
    ip_len, udp_len = frame - 14, frame - 34
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 17, 0, inet_aton(src_ip), inet_aton(dst_ip)
        )
    )
    words = struct.unpack("!10H", ip)
    total = sum(words)
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
    udp = struct.pack("!HHHH", 1024, 9, udp_len, 0)  # checksum 0: none (valid for IPv4)
    ether = bytes.fromhex(dst_mac.replace(":", "") + src_mac.replace(":", "")) + b"\x08\x00"
    return ether + bytes(ip) + udp + bytes(frame - 42)


SPORT_OFFSET = 34  # txgen varies the low byte of the UDP source port: FLOWS flows
FLOWS = 16


def txgen_binary() -> Path:
    """benchmarks/txgen.c compiled once into the tools cache (keyed by its source hash)."""
    source = Path(__file__).with_name("txgen.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("KUBEVPC_TOOLS", "/root/.cache/kubevpc/tools")) / "bin"
    binary = cache / f"txgen-{digest}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
        if compiler is None:
            raise RuntimeError("a C compiler is needed to build benchmarks/txgen.c (apt install clang)")
        tmp = binary.with_suffix(".tmp")
        sh(compiler, "-O2", "-o", str(tmp), str(source))
        tmp.rename(binary)
    return binary


def mac_of(ns: Netns, dev: str) -> str:
    return str(json.loads(ns.run("ip", "-j", "link", "show", "dev", dev))[0]["address"])


class Generator:
    """txgen pinned to the generator CPU, sending one frame size until stopped."""

    def __init__(self, ends: Endpoints, frame: int, rate: float | None, count: int = 0) -> None:
        data = udp_frame(mac_of(ends.gen, ends.gen_dev), ends.dst_mac, ends.src_ip, ends.dst_ip, frame)
        cmd = ["taskset", "-c", str(GEN_CPU), str(txgen_binary()), ends.gen_dev, data.hex(), str(FLOWS)]
        cmd += [str(SPORT_OFFSET), str(rate or 0), str(count)]
        self.proc = ends.gen.popen(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def measure(ends: Endpoints, frame: int, rate: float | None, max_foreign: float, quiet_timeout: float) -> Run:
    wait_quiet(ends.namespaces, max_foreign, quiet_timeout)
    gen = Generator(ends, frame, rate)
    try:
        time.sleep(WARMUP)
        if gen.proc.poll() is not None:
            raise RuntimeError(f"txgen exited: {gen.proc.stderr.read() if gen.proc.stderr else ''}")
        ours = our_pids(ends.namespaces)
        cpu0 = cpu_times_by_pid()
        g0, s0, t0 = gen_stats(ends), sink_stats(ends), time.monotonic()
        time.sleep(WINDOW)
        g1, s1, t1 = gen_stats(ends), sink_stats(ends), time.monotonic()
        foreign = foreign_cpu(cpu0, cpu_times_by_pid(), ours) / (t1 - t0)
    finally:
        gen.stop()
    seconds = t1 - t0
    # offered: what the generator's device took or had to drop at its peer (veth backlog / TAP queue)
    offered = (g1["tx_packets"] + g1["tx_dropped"] - g0["tx_packets"] - g0["tx_dropped"]) / seconds
    delivered = (s1["rx_packets"] - s0["rx_packets"]) / seconds
    gbps = (s1["rx_bytes"] - s0["rx_bytes"]) * 8 / seconds / 1e9
    return Run(offered, delivered, gbps, foreign, foreign <= max_foreign)


# --- topologies --------------------------------------------------------------------------------


SINK_MAC = "02:00:00:00:00:99"  # not the sink's MAC: its kernel drops the frames first thing


def sink_drops_everything(sink: Netns, dev: str) -> None:
    """Count at the sink's device; frames are addressed to a MAC the sink does not have.

    The sink's kernel then drops them at the top of ``ip_rcv`` (PACKET_OTHERHOST), which costs the
    same little for every scenario. (This kernel has no tc gact/nft-free drop action to use.)
    """
    sink.ip("link", "set", dev, "address", "02:00:00:00:00:98")


def set_rps(ns: Netns, dev: str, cpu: int) -> None:
    ns.run("sh", "-c", f"for q in /sys/class/net/{dev}/queues/rx-*; do echo {1 << cpu:x} > $q/rps_cpus; done")


def kernel_topology(pool: NetnsPool) -> Endpoints:
    gen, dut, sink = pool.netns("bgen"), pool.netns("bdut"), pool.netns("bsink")
    pool.veth("g0", gen, "d0", dut)
    pool.veth("d1", dut, "s0", sink)
    dut.sysctl("net.ipv4.ip_forward", 1)
    for key in ("all", "default", "d0", "d1"):
        dut.sysctl(f"net.ipv4.conf.{key}.rp_filter", 0)
    dut.ip("addr", "add", f"{GEN_NET_GW}/24", "dev", "d0")
    dut.ip("addr", "add", f"{SINK_NET_GW}/24", "dev", "d1")
    sink.ip("addr", "add", f"{SINK_IP}/24", "dev", "s0")
    dut.ip("neigh", "replace", SINK_IP, "lladdr", SINK_MAC, "dev", "d1", "nud", "permanent")
    set_rps(dut, "d0", DUT_CPU)  # the kernel DUT's forwarding runs on the DUT core
    sink_drops_everything(sink, "s0")
    return Endpoints(gen, "g0", mac_of(dut, "d0"), sink, "s0", [gen, dut, sink])


def passthrough_topology(pool: NetnsPool, driver: str) -> Endpoints:
    """Our ports + worker with a graph that sends everything from port 0 out of port 1."""
    gen, node, sink = pool.netns("bgen"), pool.netns("bnode"), pool.netns("bsink")
    if driver in ("netdev", "xdp"):
        pool.veth("g0", gen, "vf0", node)
        pool.veth("vf1", node, "s0", sink)
        gen_dev, sink_dev = "g0", "s0"
    else:
        gen_dev, sink_dev = "vf0", "vf1"
    cmd = [sys.executable, "-m", "benchmarks.forwarding", "--passthrough", driver]
    proc = node.popen(*cmd, cwd=str(Path(__file__).resolve().parent.parent))
    if driver == "tap":
        wait_for(lambda: "vf1" in node.ip("-o", "link", "show"), timeout=20, what="TAP devices")
        for dev, ns in (("vf0", gen), ("vf1", sink)):
            node.ip("link", "set", dev, "netns", ns.name)
            ns.ip("link", "set", dev, "up")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        raise RuntimeError(f"pass-through forwarder did not start: {line}{proc.stdout.read()}")
    sink_drops_everything(sink, sink_dev)
    return Endpoints(gen, gen_dev, "02:00:00:00:00:01", sink, sink_dev, [gen, node, sink], dut=node)


def run_passthrough(driver: str) -> None:
    """The ``--passthrough`` child: forward port 0 -> port 1 until killed."""
    import numpy as np

    from kubevpc_agent.config import AgentConfig
    from kubevpc_agent.dataplane import DataplaneOptions, start_dataplane
    from kubevpc_agent.graph.batch import Batch
    from kubevpc_agent.graph.graph import Graph
    from kubevpc_agent.graph.node import Node
    from kubevpc_agent.graph.port import Port, PortKind, PortSpec
    from kubevpc_agent.ports.factory import open_ports
    from kubevpc_agent.tables.state import AgentState
    from kubevpc_agent.tables.vm_mac import PortMacs

    class Forward(Node):
        name = "cls"
        NEXT_NODES = {1: "tx"}

        def process(self, batch: Batch) -> int:
            return 1 if batch.rx_port[0] == 0 else 0

    class Tx(Node):
        name = "tx"

        def __init__(self, out: Port) -> None:
            super().__init__()
            self.out = out

        def process(self, batch: Batch) -> int:
            self.out.send(batch)
            return 0

    class Drop(Node):
        name = "drop"

        def process(self, batch: Batch) -> int:
            return 0

    def build(state: AgentState, macs: PortMacs, ports: Sequence[Port]) -> Graph:
        return Graph([Forward(), Tx(ports[1]), Drop()])

    kind = {"netdev": ("net_af_packet", "netdev"), "xdp": ("net_af_xdp", "netdev"), "tap": ("net_tap", "tap")}
    prefix, port_driver = kind[driver]
    specs = tuple(
        PortSpec(i, f"{prefix}{i}", f"vf{i}", f"02:00:00:00:00:0{i + 1}", PortKind.VF, port_driver)
        for i in (0, 1)
    )
    config = AgentConfig(ports=specs)
    link = start_dataplane(config, open_ports(config), DataplaneOptions(cpu=DUT_CPU), build)
    print("ready", flush=True)
    _ = np
    try:
        while link.is_alive():
            time.sleep(0.5)
    finally:
        link.close()


def agent_topology(pool: NetnsPool, attach: str, encap: bool, io: str = "af_packet") -> Endpoints:
    """The real agent (one node of a :class:`Lab`) between a generator VM and a sink.

    VF -> VF: the sink is a second VM of the same VPC; it never transmits (IPv6 off), so the agent
    keeps addressing it with the port's own MAC and the sink's kernel drops the frames on arrival.
    VF -> PF: a route sends the sink's prefix to a remote underlay; the encapsulated frames leave
    through the uplink towards a router MAC nobody has, counted at the router namespace's link.
    """
    lab = Lab(pool)
    node = lab.add_node("bnode", io)
    if attach == "tap":
        gen, sink = node.add_tap_vm("bgen"), node.add_tap_vm("bsink")
    else:
        gen, sink = node.add_veth_vm("bgen", io), node.add_veth_vm("bsink", io)
    sink.ns.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
    sink.ns.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
    gen.ns.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
    gen.ns.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
    node.ns.ip(
        "-6", "neigh", "replace", "fe80::1", "lladdr", SINK_MAC, "dev", "pf0", "router", "nud", "permanent"
    )
    client = node.start()
    node.create_interface(gen, VNI, GEN_IP, None)
    if encap:
        client.create_route(VNI, "198.19.0.0/16", VNI, "fc00:2::d000:0:0:1")
        sink_ns, sink_dev = lab.router, "n1"
    else:
        node.create_interface(sink, VNI, SINK_IP, None)
        sink_ns, sink_dev = sink.ns, sink.nic
        if attach == "tap":  # a TAP's kernel side has the port's MAC, which the agent addresses
            sink.ns.ip("link", "set", sink.nic, "address", "02:00:00:00:00:98")
    if attach == "tap":
        port_mac = next(p.mac for p in node.ports if p.device == gen.device)
    else:
        port_mac = node.link_mac(next(p.ifname for p in node.ports if p.device == gen.device))
    namespaces = [lab.router, node.ns, gen.ns, sink.ns]
    return Endpoints(gen.ns, gen.nic, port_mac, sink_ns, sink_dev, namespaces, dut=node.ns)


XDP = "af_xdp"


@dataclass
class Scenario:
    name: str
    build: Callable[[NetnsPool], Endpoints]
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("kernel", kernel_topology, "Linux IPv4 forwarding between namespaces (baseline)"),
        Scenario(
            "io-veth", lambda p: passthrough_topology(p, "netdev"), "our ring ports + worker, no pipeline"
        ),
        Scenario("io-tap", lambda p: passthrough_topology(p, "tap"), "our TAP ports + worker, no pipeline"),
        Scenario("agent-vf-vf", lambda p: agent_topology(p, "veth", False), "agent, veth VF -> veth VF"),
        Scenario(
            "agent-vf-pf", lambda p: agent_topology(p, "veth", True), "agent, veth VF -> uplink (encap)"
        ),
        Scenario("io-xdp", lambda p: passthrough_topology(p, "xdp"), "AF_XDP ports + worker, no pipeline"),
        Scenario(
            "agent-xdp-vf-vf", lambda p: agent_topology(p, "veth", False, "af_xdp"), "agent, AF_XDP VFs"
        ),
        Scenario(
            "agent-xdp-vf-pf", lambda p: agent_topology(p, "veth", True, "af_xdp"), "agent, AF_XDP VF -> PF"
        ),
        Scenario("agent-tap-vf-vf", lambda p: agent_topology(p, "tap", False), "agent, TAP VF -> TAP VF"),
        Scenario(
            "agent-tap-vf-pf", lambda p: agent_topology(p, "tap", True), "agent, TAP VF -> uplink (encap)"
        ),
        Scenario(
            "agent-tap-vf-xdp-pf",
            lambda p: agent_topology(p, "tap", True, XDP),
            "agent, TAP VF -> AF_XDP uplink (encap)",
        ),
    )
}


# --- driver ------------------------------------------------------------------------------------


@contextlib.contextmanager
def scenario_endpoints(scenario: Scenario) -> Iterator[Endpoints]:
    pool = NetnsPool()
    try:
        yield scenario.build(pool)
    finally:
        names = [ns.name for ns in pool.namespaces]
        pool.close()
        left = leftover_namespaces(names)
        if left:
            print(f"warning: namespaces left behind: {left}", file=sys.stderr)


def run_point(scenario: Scenario, frame: int, args: argparse.Namespace) -> Point:
    point = Point(scenario.name, frame)
    with scenario_endpoints(scenario) as ends:
        attempts = 0
        while len(point.valid_runs()) < args.runs and attempts < args.runs * 2:
            attempts += 1
            run = measure(ends, frame, args.rate, args.max_foreign, args.quiet_timeout)
            point.runs.append(run)
            print(
                f"  {scenario.name:16} {frame:5} B  offered {run.offered_pps / 1e6:6.3f} Mpps  "
                f"delivered {run.delivered_pps / 1e6:6.3f} Mpps  {run.delivered_gbps:6.2f} Gbit/s  "
                f"foreign {run.foreign_cpus:4.2f} CPU{'' if run.valid else '  (discarded)'}",
                flush=True,
            )
        if ends.dut is not None and args.burst:
            point.capacity_pps, point.capacity_cpu_pps = burst_capacity(
                ends, frame, args.max_foreign, args.quiet_timeout
            )
            wall, cpu = point.capacity_pps / 1e6, point.capacity_cpu_pps / 1e6
            print(
                f"  {scenario.name:16} {frame:5} B  burst drain {wall:6.3f} Mpps per wall second, "
                f"{cpu:6.3f} Mpps per worker CPU second",
                flush=True,
            )
    return point


def report(points: list[Point]) -> str:
    lines = [
        "| scenario | frame | offered Mpps | delivered Mpps | delivered/offered | Gbit/s | x kernel pps "
        "| burst drain Mpps (wall / worker CPU) | burst x kernel (wall / CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    kernel = {p.frame: p.median("delivered_pps") for p in points if p.scenario == "kernel"}
    for p in points:
        offered, delivered = p.median("offered_pps"), p.median("delivered_pps")
        base = kernel.get(p.frame)
        ratio = f"{delivered / base:.2f}" if base else "-"
        capacity = f"{p.capacity_pps / 1e6:.3f} / {p.capacity_cpu_pps / 1e6:.3f}" if p.capacity_pps else "-"
        cap_ratio = (
            f"{p.capacity_pps / base:.2f} / {p.capacity_cpu_pps / base:.2f}"
            if p.capacity_pps and base
            else "-"
        )
        lines.append(
            f"| {p.scenario} | {p.frame} | {offered / 1e6:.3f} | {delivered / 1e6:.3f} | "
            f"{delivered / offered if offered else 0:.2f} | {p.median('delivered_gbps'):.2f} | {ratio} "
            f"| {capacity} | {cap_ratio} |"
        )
    return "\n".join(lines)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_point_arguments(parser: argparse.ArgumentParser) -> None:
    """The options :func:`run_point` reads (shared with the other port-level benchmarks)."""
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--rate", type=float, default=None, help="offered packets/s; default: as fast as possible"
    )
    parser.add_argument("--max-foreign", type=float, default=0.15, help="CPUs other processes may use")
    parser.add_argument(
        "--quiet-timeout", type=float, default=120, help="seconds to wait for a quiet machine"
    )
    parser.add_argument(
        "--no-burst", dest="burst", action="store_false", help="skip the burst-drain capacity"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        default="kernel,agent-xdp-vf-vf,agent-xdp-vf-pf,agent-vf-vf,agent-tap-vf-vf,agent-tap-vf-pf",
    )
    parser.add_argument("--sizes", default="60,1400", help="frame sizes in bytes without FCS")
    add_point_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw runs here")
    parser.add_argument("--passthrough", choices=["netdev", "xdp", "tap"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.passthrough:
        run_passthrough(args.passthrough)
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs (generator and device under test)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # tear the namespaces down on SIGTERM too
    names = [n for n in args.scenarios.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    points: list[Point] = []
    txgen_binary()
    for frame in sizes:
        for name in names:
            points.append(run_point(SCENARIOS[name], frame, args))
    print()
    print(report(points))
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in points], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
