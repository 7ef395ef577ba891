"""Network functions under load: established-flow forwarding, new-flow setup, memory per flow.

Parts (``--parts``, all by default):

* ``graph``: ns/packet of the whole graph (memory batches, no I/O; ``benchmarks/nodes.py``'s
  rig) on established flows with conntrack, NAT and the firewall active: VM → internet through
  the NAT gateway (encapsulated), the NAT replies back to the VM, VM → VM with a firewall rule;
* ``newflows``: new-flow setup rate of the whole graph on memory batches of 1,024 distinct flows
  (VM → VM; VM → internet through the NAT gateway; both with firewall rules);
* ``memory``: resident memory of 1,000,000 flows (flow table only, and with NAT ports), measured
  as the RSS growth of a fresh process;
* ``forwarding``: packets/s of the real agent with the NAT gateway and a firewall rule active on
  established flows (64-byte frames, VF → uplink, encapsulated), beside the kernel's forwarding
  in the same run (``benchmarks/forwarding.py``'s generator, windows and median of 3);
* ``newflows-ports``: the real agent fed with always-new UDP flows by a generator on the other
  CPU (every frame a flow never seen before): frames the sink counts per second are flows set up
  and forwarded per second, with and without the NAT gateway.

Run as root from the repository root: ``python -m benchmarks.network_functions [--parts ...]``.
No figure here is asserted by a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from pathlib import Path

from benchmarks import forwarding as fw
from benchmarks.nodes import (
    PF0,
    PORTS,
    VF0,
    VM0_V4,
    VM1_V4,
    Template,
    graph_for,
    make_state,
    tunnel_frames,
    udp_frames,
)

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.graph.batch import PacketPool
from kubevpc_agent.graph.graph import Graph
from kubevpc_agent.lab.netns import NetnsPool
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, PortRange, Protocol
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import mac_bytes

NAT_IP = IPv4Address("198.51.100.1")
NAT_UL = IPv6Address("fc00:1::d0:0:1:1")
INTERNET = IPv4Address("203.0.113.9")
BORDER = IPv6Address("fc00::ffff")
ANY4 = IPv4Network("0.0.0.0/0")


# --- the graph on memory batches -----------------------------------------------------------------


def nf_state(firewall: bool = True) -> AgentState:
    """``benchmarks.nodes``' two VMs, plus a default route, a NAT slice for VM0 and firewall rules."""
    state = make_state()
    state.apply(cmd.CreateRoute(100, IPv4Address(0), 0, BORDER))
    state.apply(cmd.CreateNat("vm2", NAT_IP, 1024, 65535, NAT_UL))
    if firewall:
        for iface, direction in (("vm2", Direction.EGRESS), ("vm3", Direction.INGRESS)):
            rule = FirewallRule(
                f"udp-{iface}",
                direction,
                Action.ACCEPT,
                1000,
                ANY4,
                ANY4,
                Protocol.UDP,
                dst_ports=PortRange(1, 65535),
            )
            state.apply(cmd.CreateFirewallRule(iface, rule, IPv4Address(0), IPv4Address(0)))
    return state


def run_batches(graph: Graph, template: Template, pool: PacketPool, repeat: int, warm: int = 2) -> float:
    """Median ns/packet of whole-graph runs over ``template`` (after ``warm`` untimed runs)."""
    n = len(template.lengths)
    samples = []
    for i in range(repeat + warm):
        batch = template.fresh(pool.alloc(n))
        started = time.perf_counter_ns()
        graph.enqueue(batch)
        graph.run()
        if i >= warm:
            samples.append((time.perf_counter_ns() - started) / n)
    return statistics.median(samples)


