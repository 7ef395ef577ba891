"""Control-plane throughput of the agent: CreateRoute/s serial and with 16 in flight, routes per VNI.

Starts the real agent process (dpservice-bin's command line, gRPC on a free loopback port) and
drives it with a plain Python gRPC client, the same kind of client dpservice's figures were
measured with (3,400-4,700 CreateRoute/s; its RIB stops at about 511 IPv4 routes per VNI):

1. serial: one CreateRoute after the other, each waiting for its reply;
2. 16 in flight: a window of 16 outstanding calls (``future()``);
3. fill one VNI to ``--routes`` routes (default 100,000), list them back, and report the agent's
   resident memory per route (RSS delta / routes).

The Python client itself needs ~250-330 µs of CPU per call, which caps its rate whatever the server
does. ``--go-client`` therefore also runs 1. and 2. with a Go gRPC client (``benchmarks/goclient``,
built on first use into the tools cache, needs /usr/local/go and the Go module proxy), interleaved
with the Python client's runs against the same agent. Every rate comes with the server's and the
client's CPU time per call.

Without ``--taps`` the agent runs without ports (control plane only: state + gRPC). With
``--taps`` (root) it gets dpservice's six TAP ports and a VF interface, so every command also
crosses the pipe to the dataplane worker, whose replica's memory is reported too.

    python -m benchmarks.control_plane [--routes N] [--serial N] [--taps] [--go-client] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _root in ("agent", "proto"):
    if os.path.join(REPO, _root) not in sys.path:
        sys.path.insert(0, os.path.join(REPO, _root))

import grpc  # noqa: E402

from dpdkironcore.v1 import dpdk_pb2 as pb  # noqa: E402
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg  # noqa: E402

VNI = 100
GOCLIENT = os.path.join(REPO, "benchmarks", "goclient")
GO = "/usr/local/go/bin/go"
TOOLS = os.environ.get("KUBEVPC_TOOLS", "/root/.cache/kubevpc/tools")
TICKS = os.sysconf("SC_CLK_TCK")
NEXTHOP = pb.IpAddress(ipver=pb.IPV6, address=b"fc00:2::64:0:1")
WINDOW = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (the dataplane worker)."""
    total = 0
    for p in (pid, *children(pid)):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def go_client_binary() -> str:
    """Path of kubevpc-goclient, (re)built when missing or when its sources changed."""
    sources = ("go.mod", "go.sum", "main.go")
    digest = hashlib.sha256()
    for name in sources:
        with open(os.path.join(GOCLIENT, name), "rb") as f:
            digest.update(name.encode() + b"\0" + f.read())
    binary = os.path.join(TOOLS, "bin", "kubevpc-goclient")
    stamp = binary + ".sha256"
    try:
        with open(stamp) as f:
            if f.read().strip() == digest.hexdigest() and os.access(binary, os.X_OK):
                return binary
    except OSError:
        pass
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    env = dict(os.environ)
    env.update(
        GOPATH=os.path.join(TOOLS, "go"),
        GOMODCACHE=os.path.join(TOOLS, "go", "pkg", "mod"),
        GOCACHE=os.path.join(TOOLS, "gocache"),
        GOFLAGS="-trimpath -modcacherw -buildvcs=false",
        GOTOOLCHAIN="local",
    )
    print("building kubevpc-goclient ...", file=sys.stderr)
    subprocess.run([GO, "build", "-o", binary + ".tmp", "."], cwd=GOCLIENT, env=env, check=True)
    os.replace(binary + ".tmp", binary)
    with open(stamp, "w") as f:
        f.write(digest.hexdigest() + "\n")
    return binary


def descriptor_set(directory: str) -> str:
    """A FileDescriptorSet of dpdk.proto (with imports) for the Go client's dynamic messages."""
    out = os.path.join(directory, "dpdk.pb")
    proto = os.path.join("dpdkironcore", "v1", "dpdk.proto")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{os.path.join(REPO, 'proto')}",
         "--include_imports", f"--descriptor_set_out={out}", proto],
        check=True,
    )  # fmt: skip
    return out


