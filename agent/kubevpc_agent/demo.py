"""The local demo: two agent nodes, an IPv6 underlay, five "VMs" in two VPCs that reuse addresses.

``python -m kubevpc_agent.demo`` (what ``make demo`` runs, as root) builds::

    VPC red  (VNI 100): red-1 10.0.0.1 on node1 | red-2 10.0.0.2, red-3 10.0.0.3 on node2
    VPC blue (VNI 200): blue-1 10.0.0.1 on node1 | blue-2 10.0.0.2 on node2

Every node is a real ``kubevpc-agent`` process in its own network namespace, started with
dpservice's command line; every VM is a namespace holding the kernel side of a TAP device its
node's agent created. The nodes' uplinks meet in an IPv6 router namespace (underlay /64s
``fc00:1::/64`` and ``fc00:2::/64``). Everything is configured through the agents' gRPC API
(``dpdkironcore.v1``), as metalnet would: interfaces, then routes on each node pointing at the
other node's interface underlay addresses.

The demo then shows, with real clients: DHCPv4 (busybox udhcpc) and DHCPv6 (dhclient -6), ping
and a TCP stream within each VPC (across nodes and on one node), and that the VPCs are isolated
even though they use the same addresses. It prints a summary and stays up until Ctrl-C.

Options:

* ``--check``: run the checks, print the summary, tear everything down and exit 0 if every check
  passed, 1 otherwise (CI runs this);
* ``--keep``: on exit leave the namespaces and agents running for inspection and print how to
  reach them and how to remove them later (``make clean-netns`` and the agent pids).

Without ``--keep`` everything (agents, TAP devices, namespaces, sockets) is removed on exit,
also after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from kubevpc_agent.lab.agent import LabError
from kubevpc_agent.lab.netns import NetnsPool
from kubevpc_agent.lab.topology import Lab, Node, Vm

RED, BLUE = 100, 200


@dataclass(frozen=True)
class VmPlan:
    name: str
    node: int  # 0 = node1, 1 = node2
    vni: int
    ipv4: str
    ipv6: str


PLAN = (
    VmPlan("red-1", 0, RED, "10.0.0.1", "fd00:100::1"),
    VmPlan("blue-1", 0, BLUE, "10.0.0.1", "fd00:100::1"),
    VmPlan("red-2", 1, RED, "10.0.0.2", "fd00:100::2"),
    VmPlan("blue-2", 1, BLUE, "10.0.0.2", "fd00:100::2"),
    VmPlan("red-3", 1, RED, "10.0.0.3", "fd00:100::3"),
)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Demo:
    lab: Lab
    nodes: list[Node]
    vms: dict[str, Vm]
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, run: Callable[[], tuple[bool, str]]) -> bool:
        """Run one check, record and print its outcome (an exception is a failure, not a crash)."""
        try:
            passed, detail = run()
        except Exception as exc:
            passed, detail = False, f"{type(exc).__name__}: {exc}".splitlines()[0]
        self.checks.append(Check(name, passed, detail))
        mark = "ok  " if passed else "FAIL"
        print(f"  [{mark}] {name}" + (f"  ({detail})" if detail else ""), flush=True)
        return passed


def say(text: str) -> None:
    print(text, flush=True)


def build(lab: Lab) -> Demo:
    """Nodes, VMs, agents, interfaces and routes."""
    nodes = [lab.add_node("node1"), lab.add_node("node2")]
    vms = {p.name: nodes[p.node].add_tap_vm(p.name) for p in PLAN}
    for node in nodes:
        say(f"starting {node.name}: kubevpc-agent in namespace {node.ns.name}, underlay {node.underlay}")
        node.start()
    underlays: dict[str, IPv6Address] = {}
    for p in PLAN:
        underlays[p.name] = nodes[p.node].create_interface(vms[p.name], p.vni, p.ipv4, p.ipv6)
        iface = vms[p.name].interface_id
        say(f"  CreateInterface {iface}: VNI {p.vni}, {p.ipv4}, {p.ipv6}, underlay {underlays[p.name]}")
    for i, node in enumerate(nodes):
        assert node.client is not None
        for p in PLAN:
            if p.node != i:  # a route to every VM of the same VPC on the other node
                node.client.create_route(p.vni, f"{p.ipv4}/32", p.vni, underlays[p.name])
                node.client.create_route(p.vni, f"{p.ipv6}/128", p.vni, underlays[p.name])
        routes = sum(2 for p in PLAN if p.node != i)
        say(f"  {node.name}: {routes} routes to the other node's interface underlays")
    return Demo(lab, nodes, vms)


def traffic(vm: Vm, *args: str, timeout: float = 60) -> tuple[bool, str]:
    result = vm.ns.try_run(sys.executable, "-m", "kubevpc_agent.lab.traffic", *args, timeout=timeout)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).strip().splitlines()
        return False, lines[-1] if lines else f"exit code {result.returncode}"
    info = json.loads(result.stdout.splitlines()[-1])
    return bool(info["ok"]), f"{info['bytes'] / 1e6:.1f} MB echoed, {info['mbit_s']:.0f} Mbit/s each way"


def ping(vm: Vm, addr: str) -> tuple[bool, str]:
    return vm.ping(addr), ""


def serve(vm: Vm, proto: str, port: int) -> None:
    proc = vm.ns.popen(sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", proto, "::", str(port))
    if proc.stdout is None or proc.stdout.readline().strip() != "listening":
        raise LabError(f"{vm.name}: echo server did not start")


def run_checks(demo: Demo) -> bool:
    vms = demo.vms
    say("\nDHCP (busybox udhcpc, dhclient -6) on every VM:")
    for p in PLAN:
        vm = vms[p.name]

        def dhcp(vm: Vm = vm, p: VmPlan = p) -> tuple[bool, str]:
            v4, v6 = vm.dhcp4(), vm.dhcp6()
            ok = v4.get("ip") == p.ipv4 and v4.get("mask") == "32" and v6.get("new_ip6_address") == p.ipv6
            routes = v4.get("staticroutes")
            return ok, f"{v4.get('ip')}/{v4.get('mask')}, routes {routes}, {v6.get('new_ip6_address')}"

        demo.check(f"{p.name} gets its addresses", dhcp)

    say("\nping within each VPC:")
    for src, dst, where in (
        ("red-1", "red-2", "across nodes"),
        ("red-2", "red-3", "same node"),
        ("red-3", "red-1", "across nodes"),
        ("blue-1", "blue-2", "across nodes"),
    ):
        target = next(p for p in PLAN if p.name == dst)
        for addr in (target.ipv4, target.ipv6):
            demo.check(f"{src} -> {dst} {addr} ({where})", functools.partial(ping, vms[src], addr))

    say("\nTCP within each VPC (8 MB echoed through the dataplane):")
    serve(vms["red-2"], "tcp", 7001)
    serve(vms["blue-2"], "tcp", 7002)
    demo.check(
        "red-1 -> red-2 TCP (across nodes)",
        lambda: traffic(vms["red-1"], "send", "tcp", "10.0.0.2", "7001", str(8 << 20)),
    )
    demo.check(
        "red-3 -> red-2 TCP (same node)",
        lambda: traffic(vms["red-3"], "send", "tcp", "10.0.0.2", "7001", str(8 << 20)),
    )
    demo.check(
        "blue-1 -> blue-2 TCP (across nodes)",
        lambda: traffic(vms["blue-1"], "send", "tcp", "10.0.0.2", "7002", str(8 << 20)),
    )

    say("\nVPC isolation (both VPCs use 10.0.0.1 and 10.0.0.2):")
    demo.check(
        "blue-1 cannot reach red-3's 10.0.0.3", lambda: (not vms["blue-1"].ping("10.0.0.3", 2, 3), "no reply")
    )
    serve(vms["red-2"], "udp", 7003)  # only red-2 answers on 7003

    def isolated() -> tuple[bool, str]:
        red_ok, _ = traffic(vms["red-1"], "send", "udp", "10.0.0.2", "7003", "100")
        blue_ok, _ = traffic(vms["blue-1"], "send", "udp", "10.0.0.2", "7003", "100", timeout=30)
        return red_ok and not blue_ok, f"answer on 10.0.0.2:7003 for red-1: {red_ok}, for blue-1: {blue_ok}"

    demo.check("10.0.0.2 is red-2 for red, blue-2 for blue", isolated)
    return all(c.passed for c in demo.checks)


def summary(demo: Demo) -> str:
    passed = sum(c.passed for c in demo.checks)
    lines = ["", "=" * 78, f"kubevpc demo: {passed}/{len(demo.checks)} checks passed", "=" * 78]
    lines.append(f"{'VM':8} {'node':6} {'VPC':9} {'IPv4':10} {'IPv6':14} namespace")
    for p in PLAN:
        vm = demo.vms[p.name]
        vpc = f"{'red' if p.vni == RED else 'blue'} {p.vni}"
        lines.append(f"{p.name:8} {demo.nodes[p.node].name:6} {vpc:9} {p.ipv4:10} {p.ipv6:14} {vm.ns.name}")
    failed = [c for c in demo.checks if not c.passed]
    if failed:
        lines.append("failed checks:")
        lines += [f"  - {c.name}: {c.detail}" for c in failed]
    return "\n".join(lines)


def how_to_look_around(demo: Demo) -> str:
    red1 = demo.vms["red-1"]
    node = demo.nodes[0]
    return "\n".join(
        [
            "",
            "Look around (as root, in another shell):",
            f"  ip netns exec {red1.ns.name} ping 10.0.0.2          # red-1 -> red-2 across the underlay",
            f"  ip netns exec {red1.ns.name} ip route              # routes from DHCP option 121",
            f"  kubevpc --address unix:{node.socket_path} list interface   # the agent's gRPC API",
            f"  ip netns exec {demo.lab.router.name} tcpdump -ni n1 ip6   # IP-in-IPv6 on the underlay",
        ]
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubevpc_agent.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="run the checks and exit (non-zero on failure)")
    parser.add_argument("--keep", action="store_true", help="leave namespaces and agents running on exit")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the demo needs root (network namespaces, TAP devices)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM tears down like Ctrl-C
    pool = NetnsPool()
    lab = Lab(pool)
    ok = False
    try:
        demo = build(lab)
        ok = run_checks(demo)
        say(summary(demo))
        if not args.check:
            say(how_to_look_around(demo))
            say(
                "\nThe demo stays up; Ctrl-C tears it down."
                if not args.keep
                else "\nCtrl-C leaves it running."
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        say("\ninterrupted")
        ok = ok and not args.check
    except LabError as exc:
        say(f"\nthe demo could not be set up: {exc}")
        ok = False
    finally:
        if args.keep:
            agents = [n.agent.proc.pid for n in lab.nodes if n.agent is not None]
            say(f"kept: namespaces {[ns.name for ns in pool.namespaces]}")
            say(f"      agent pids {agents}, sockets in {lab.workdir}")
            running = [p.pid for p in pool.processes if p.poll() is None]  # agents, echo servers
            pids = " ".join(map(str, dict.fromkeys([*agents, *running])))
            say(f"remove later with: kill {pids} && make clean-netns")
        else:
            say("tearing down: agents, TAP devices, namespaces")
            lab.close()
            pool.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