def part_graph(repeat: int) -> list[str]:
    rows = [
        "| path (established flows, 1,024 UDP flows) | batch | ns/packet | Mpps on one core |",
        "|---|---|---|---|",
    ]
    for n in (256, 1024):
        state = nf_state()
        graph, ports = graph_for(state)
        pool = PacketPool(4 * n)
        out = Template.of(udp_frames(VM0_V4, INTERNET, PORTS[VF0].mac), n, VF0, pool)
        ns_out = run_batches(graph, out, pool, repeat)
        assert ports[PF0].sent >= n * repeat, "NATed packets did not all leave"
        # the replies: from the internet to the NAT IP and the ports the flows got
        snat = graph.node("snat")
        nat_ports = sorted({p for p, _ in snat.nat_ports.portmap.values()})  # type: ignore[attr-defined]
        replies = [reply_frame(port) for port in nat_ports]
        back = Template.of(tunnel_frames(replies, NAT_UL), n, PF0, pool)
        ns_back = run_batches(graph, back, pool, repeat)
        vv = Template.of(udp_frames(VM0_V4, VM1_V4, PORTS[VF0].mac), n, VF0, pool)
        ns_vv = run_batches(graph, vv, pool, repeat)
        for name, ns in (
            ("VM → internet: conntrack, NAT, firewall, encap", ns_out),
            ("internet → VM: decap, conntrack, NAT restore, firewall", ns_back),
            ("VM → VM: conntrack, firewall egress + ingress", ns_vv),
        ):
            rows.append(f"| {name} | {n} | {ns:.0f} | {1e3 / ns:.2f} |")
    return rows


def reply_frame(nat_port: int) -> bytes:
    from benchmarks.nodes import FRAME_LEN

    from kubevpc_agent.protocols.ipv4 import build_ipv4
    from kubevpc_agent.protocols.udp import build_udp

    l4 = build_udp(INTERNET.packed, NAT_IP.packed, 9, nat_port, b"\x00" * (FRAME_LEN - 42))
    return (
        mac_bytes(PORTS[VF0].mac) * 2
        + b"\x08\x00"
        + build_ipv4(INTERNET.packed, NAT_IP.packed, 17, len(l4))
        + l4
    )


# --- new flows on memory batches ---------------------------------------------------------------------


def distinct_frames(n: int, src: IPv4Address, dst_base: int, dst_mac: str, first: int) -> list[bytes]:
    """``n`` UDP frames, each its own flow (source port and destination address vary)."""
    from benchmarks.nodes import FRAME_LEN

    from kubevpc_agent.protocols.ipv4 import build_ipv4
    from kubevpc_agent.protocols.udp import build_udp

    frames = []
    for i in range(first, first + n):
        dst = IPv4Address(dst_base + (i >> 14)).packed
        l4 = build_udp(src.packed, dst, 1024 + (i & 0x3FFF), 9, b"\x00" * (FRAME_LEN - 42))
        frames.append(
            mac_bytes(dst_mac)
            + mac_bytes("52:54:00:00:00:01")
            + b"\x08\x00"
            + build_ipv4(src.packed, dst, 17, len(l4))
            + l4
        )
    return frames


def part_newflows(batches: int) -> list[str]:
    rows = ["| new flows (batches of 1,024 distinct flows) | flows/s | µs per flow |", "|---|---|---|"]
    n = 1024
    cases: list[tuple[str, Callable[[], AgentState], IPv4Address, int]] = [
        ("VM → VM, firewall rules", nf_state, VM0_V4, VF0),
        ("VM → internet, NAT gateway port per flow, firewall rules", nf_state, VM0_V4, VF0),
    ]
    for name, make, src, port in cases:
        state = make()
        graph, ports = graph_for(state)
        to_vm = name.startswith("VM → VM")
        base = int(VM1_V4) if to_vm else int(INTERNET)
        pool = PacketPool(4 * n)
        created0 = graph.node("conntrack").counter_values()["flows_created"]
        elapsed = 0
        for b in range(batches):
            frames = distinct_frames(n, src, base, PORTS[port].mac, b * n) if not to_vm else vm_flows(n, b)
            template = Template.of(frames, n, port, pool)
            batch = template.fresh(pool.alloc(n))
            started = time.perf_counter_ns()
            graph.enqueue(batch)
            graph.run()
            elapsed += time.perf_counter_ns() - started
        created = graph.node("conntrack").counter_values()["flows_created"] - created0
        delivered = sum(p.sent for p in ports)
        assert created == n * batches and delivered == n * batches, (created, delivered)
        rate = created / (elapsed / 1e9)
        rows.append(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} |")
    return rows


