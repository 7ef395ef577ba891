"""1,000 NetworkInterfaces over 3 nodes, from `kubectl apply` to traffic-ready; agent restart to full replay.

Everything is real (testkit.e2e): kube-apiserver + etcd, the chart installed with helm, the operator
as a local process with the chart's ServiceAccount, three agent processes in node namespaces, one
TAP port per interface (the agents create ~334 TAP devices each). Three of the interfaces (one per
node) have a VM namespace on their TAP for the traffic spot-check.

Figures:

* **apply -> traffic-ready** (target <= 60 s): from the start of `kubectl apply` of one VPC and N
  interfaces (round-robin over node-a/b/c) until (1) every agent lists exactly its interfaces with
  their IPs, and in the VPC's VNI a /32 route to every interface on the other nodes whose next hop
  is the underlay address that node's agent lists for it, plus the default routes; (2) every
  object is Ready for its generation; (3) the spot-check passes: the three VMs get their IP over
  DHCP and ping each other across nodes. The times of (1), (2) and (3) are reported separately.
* **agent restart -> full replay** (target <= 10 s): SIGKILL node-a's agent and start a new one
  (empty, uninitialized, its TAPs recreated). Replayed: node-a lists all its interfaces and all
  routes again. Fanned out: the other nodes' routes point at node-a's new underlay addresses.
  Status: every interface's status records its new underlay address (status follows on each
  object's timer, ``--status-interval``).

    python -m benchmarks.operator_scale [--nics 1000] [--status-interval 30] [--json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _root in ("tests", "operator", "agent", "proto"):
    if str(REPO / _root) not in sys.path:
        sys.path.insert(0, str(REPO / _root))

import grpc  # noqa: E402
import yaml  # noqa: E402

from dpdkironcore.v1 import dpdk_pb2 as pb  # noqa: E402
from testkit import e2e  # noqa: E402
from testkit.k8s_env import KubeControlPlane  # noqa: E402

VNI = 500
NAMESPACE_PREFIX = "scale"


def nic_ip(i: int) -> str:
    return str(ipaddress.IPv4Address("10.50.0.0") + 1 + i + i // 250 * 6)  # skip .0 and .251-.255


def node_of(i: int) -> str:
    return e2e.NODES[i % len(e2e.NODES)]


def device_of(i: int) -> str:
    return f"vm{i:04d}"


def manifest(n: int) -> str:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": f"{e2e.GROUP}/v1alpha1",
            "kind": "VPC",
            "metadata": {"name": "scale"},
            "spec": {"vni": VNI},
        }
    ]
    for i in range(n):
        docs.append(
            {
                "apiVersion": f"{e2e.GROUP}/v1alpha1",
                "kind": "NetworkInterface",
                "metadata": {"name": f"nic-{i:04d}"},
                "spec": {
                    "vpcRef": {"name": "scale"},
                    "nodeName": node_of(i),
                    "device": {"tap": {"name": device_of(i)}},
                    "ips": [nic_ip(i)],
                },
            }
        )
    return yaml.safe_dump_all(docs)


def listed(env: e2e.E2eEnv, node: str) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[int, str]]]:
    """(interfaces: id -> (ipv4, underlay), routes in the VNI: prefix -> (nexthop VNI, nexthop))."""
    with env.lab.nodes[node].view() as view:
        interfaces = view.stub.ListInterfaces(pb.ListInterfacesRequest(), timeout=30).interfaces
        routes = view.stub.ListRoutes(pb.ListRoutesRequest(vni=VNI), timeout=30).routes
    return (
        {i.id.decode(): (i.primary_ipv4.decode(), i.underlay_route.decode()) for i in interfaces},
        {
            f"{r.prefix.ip.address.decode()}/{r.prefix.length}": (
                r.nexthop_vni,
                r.nexthop_address.address.decode(),
            )
            for r in routes
        },
    )


class Programmed:
    """Traffic-ready check (1) of the module docstring, against the agents only."""

    def __init__(self, env: e2e.E2eEnv, n: int) -> None:
        self.env = env
        self.n = n
        self.uids: dict[str, str] = {}  # NIC name -> uid, learned once
        self.problem = "not checked yet"

    def learn_uids(self) -> bool:
        items = e2e.get_json(self.env.kube, "nic", "-n", self.env.namespace)["items"]
        self.uids = {item["metadata"]["name"]: item["metadata"]["uid"] for item in items}
        return len(self.uids) == self.n

    def __call__(self, nodes: tuple[str, ...] = e2e.NODES) -> bool:
        try:
            state = {node: listed(self.env, node) for node in e2e.NODES}
        except grpc.RpcError as error:  # ABORTED "not initialized": a fresh agent, not replayed yet
            self.problem = f"{error.code()}: {error.details()}"
            return False
        underlay: dict[str, str] = {}  # NIC ip -> underlay its own agent lists
        for node in e2e.NODES:
            interfaces, _ = state[node]
            for _, (ipv4, ul) in interfaces.items():
                underlay[ipv4] = ul
        for node in nodes:
            interfaces, routes = state[node]
            mine = {self.uids[f"nic-{i:04d}"]: nic_ip(i) for i in range(self.n) if node_of(i) == node}
            got = {iid: ipv4 for iid, (ipv4, _) in interfaces.items()}
            if got != mine:
                self.problem = f"{node}: {len(got)} interfaces, expected {len(mine)}"
                return False
            expected = {
                f"{nic_ip(i)}/32": (VNI, underlay.get(nic_ip(i), "?"))
                for i in range(self.n)
                if node_of(i) != node
            }
            expected |= {"0.0.0.0/0": (VNI, e2e.ROUTER_ADDRESS), "::/0": (VNI, e2e.ROUTER_ADDRESS)}
            if routes != expected:
                wrong = len(set(routes.items()) ^ set(expected.items()))
                self.problem = (
                    f"{node}: {len(routes)} routes, {wrong} differ from the expected {len(expected)}"
                )
                return False
        return True


def all_ready(env: e2e.E2eEnv, n: int) -> bool:
    objects = env.objects()
    return len(objects.nics) == n and all(e2e.is_ready(o) for o in objects.all())


def poll(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.2,
    progress: Callable[[], str] = str,
) -> float:
    """Seconds until ``check`` passes (AssertionError after ``timeout``); progress every 10 s on stderr."""
    began = last = time.monotonic()
    while not check():
        now = time.monotonic()
        if now - began > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {progress()}")
        if now - last > 10:
            print(f"  {now - began:5.0f} s waiting for {what}: {progress()}", file=sys.stderr)
            last = now
        time.sleep(interval)
    return time.monotonic() - began


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run(n: int, status_interval: float, kube: KubeControlPlane | None = None) -> dict[str, Any]:
    """The measurement (module docstring); on its own control plane unless ``kube`` is given."""
    if kube is not None:
        return _run(n, status_interval, kube)
    with KubeControlPlane() as own:
        return _run(n, status_interval, own)


def _run(n: int, status_interval: float, kube: KubeControlPlane) -> dict[str, Any]:
    spot = [e2e.VmSpec(f"spot-{i}", node_of(i), device_of(i)) for i in range(3)]
    spare = {node: [device_of(i) for i in range(3, n) if node_of(i) == node] for node in e2e.NODES}
    operator_env = {
        "KUBEVPC_POLL_INTERVAL": "0.5",
        "KUBEVPC_STATUS_INTERVAL": str(status_interval),
        "KUBEVPC_RETRY_DELAY": "1",
    }
    figures: dict[str, Any] = {"nics": n, "nodes": len(e2e.NODES), "status_interval_s": status_interval}
    began = time.monotonic()
    with e2e.e2e_environment(kube, spot, operator_env=operator_env, spare_taps=spare) as env:
        figures["setup_s"] = round(time.monotonic() - began, 1)
        path = env.logs / "scale.yaml"
        path.write_text(manifest(n))
        operator = env.operator
        assert operator.proc is not None
        cpu_before = cpu_seconds(operator.proc.pid)

        start = time.monotonic()
        env.kube.kubectl("apply", "-n", env.namespace, "-f", str(path), timeout=600)
        figures["kubectl_apply_s"] = round(time.monotonic() - start, 1)
        check = Programmed(env, n)
        poll(check.learn_uids, 60, "the interfaces to be listed")
        poll(check, 300, "the agents to be programmed", 0.5, lambda: check.problem)
        figures["programmed_s"] = round(time.monotonic() - start, 1)
        poll(lambda: all_ready(env, n), 300, "every object to be Ready", interval=0.5)
        figures["ready_s"] = round(time.monotonic() - start, 1)
        vms = [env.lab.vms[spec.name] for spec in spot]
        for machine in vms:
            machine.dhcp4()
        for a, b in ((0, 1), (1, 2), (2, 0)):
            assert e2e.ping(vms[a].ns, nic_ip(b)), f"spot-{a} cannot reach spot-{b}"
        figures["traffic_ready_s"] = round(time.monotonic() - start, 1)
        figures["operator_cpu_s"] = round(cpu_seconds(operator.proc.pid) - cpu_before, 1)
        _, observed = env.converged(timeout=120)  # the full check, not timed
        figures["routes_per_node"] = {node: len(d.routes) for node, d in observed.items()}

        # --- agent restart -> replay -------------------------------------------------------
        node_a = env.lab.nodes["node-a"]
        old = {iid: ul for iid, (_, ul) in listed(env, "node-a")[0].items()}
        killed = time.monotonic()
        node_a.kill()
        node_a.start()
        figures["agent_restart_s"] = round(time.monotonic() - killed, 1)  # process up, TAPs created
        poll(lambda: check(("node-a",)), 120, "node-a to be replayed", 0.1, lambda: check.problem)
        figures["replayed_s"] = round(time.monotonic() - killed, 1)
        poll(check, 120, "the other nodes to follow", 0.2, lambda: check.problem)
        figures["fanned_out_s"] = round(time.monotonic() - killed, 1)
        new = {iid: ul for iid, (_, ul) in listed(env, "node-a")[0].items()}
        figures["replayed_objects"] = len(new) + len(listed(env, "node-a")[1])

        def status_follows() -> bool:
            recorded = {o["metadata"]["uid"]: o["status"].get("underlayRoute") for o in env.objects().nics}
            return all(recorded.get(iid) == ul for iid, ul in new.items())

        poll(status_follows, 10 * status_interval + 60, "status to follow", interval=0.5)
        figures["status_followed_s"] = round(time.monotonic() - killed, 1)
        figures["underlays_changed"] = sum(1 for iid in new if old.get(iid) != new[iid])
        figures["initialize_calls_node_a"] = operator.count("Initialized agent on node node-a ")
        e2e.delete_all(env.kube, env.namespace, timeout=300)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nics", type=int, default=1000)
    parser.add_argument("--status-interval", type=float, default=30.0, help="operator status timer (s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (finally blocks) on SIGTERM too
    figures = run(args.nics, args.status_interval)
    if args.json:
        print(json.dumps(figures))
        return
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    targets: Mapping[str, float] = {"traffic_ready_s": 60.0, "replayed_s": 10.0}
    for key, limit in targets.items():
        verdict = "met" if figures[key] <= limit else "MISSED"
        print(f"{key}: {figures[key]} s (target <= {limit:.0f} s): {verdict}")


if __name__ == "__main__":
    main()