class GoClient:
    """kubevpc-goclient bound to one agent: run(first, count, in_flight) -> calls/s."""

    def __init__(self, port: int, descriptor: str) -> None:
        self.binary = go_client_binary()
        self.args = [f"-addr=127.0.0.1:{port}", f"-descriptor={descriptor}", f"-vni={VNI}"]

    def run(self, first: int, count: int, in_flight: int) -> float:
        args = [self.binary, *self.args, f"-first={first}", f"-n={count}", f"-c={in_flight}"]
        # one P: the client is one core's work anyway, and an idle Go runtime spinning on the
        # second core would take it from the server (serial: ~3,200 vs ~2,900/s here)
        env = dict(os.environ, GOMAXPROCS="1")
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode:
            raise RuntimeError(f"kubevpc-goclient failed: {done.stdout}{done.stderr}")
        return float(json.loads(done.stdout)["per_s"])


def child_cpu_seconds() -> float:
    """CPU of reaped child processes (the Go client runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


Clock = Callable[[], float]


def timed(agent_pid: int, count: int, client_cpu: Clock, run: Callable[[], float]) -> dict[str, int]:
    """Runs one measurement: its rate and the server's and the client's CPU µs per call."""
    server0, client0 = cpu_seconds(agent_pid), client_cpu()
    rate = run()
    server, client = cpu_seconds(agent_pid) - server0, client_cpu() - client0
    us = 1e6 / count
    return {"per_s": round(rate), "server_us": round(server * us), "client_us": round(client * us)}


def route_request(i: int) -> Any:
    """The i-th distinct /32 (10.0.0.0 + i)."""
    addr = f"{10 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}".encode()
    prefix = pb.Prefix(ip=pb.IpAddress(ipver=pb.IPV4, address=addr), length=32)
    return pb.CreateRouteRequest(vni=VNI, route=pb.Route(prefix=prefix, nexthop_address=NEXTHOP))


class Agent:
    """The agent process under test."""

    def __init__(self, taps: bool, engine: str = "") -> None:
        self.port = free_port()
        tag = os.urandom(2).hex()
        eal: list[str] = ["--no-pci"]
        opts = ["--ipv6=fc00:1::1", f"--grpc-port={self.port}", "--no-stats", "--nic-type=tap"]
        if taps:
            eal += [f"--vdev=net_tap0,iface=kb{tag}p0", f"--vdev=net_tap1,iface=kb{tag}vf0"]
            opts += [f"--pf0=kb{tag}p0", f"--vf-pattern=kb{tag}vf"]
        env = {"PATH": os.environ.get("PATH", ""), "DP_CONF": ""}
        if engine:
            env["KUBEVPC_GRPC_ENGINE"] = engine
        env["PYTHONPATH"] = os.pathsep.join(os.path.join(REPO, d) for d in ("agent", "proto"))
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in stop())
        cmd = [sys.executable, "-m", "kubevpc_agent", *eal, "--", *opts]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.taps = taps

    def wait_ready(self, channel: grpc.Channel) -> None:
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"agent exited:\n{self.log.read().decode()}")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise

    def memory(self) -> dict[str, int]:
        out = {"control_plane_kib": rss_kib(self.proc.pid)}
        for child in children(self.proc.pid):
            out["dataplane_kib"] = rss_kib(child)
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def run_serial(stub: Any, first: int, count: int) -> float:
    start = time.perf_counter()
    for i in range(first, first + count):
        if stub.CreateRoute(route_request(i)).status.code:
            raise RuntimeError(f"route {i} failed")
    return count / (time.perf_counter() - start)


def run_windowed(stub: Any, first: int, count: int, window: int = WINDOW) -> float:
    inflight: deque[Any] = deque()
    start = time.perf_counter()
    for i in range(first, first + count):
        inflight.append(stub.CreateRoute.future(route_request(i)))
        if len(inflight) >= window and inflight.popleft().result().status.code:
            raise RuntimeError("a route failed")
    while inflight:
        if inflight.popleft().result().status.code:
            raise RuntimeError("a route failed")
    return count / (time.perf_counter() - start)


def measure(routes: int, serial: int, taps: bool, engine: str = "", go: bool = False) -> dict[str, Any]:
    agent = Agent(taps, engine)
    options = [("grpc.max_receive_message_length", 256 << 20)]
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            grpc.insecure_channel(f"127.0.0.1:{agent.port}", options=options) as channel,
        ):
            agent.wait_ready(channel)
            stub = pbg.DPDKironcoreStub(channel)
            stub.Initialize(pb.InitializeRequest())
            if taps:  # an interface makes the VNI; its commands also reach the dataplane worker
                iface = pb.CreateInterfaceRequest(
                    interface_id=b"vm1", vni=VNI, device_name="net_tap1",
                    ipv4_config=pb.IpConfig(primary_address=b"192.168.0.1"),
                    ipv6_config=pb.IpConfig(primary_address=b"::"),
                )  # fmt: skip
                assert stub.CreateInterface(iface).status.code == 0
            else:  # a load balancer also gives the VNI its route tables
                lb = pb.CreateLoadBalancerRequest(
                    loadbalancer_id=b"lb", vni=VNI, loadbalanced_ip=pb.IpAddress(address=b"192.168.0.1")
                )
                assert stub.CreateLoadBalancer(lb).status.code == 0
            run_serial(stub, 1 << 30, 500)  # warm-up in another VNI range, deleted below
            for i in range(1 << 30, (1 << 30) + 500):
                stub.DeleteRoute(pb.DeleteRouteRequest(vni=VNI, route=route_request(i).route))
            gocl = GoClient(agent.port, descriptor_set(tmp)) if go else None
            time.sleep(0.5)
            before = agent.memory()
            pid, n, py_cpu, go_cpu = agent.proc.pid, serial, time.process_time, child_cpu_seconds
            # interleaved (python serial, go serial, python 16, go 16) so machine noise hits both
            rates = {"serial": timed(pid, n, py_cpu, lambda: run_serial(stub, 0, n))}
            if gocl:
                rates["serial_go"] = timed(pid, n, go_cpu, lambda: gocl.run(n, n, 1))
            used = 4 * n if gocl else 2 * n
            rates["16_in_flight"] = timed(pid, n, py_cpu, lambda: run_windowed(stub, used - n, n))
            if gocl:
                rates["16_in_flight_go"] = timed(pid, n, go_cpu, lambda: gocl.run(used - 2 * n, n, WINDOW))
            fill_start = time.perf_counter()
            if routes > used:
                run_windowed(stub, used, routes - used)
            fill_seconds = time.perf_counter() - fill_start
            total = max(routes, used)
            time.sleep(0.5)
            after = agent.memory()
            start = time.perf_counter()
            listed = stub.ListRoutes(pb.ListRoutesRequest(vni=VNI), timeout=120)
            list_seconds = time.perf_counter() - start
            if listed.status.code or len(listed.routes) != total:
                raise RuntimeError(f"ListRoutes returned {len(listed.routes)} of {total}")
            over = stub.CreateRoute(route_request(total))
        result: dict[str, Any] = {
            "mode": "with dataplane (TAP ports)" if taps else "control plane only",
            "grpc_engine": engine or "default (core)",
            **{f"create_route_per_s_{k}": v["per_s"] for k, v in rates.items()},
            **{f"server_cpu_us_per_call_{k}": v["server_us"] for k, v in rates.items()},
            **{f"client_cpu_us_per_call_{k}": v["client_us"] for k, v in rates.items()},
            "routes_in_one_vni": total,
            "fill_seconds": round(fill_seconds, 1),
            "list_routes_seconds": round(list_seconds, 2),
            "one_more_route_status": over.status.code,
            "control_plane_bytes_per_route": round(
                (after["control_plane_kib"] - before["control_plane_kib"]) * 1024 / total
            ),
        }
        if "dataplane_kib" in after:
            result["dataplane_bytes_per_route"] = round(
                (after["dataplane_kib"] - before.get("dataplane_kib", 0)) * 1024 / total
            )
        return result
    finally:
        agent.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=100_000, help="routes to put into one VNI")
    parser.add_argument("--serial", type=int, default=10_000, help="routes per rate measurement")
    parser.add_argument("--taps", action="store_true", help="give the agent TAP ports and a dataplane (root)")
    parser.add_argument("--engine", choices=("core", "grpc"), default="", help="gRPC server engine")
    parser.add_argument("--go-client", action="store_true", help="also measure with benchmarks/goclient")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = measure(args.routes, args.serial, args.taps, args.engine, args.go_client)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