def vm_flows(n: int, b: int) -> list[bytes]:
    """VM0 → VM1 frames whose (source port, destination port) pairs are all new."""
    from benchmarks.nodes import FRAME_LEN

    from kubevpc_agent.protocols.ipv4 import build_ipv4
    from kubevpc_agent.protocols.udp import build_udp

    frames = []
    for i in range(b * n, (b + 1) * n):
        l4 = build_udp(
            VM0_V4.packed, VM1_V4.packed, 1024 + (i & 0x3FFF), 1 + (i >> 14), b"\x00" * (FRAME_LEN - 42)
        )
        frames.append(
            mac_bytes(PORTS[VF0].mac) + mac_bytes("52:54:00:00:00:01") + b"\x08\x00"
            + build_ipv4(VM0_V4.packed, VM1_V4.packed, 17, len(l4)) + l4
        )  # fmt: skip
    return frames


# --- memory ---------------------------------------------------------------------------------------------

MEMORY_CHILD = r"""
import resource, sys, numpy as np
from kubevpc_agent.graph.batch import L3
from kubevpc_agent.tables.conntrack import FlowTable, make_keys, NatType
from kubevpc_agent.tables.nat import NatPorts, NatRequest
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096
flows_n, with_nat = int(sys.argv[1]), sys.argv[2] == "nat"
base = rss()
table = FlowTable(flows_n)
ports = NatPorts()
table.release_hooks.append(ports.release)
empty = rss()
chunk = 4096
for start in range(0, flows_n, chunk):
    i = np.arange(start, min(start + chunk, flows_n), dtype=np.uint64)
    n = len(i)
    src_lo = np.full(n, 0x0A000001, np.uint64) + (i >> np.uint64(16))  # 16 VMs' worth of sources
    sport = (np.uint64(1024) + (i & np.uint64(0x3FF))).astype(np.uint16)
    dport = (np.uint64(1) + ((i >> np.uint64(10)) & np.uint64(0x3F))).astype(np.uint16)
    dst_lo = np.full(n, 0xCB007109, np.uint64)
    zero = np.zeros(n, np.uint64)
    keys = make_keys(l3=np.full(n, L3.IPV4, np.uint8), proto=np.full(n, 17, np.uint8),
        src_hi=zero, src_lo=src_lo, dst_hi=zero, dst_lo=dst_lo, sport=sport, dport=dport,
        vni=np.full(n, 100, np.uint32), vnf_type=np.zeros(n, np.uint8))
    r = table.resolve(keys, 0.0, np.zeros(n, np.int16))
    assert r.created.all()
    if with_nat:
        req = NatRequest(port=np.zeros(n, np.int16), vni=np.full(n, 100, np.uint32),
            src_hi=zero, src_lo=src_lo, is_v6=np.zeros(n, bool), src_port=sport,
            dst_ip=dst_lo.astype(np.uint32), dst_port=dport,
            proto=np.full(n, 17, np.uint8), nat_ip=np.full(n, 0xC6336401, np.uint32),
            min_port=np.full(n, 1024, np.uint16), max_port=np.full(n, 65535, np.uint16))
        got = ports.allocate(req)
        assert (got >= 0).all()
        table.nat_type[r.flow] = NatType.NETWORK_LOCAL
full = rss()
print(base, empty, full, table.count, len(ports.overload), len(ports.portmap))
"""


def part_memory(flows: int) -> list[str]:
    rows = [
        "| flows | what | RSS of the empty table | RSS growth filled | total | bytes/flow |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("flows", "nat"):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(["agent", *sys.path]))
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, str(flows), kind],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.split()
        base, empty, full, count = (int(x) for x in out[:4])
        what = (
            "flow table (both keys, state)"
            if kind == "flows"
            else "flow table + NAT ports (portmap, port-overload)"
        )
        rows.append(
            f"| {count:,} | {what} | {(empty - base) / 2**20:.0f} MiB | {(full - empty) / 2**20:.0f} MiB | "
            f"{(full - base) / 2**20:.0f} MiB | {(full - base) / count:.0f} |"
        )
    return rows


# --- the real agent ----------------------------------------------------------------------------------


def _ip(text: str) -> pb.IpAddress:
    addr = ip_address(text)
    return pb.IpAddress(ipver=pb.IPV4 if addr.version == 4 else pb.IPV6, address=str(addr).encode())


def nat_agent_topology(pool: NetnsPool, nat: bool = True, io: str = fw.XDP) -> fw.Endpoints:
    """One agent node: a veth VM behind the NAT gateway with an egress firewall rule, default route
    to a border underlay; encapsulated frames counted at the router namespace's link. ``io`` is the
    agent's I/O method on the VF and the uplink (AF_XDP, as docs/dataplane.md recommends, or
    ``af_packet`` rings)."""
    from kubevpc_agent.lab.topology import Lab

    lab = Lab(pool)
    node = lab.add_node("bnode", io)
    gen = node.add_veth_vm("bgen", io)
    for key in ("all", "default"):
        gen.ns.sysctl(f"net.ipv6.conf.{key}.disable_ipv6", 1)
    node.ns.ip(
        "-6", "neigh", "replace", "fe80::1", "lladdr", fw.SINK_MAC, "dev", "pf0", "router", "nud", "permanent"
    )
    client = node.start()
    node.create_interface(gen, fw.VNI, fw.GEN_IP, None)
    client.create_route(fw.VNI, "0.0.0.0/0", fw.VNI, str(BORDER))
    iface = gen.interface_id.encode()
    if nat:
        reply = client.stub.CreateNat(
            pb.CreateNatRequest(interface_id=iface, nat_ip=_ip(str(NAT_IP)), min_port=1024, max_port=65535),
            timeout=10,
        )
        assert reply.status.code == 0, reply.status.message
    rule = pb.FirewallRule(
        id=b"egress-udp",
        direction=pb.EGRESS,
        action=pb.ACCEPT,
        priority=1000,
        source_prefix=pb.Prefix(ip=_ip("0.0.0.0"), length=0),
        destination_prefix=pb.Prefix(ip=_ip("0.0.0.0"), length=0),
        protocol_filter=pb.ProtocolFilter(
            udp=pb.UdpFilter(src_port_lower=-1, src_port_upper=-1, dst_port_lower=1, dst_port_upper=65535)
        ),
    )
    status = client.stub.CreateFirewallRule(
        pb.CreateFirewallRuleRequest(interface_id=iface, rule=rule), timeout=10
    ).status
    assert status.code == 0, status.message
    port_mac = node.link_mac(next(p.ifname for p in node.ports if p.device == gen.device))
    return fw.Endpoints(gen.ns, gen.nic, port_mac, lab.router, "n1", [lab.router, node.ns, gen.ns])


def part_forwarding(args: argparse.Namespace) -> list[str]:
    plain = fw.SCENARIOS["agent-xdp-vf-pf" if args.io == fw.XDP else "agent-vf-pf"]
    scenarios = [
        fw.SCENARIOS["kernel"],
        fw.Scenario(
            "agent-nat-fw",
            lambda p: nat_agent_topology(p, io=args.io),
            f"agent ({args.io}), veth VF -> uplink, NAT gateway + firewall rule",
        ),
        fw.Scenario("agent-vf-pf", plain.build, f"agent ({args.io}), veth VF -> uplink, no NAT"),
    ]
    fw.txgen_binary()
    points = [fw.run_point(s, 60, args) for s in scenarios]
    return fw.report(points).splitlines()


GENERATOR = r"""
import socket, struct, sys, time
dev, src, dst, mac_src, mac_dst = sys.argv[1:6]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
addresses = socket.inet_aton(src) + socket.inet_aton(dst)
ip = bytearray(struct.pack("!BBHHHBBH", 0x45, 0, 46, 0, 0x4000, 64, 17, 0) + addresses)
total = sum(struct.unpack("!10H", ip))
while total > 0xFFFF:
    total = (total & 0xFFFF) + (total >> 16)
ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
ether = bytes.fromhex(mac_dst.replace(":", "") + mac_src.replace(":", "")) + b"\x08\x00"
frame = bytearray(ether + ip + struct.pack("!HHHH", 0, 0, 26, 0) + bytes(18))
sent = 0
for dport in range(1, 65536):
    for sport in range(1024, 2048):  # 1,024 VM ports (portmap entries), each to 65,535 ports
        struct.pack_into("!HH", frame, 34, sport, dport)
        try:
            s.send(frame)
            sent += 1
        except BlockingIOError:
            pass
"""


def part_newflows_ports(args: argparse.Namespace) -> list[str]:
    """Every frame the generator sends is a new flow, so each frame the sink counts set one up."""
    rows = [
        "| agent, veth VF → uplink, always-new UDP flows | new flows/s set up and forwarded | offered/s |"
    ]
    rows.append("|---|---|---|")
    for nat in (False, True):
        with NetnsPool() as pool:
            ends = nat_agent_topology(pool, nat=nat, io=args.io)
            fw.wait_quiet(ends.namespaces, args.max_foreign, args.quiet_timeout)
            cmd_ = ["taskset", "-c", str(fw.GEN_CPU), sys.executable, "-c", GENERATOR]
            cmd_ += [ends.gen_dev, fw.GEN_IP, str(INTERNET), fw.mac_of(ends.gen, ends.gen_dev), ends.dst_mac]
            gen = ends.gen.popen(*cmd_, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(fw.WARMUP)
                s0, g0, t0 = (
                    fw.link_stats(ends.sink, ends.sink_dev),
                    fw.link_stats(ends.gen, ends.gen_dev),
                    time.monotonic(),
                )
                time.sleep(fw.WINDOW)
                s1, g1, t1 = (
                    fw.link_stats(ends.sink, ends.sink_dev),
                    fw.link_stats(ends.gen, ends.gen_dev),
                    time.monotonic(),
                )
            finally:
                gen.terminate()
                gen.wait(5)
            seconds = t1 - t0
            rate = (s1["rx_packets"] - s0["rx_packets"]) / seconds
            offered = (g1["tx_packets"] + g1["tx_dropped"] - g0["tx_packets"] - g0["tx_dropped"]) / seconds
            what = (
                "NAT gateway (a port-overload entry per flow) + firewall rule"
                if nat
                else "routing + firewall rule"
            )
            rows.append(f"| {what} | {rate:,.0f} | {offered:,.0f} |")
            print(
                f"  new flows through ports ({what}): {rate:,.0f}/s of {offered:,.0f}/s offered", flush=True
            )
    return rows


# --- driver ----------------------------------------------------------------------------------------------

PARTS = ("graph", "newflows", "memory", "forwarding", "newflows-ports")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--repeat", type=int, default=100, help="timed batches per graph figure")
    parser.add_argument("--batches", type=int, default=200, help="batches of new flows")
    parser.add_argument("--flows", type=int, default=1_000_000, help="flows for the memory figure")
    parser.add_argument(
        "--io", choices=[fw.XDP, "af_packet"], default=fw.XDP, help="the agent's I/O on VF and uplink"
    )
    fw.add_point_arguments(parser)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, fw._interrupt)  # tear the namespaces down on SIGTERM too
    parts = [p for p in args.parts.split(",") if p]
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    out: list[str] = []
    for part in parts:
        rows = {
            "graph": lambda: part_graph(args.repeat),
            "newflows": lambda: part_newflows(args.batches),
            "memory": lambda: part_memory(args.flows),
            "forwarding": lambda: part_forwarding(args),
            "newflows-ports": lambda: part_newflows_ports(args),
        }[part]()
        print("\n".join(rows), flush=True)
        out += ["", *rows]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
