"""End-to-end harness: the chart in a real API server, the operator as a local process, agents in namespaces.

What runs where (docs/testing-e2e.md has the picture)::

    root namespace                      node namespaces (one agent each)        router namespace
    kube-apiserver + etcd (loopback)    [node-a: kubevpc-agent pf0] ──veth──   [ IPv6 underlay   ]
    kubevpc-operator (local process,    [node-b: kubevpc-agent pf0] ──veth──   [ border router   ] ── internet
      the chart's ServiceAccount)       [node-c: kubevpc-agent pf0] ──veth──   [ fc00::ffff (TUN)]  45.86.6.6
         │ gRPC over unix sockets          │ TAP / veth "VF"
         └──────────────────────────────▶  VM namespaces (udhcpc, dhclient -6, ping, curl, HTTP)

* The chart is installed with ``helm install``; no pod runs (no kubelet). The operator process is
  configured from what the API server stored for the chart's operator Deployment (its container
  environment, with ``metadata.namespace`` resolved), and authenticates with a token of the chart's
  operator ServiceAccount, so the chart's RBAC and configuration are what the test exercises. Only
  the agent endpoints differ from a cluster: local mode (an agents file) instead of agent pods.
* Agents listen on unix sockets in the lab's temp dir: a unix socket lives in the file system, so
  the operator in the root namespace reaches an agent inside its node namespace without exposing
  gRPC on any network (the chart's loopback-only default, kept).
* Agents are started with our YAML configuration; each VM port is named after the netdev the
  samples give (``blue-web-1``), TAPs created by the agent, veth "VFs" opened by it. A TAP vanishes
  with its agent (as dpservice's net_tap does); :meth:`E2eNode.restart` re-attaches the new one.
* The harness plays the underlay's routing protocol towards the border router: public addresses
  (virtual IPs, NAT IPs, load balancer IPs) are announced to the underlay addresses the objects'
  status records (:func:`announce_public`).

:class:`AgentView` lists an agent's whole state over the dpservice gRPC API; :func:`expected_dataplane`
derives, independently of the operator's planning code, what every agent should hold from the
objects' specs and the underlay addresses in their status; :func:`compare` lists the differences.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from dpdkironcore.v1 import dpdk_pb2 as pb
from dpdkironcore.v1 import dpdk_pb2_grpc as pbg
from kubevpc_agent.lab.agent import AgentProcess, LabClient
from kubevpc_agent.lab.netns import Netns, NetnsPool, stop_process_group, wait_for
from kubevpc_agent.lab.topology import Lab, Node, Vm
from testkit import http_peers
from testkit.border_router import BorderRouter, attach_internet
from testkit.k8s_env import KubeControlPlane, find_tool, free_port

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubevpc"
SAMPLES = ROOT / "crds" / "samples"
GROUP = "kubevpc.dev"
KINDS = ("vpcs", "networkinterfaces", "loadbalancers", "natgateways")
SHORT = {"vpcs": "vpc", "networkinterfaces": "nic", "loadbalancers": "vlb", "natgateways": "natgw"}
NODES = ("node-a", "node-b", "node-c")
ROUTER_ADDRESS = "fc00::ffff"  # the border router's underlay address (dpservice's tests use it too)
DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")
FINALIZER = "kubevpc.dev/finalizer"
METRICS_PORT = 9100

# Operator settings for tests, passed through the chart's operator.extraEnv like any user setting
# (the router address goes through its own chart value, operator.routerAddress).
FAST_OPERATOR_ENV = {
    "KUBEVPC_POLL_INTERVAL": "0.5",  # CheckInitialized: an agent restart shows within half a second
    "KUBEVPC_STATUS_INTERVAL": "2",  # status follows a replay within two seconds
    "KUBEVPC_RETRY_DELAY": "1",
}


# --- the chart ------------------------------------------------------------------------------------


@dataclass
class ChartRelease:
    """One ``helm install`` of charts/kubevpc into the control plane."""

    kube: KubeControlPlane
    name: str
    namespace: str
    values: dict[str, Any]

    @property
    def fullname(self) -> str:
        return self.name if "kubevpc" in self.name else f"{self.name}-kubevpc"

    @property
    def operator_service_account(self) -> str:
        return f"{self.fullname}-operator"

    @property
    def operator_user(self) -> str:
        """The operator's ServiceAccount as the API server names the user."""
        return f"system:serviceaccount:{self.namespace}:{self.operator_service_account}"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        home = self.kube.workdir / "helm-home"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        argv = [
            str(find_tool("helm")),
            *args,
            f"--kubeconfig={self.kube.kubeconfig}",
            f"--namespace={self.namespace}",
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, env=env)
        if check and result.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed: {result.stderr}")
        return result

    @classmethod
    def install(cls, kube: KubeControlPlane, values: dict[str, Any]) -> ChartRelease:
        release = cls(
            kube, f"kubevpc-{uuid.uuid4().hex[:6]}", kube.create_namespace("kubevpc-system"), values
        )
        values_file = kube.workdir / f"{release.name}-values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        release.helm(
            "install", release.name, str(CHART), "-f", str(values_file)
        )  # no --wait: no pod ever runs
        for plural in KINDS:
            kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{plural}.{GROUP}")
        return release

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--wait", check=False)

    def operator_environment(self) -> dict[str, str]:
        """The operator container's environment as the API server stored it (fieldRefs resolved)."""
        deployment = get_json(self.kube, "deployment", f"{self.fullname}-operator", "-n", self.namespace)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env: dict[str, str] = {}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            if ref != "metadata.namespace":
                raise AssertionError(f"cannot run the operator locally: env {item} is not a value")
            env[item["name"]] = self.namespace
        return env

    def operator_args(self) -> list[str]:
        deployment = get_json(self.kube, "deployment", f"{self.fullname}-operator", "-n", self.namespace)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["kubevpc-operator"], container["command"]
        return list(container.get("args", []))


# --- the operator process -------------------------------------------------------------------------


class OperatorProcess:
    """``python -m kubevpc_operator`` in the root namespace, as the chart's operator ServiceAccount."""

    def __init__(
        self,
        release: ChartRelease,
        agents_file: Path,
        log_dir: Path,
        *,
        priority: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        kube = release.kube
        self.kubeconfig = kube.service_account_kubeconfig(release.namespace, release.operator_service_account)
        self.health_port = free_port()
        chart_env = release.operator_environment()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBEVPC_", "KUBECONFIG"))}
        self.env.update(chart_env)
        self.env.update(
            {
                "KUBECONFIG": str(self.kubeconfig),
                "KUBEVPC_AGENTS_FILE": str(agents_file),  # local mode instead of agent pods
                "KUBEVPC_LIVENESS": f"http://127.0.0.1:{self.health_port}/healthz",
                "KUBEVPC_PRIORITY": str(priority),
                "PYTHONUNBUFFERED": "1",
                # the source roots, as pytest's pythonpath has them (independent of how pip installed us)
                "PYTHONPATH": os.pathsep.join(
                    [
                        str(ROOT / "operator"),
                        str(ROOT / "agent"),
                        str(ROOT / "proto"),
                        os.environ.get("PYTHONPATH", ""),
                    ]
                ),
            }
        )
        self.env.update(env or {})
        self.chart_env = chart_env
        self.argv = [sys.executable, "-m", "kubevpc_operator", *release.operator_args()]
        self.log_path = log_dir / f"operator-{priority}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=str(self.log_path.parent),
            )
        wait_for(self._started, timeout=60, interval=0.2, what="the operator to start")
        return self

    def _started(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        return "Started kubevpc operator" in self.log()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def count(self, text: str) -> int:
        return self.log().count(text)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, sig, timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no peering goodbye, a handler possibly half-way."""
        self.stop(signal.SIGKILL)


# --- nodes, VMs, the border -----------------------------------------------------------------------


@dataclass(frozen=True)
class VmSpec:
    """A VM of the e2e lab: its port is named ``device`` (the NIC's spec.device name)."""

    name: str
    node: str
    device: str
    kind: str = "tap"  # "tap" (the agent creates it) or "veth" (a "VF" the agent opens)


class E2eNode(Node):
    """A lab node whose agent runs from our YAML configuration with ports named like the samples."""

    def __init__(self, lab: Lab, name: str, index: int) -> None:
        super().__init__(lab, name, index)
        self.port_config: list[dict[str, str]] = [{"ifname": "pf0", "driver": "netdev"}]
        self.config_path = lab.workdir / f"{name}.yaml"
        self.starts = 0

    def add_vm(self, spec: VmSpec) -> Vm:
        vm_ns = self._vm_ns(spec.name)
        if spec.kind == "tap":
            mac = self._mac(0)
            self.port_config.append({"ifname": spec.device, "device": spec.device, "kind": "vf", "mac": mac})
            vm = Vm(spec.name, self, vm_ns, spec.device, spec.device, "tap")
        else:
            self.lab.pool.veth(spec.device, self.ns, "eth0", vm_ns)
            vm_ns.run("ethtool", "-K", "eth0", "tx", "off")  # a real VF computes checksums in hardware
            self.port_config.append(
                {"ifname": spec.device, "device": spec.device, "kind": "vf", "driver": "netdev"}
            )
            vm = Vm(spec.name, self, vm_ns, spec.device, "eth0", "veth")
        self.vms.append(vm)
        return vm

    def _mac(self, kind: int) -> str:
        n = len(self.port_config)
        return f"02:{self.index:02x}:00:{kind:02x}:{n >> 8:02x}:{n & 0xFF:02x}"

    def add_spare_tap(self, device: str) -> None:
        """A TAP port without a VM: room for NetworkInterfaces a test creates later."""
        mac = self._mac(1)
        self.port_config.append({"ifname": device, "device": device, "kind": "vf", "mac": mac})

    def write_config(self) -> None:
        config = {
            "pf0": "pf0",
            "ipv6": str(self.underlay),
            "nic-type": "tap",
            "enable-ipv6-overlay": True,
            "no-offload": True,
            "grpc-listen": f"unix:{self.socket_path}",
            "metrics-listen": f"127.0.0.1:{METRICS_PORT}",  # inside the node namespace
            "ports": self.port_config,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self, metrics_port: int = 0, extra: tuple[str, ...] = ()) -> LabClient:
        """Start the agent (not initialized: that is the operator's job) and attach the TAP VMs."""
        self.write_config()
        self.socket_path.unlink(missing_ok=True)
        self.agent = AgentProcess(
            self.lab.pool, self.ns, ["--config", str(self.config_path)], self.socket_path
        )
        self.client = self.agent.wait_ready()
        for vm in self.vms:
            if vm.kind == "tap":
                self.ns.ip("link", "set", vm.nic, "netns", vm.ns.name)
            vm.ns.ip("link", "set", vm.nic, "up")
        self.starts += 1
        return self.client

    def kill(self) -> None:
        """SIGKILL the agent's process group (its dataplane worker goes with it); TAPs vanish."""
        assert self.agent is not None
        proc = self.agent.proc
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if self.client is not None:
            self.client.close()
            self.client = None
        for vm in self.vms:
            if vm.kind == "tap":
                wait_for(lambda vm=vm: not _has_link(vm.ns, vm.nic), timeout=10, what=f"{vm.nic} to vanish")

    def pause(self, pause: bool = True) -> None:
        """SIGSTOP (or SIGCONT) the agent's process group: calls to it hang, as on a stuck node."""
        assert self.agent is not None
        os.killpg(self.agent.proc.pid, signal.SIGSTOP if pause else signal.SIGCONT)

    def restart(self) -> LabClient:
        self.kill()
        return self.start()

    def view(self) -> AgentView:
        return AgentView(f"unix:{self.socket_path}")

    def metric_lines(self, word: str) -> list[str]:
        """The agent's Prometheus lines containing ``word`` (e.g. a drop reason), for diagnostics."""
        page = self.ns.run("curl", "-sf", f"http://127.0.0.1:{METRICS_PORT}/metrics")
        return [line for line in page.splitlines() if word in line and not line.startswith("#")]


def _has_link(ns: Netns, name: str) -> bool:
    return ns.try_run("ip", "link", "show", "dev", name).returncode == 0


@dataclass
class E2eLab:
    """Three nodes, their VMs, the router with the border router, and the internet namespace."""

    pool: NetnsPool
    lab: Lab
    nodes: dict[str, E2eNode]
    vms: dict[str, Vm]
    border: BorderRouter
    inet: Netns
    agents_file: Path
    announced: dict[str, str] = field(default_factory=dict)  # public address -> underlay

    @property
    def workdir(self) -> Path:
        return self.lab.workdir

    def views(self) -> dict[str, AgentView]:
        return {name: node.view() for name, node in self.nodes.items()}

    def snapshot(self, vnis: Iterable[int] = ()) -> dict[str, Dataplane]:
        result = {}
        for name, node in self.nodes.items():
            with node.view() as view:
                result[name] = view.snapshot(vnis)
        return result

    def close(self) -> None:
        names = [ns.name for ns in self.pool.namespaces]
        with contextlib.suppress(Exception):
            self.border.stop()
        self.lab.close()
        self.pool.close()
        leftovers = [n for n in names if _netns_exists(n)]
        assert leftovers == [], f"namespaces survived: {leftovers}"


def _netns_exists(name: str) -> bool:
    return Path(f"/run/netns/{name}").exists()


@contextlib.contextmanager
def e2e_lab(
    vms: Sequence[VmSpec],
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
    spare_taps: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[E2eLab]:
    """Build the lab, start the agents (uninitialized), attach VMs; remove everything afterwards."""
    pool = NetnsPool()
    lab = Lab(pool)
    border = BorderRouter(lab.router, ROUTER_ADDRESS)
    built: E2eLab | None = None
    try:
        nodes = {}
        for index, name in enumerate(NODES, start=1):
            node = E2eNode(lab, name, index)
            lab.nodes.append(node)
            nodes[name] = node
        machines = {spec.name: nodes[spec.node].add_vm(spec) for spec in vms}
        for node_name, devices in (spare_taps or {}).items():
            for device in devices:
                nodes[node_name].add_spare_tap(device)
        for node in nodes.values():
            node.start()
        inet = attach_internet(pool, lab.router)
        border.start()
        agents_file = lab.workdir / "agents.yaml"
        labels = node_labels or {}
        agents_file.write_text(
            yaml.safe_dump(
                {
                    name: {"address": f"unix:{node.socket_path}", "labels": dict(labels.get(name, {}))}
                    for name, node in nodes.items()
                }
            )
        )
        built = E2eLab(pool, lab, nodes, machines, border, inet, agents_file)
        yield built
    finally:
        if built is not None:
            built.close()
        else:
            with contextlib.suppress(Exception):
                border.stop()
            lab.close()
            pool.close()


# --- the agents' state over gRPC ------------------------------------------------------------------


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _addr(message: Any) -> str:
    text = _text(message.address)
    return str(ipaddress.ip_address(text)) if text else ""


def _prefix(message: Any) -> str:
    return str(ipaddress.ip_network(f"{_addr(message.ip)}/{message.length}", strict=False))


def _ip_message(text: str) -> pb.IpAddress:
    version = ipaddress.ip_address(text).version
    return pb.IpAddress(ipver=pb.IPV4 if version == 4 else pb.IPV6, address=text.encode())


def _unset(address: str) -> str:
    return "" if address in ("", "0.0.0.0", "::") else address


@dataclass(frozen=True)
class Dataplane:
    """Everything one agent holds, as sets of comparable tuples (underlay addresses included)."""

    interfaces: frozenset[tuple[str, int, str, str, str]] = frozenset()  # id, vni, ipv4, ipv6, underlay
    vips: frozenset[tuple[str, str, str]] = frozenset()  # interface, ip, underlay
    nats: frozenset[tuple[str, str, int, int, str]] = frozenset()  # interface, ip, min, max, underlay
    prefixes: frozenset[tuple[str, str, str]] = frozenset()  # interface, prefix, underlay
    lb_prefixes: frozenset[tuple[str, str, str]] = frozenset()  # interface, prefix, underlay
    firewall_rules: frozenset[tuple[str, str]] = frozenset()  # interface, rule id
    load_balancers: frozenset[tuple[str, int, str, tuple[tuple[int, int], ...], str]] = frozenset()
    lb_targets: frozenset[tuple[str, str]] = frozenset()  # lb id, target underlay
    routes: frozenset[tuple[int, str, int, str]] = frozenset()  # vni, prefix, nexthop vni, nexthop
    neighbor_nats: frozenset[tuple[str, int, int, int, str]] = frozenset()  # ip, vni, min, max, underlay

    @classmethod
    def of(cls, *tables: Iterable[Any]) -> Dataplane:
        """One from plain collections, in field order."""
        return cls(*(frozenset(table) for table in tables))

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__dataclass_fields__)

    def underlays(self) -> frozenset[str]:
        """Every underlay address this node handed out."""
        found = {
            entry[-1] for entry in self.interfaces | self.vips | self.nats | self.prefixes | self.lb_prefixes
        }
        return frozenset(found | {lb[-1] for lb in self.load_balancers})

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in self.__dataclass_fields__}


class AgentView:
    """Read-only dpservice gRPC client for one agent: the List/Get RPCs, raw (not the operator's code)."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        self.channel = grpc.insecure_channel(address, options=options)
        self.stub = pbg.DPDKironcoreStub(self.channel)
        self.timeout = timeout

    def __enter__(self) -> AgentView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.channel.close()

    def uuid(self) -> str | None:
        """CheckInitialized's UUID; None while the agent is not initialized (ABORTED)."""
        try:
            return str(self.stub.CheckInitialized(pb.CheckInitializedRequest(), timeout=5).uuid)
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.ABORTED:
                return None
            raise

    def _ok(self, response: Any, what: str) -> Any:
        assert response.status.code == 0, f"{what}: [{response.status.code}] {response.status.message}"
        return response

    def snapshot(self, vnis: Iterable[int] = ()) -> Dataplane:
        t = self.timeout
        listed = self._ok(self.stub.ListInterfaces(pb.ListInterfacesRequest(), timeout=t), "ListInterfaces")
        interfaces, vips, nats, prefixes, lb_prefixes, rules = set(), set(), set(), set(), set(), set()
        seen_vnis = set(vnis)
        for iface in listed.interfaces:
            iid = _text(iface.id)
            seen_vnis.add(iface.vni)
            interfaces.add(
                (
                    iid,
                    iface.vni,
                    _unset(_text(iface.primary_ipv4)),
                    _unset(_text(iface.primary_ipv6)),
                    _text(iface.underlay_route),
                )
            )
            raw = iid.encode()
            vip = self.stub.GetVip(pb.GetVipRequest(interface_id=raw), timeout=t)
            if vip.status.code == 0:
                vips.add((iid, _addr(vip.vip_ip), _text(vip.underlay_route)))
            nat = self.stub.GetNat(pb.GetNatRequest(interface_id=raw), timeout=t)
            if nat.status.code == 0:
                nats.add((iid, _addr(nat.nat_ip), nat.min_port, nat.max_port, _text(nat.underlay_route)))
            listed_prefixes = self._ok(
                self.stub.ListPrefixes(pb.ListPrefixesRequest(interface_id=raw), timeout=t), "ListPrefixes"
            )
            prefixes |= {(iid, _prefix(p), _text(p.underlay_route)) for p in listed_prefixes.prefixes}
            listed_lb = self._ok(
                self.stub.ListLoadBalancerPrefixes(
                    pb.ListLoadBalancerPrefixesRequest(interface_id=raw), timeout=t
                ),
                "ListLoadBalancerPrefixes",
            )
            lb_prefixes |= {(iid, _prefix(p), _text(p.underlay_route)) for p in listed_lb.prefixes}
            listed_rules = self._ok(
                self.stub.ListFirewallRules(pb.ListFirewallRulesRequest(interface_id=raw), timeout=t),
                "ListFirewallRules",
            )
            rules |= {(iid, _text(r.id)) for r in listed_rules.rules}
        lbs = self._ok(
            self.stub.ListLoadBalancers(pb.ListLoadBalancersRequest(), timeout=t), "ListLoadBalancers"
        )
        load_balancers, targets = set(), set()
        for lb in lbs.loadbalancers:
            lid = _text(lb.id)
            seen_vnis.add(lb.vni)
            ports = tuple(sorted((p.protocol, p.port) for p in lb.ports))
            load_balancers.add((lid, lb.vni, _addr(lb.ip), ports, _text(lb.underlay_route)))
            listed_targets = self._ok(
                self.stub.ListLoadBalancerTargets(
                    pb.ListLoadBalancerTargetsRequest(loadbalancer_id=lid.encode()), timeout=t
                ),
                "ListLoadBalancerTargets",
            )
            targets |= {(lid, _addr(ip)) for ip in listed_targets.target_ips}
        routes = set()
        for vni in sorted(seen_vnis):
            listed_routes = self.stub.ListRoutes(pb.ListRoutesRequest(vni=vni), timeout=t)
            if listed_routes.status.code != 0:
                continue  # a VNI this agent has no table for
            routes |= {
                (vni, _prefix(r.prefix), r.nexthop_vni, _addr(r.nexthop_address))
                for r in listed_routes.routes
            }
        neighbors = self._ok(
            self.stub.ListNeighborNats(pb.ListNeighborNatsRequest(nat_ip=_ip_message("0.0.0.0")), timeout=t),
            "ListNeighborNats",
        )
        neighbor_nats = {
            (_addr(n.actual_nat_ip), n.vni, n.min_port, n.max_port, _text(n.underlay_route))
            for n in neighbors.nat_entries
        }
        return Dataplane.of(
            interfaces,
            vips,
            nats,
            prefixes,
            lb_prefixes,
            rules,
            load_balancers,
            targets,
            routes,
            neighbor_nats,
        )


# --- what the agents should hold, from the objects -----------------------------------------------


@dataclass(frozen=True)
class Objects:
    """The kubevpc objects of one namespace, as the API server returns them."""

    vpcs: list[dict[str, Any]]
    nics: list[dict[str, Any]]
    lbs: list[dict[str, Any]]
    natgws: list[dict[str, Any]]

    def all(self) -> list[dict[str, Any]]:
        return self.vpcs + self.nics + self.lbs + self.natgws

    def nic(self, name: str) -> dict[str, Any]:
        return next(n for n in self.nics if n["metadata"]["name"] == name)

    def named(self, kind: str, name: str) -> dict[str, Any]:
        items = {"vpc": self.vpcs, "nic": self.nics, "vlb": self.lbs, "natgw": self.natgws}[kind]
        return next(i for i in items if i["metadata"]["name"] == name)


def read_objects(kube: KubeControlPlane, namespace: str) -> Objects:
    items = get_json(kube, ",".join(f"{p}.{GROUP}" for p in KINDS), "-n", namespace)["items"]
    by_kind: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("VPC", "NetworkInterface", "LoadBalancer", "NATGateway")
    }
    for item in items:
        by_kind[item["kind"]].append(item)
    return Objects(
        by_kind["VPC"], by_kind["NetworkInterface"], by_kind["LoadBalancer"], by_kind["NATGateway"]
    )


def _host_prefix(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return f"{address}/{32 if address.version == 4 else 128}"


@dataclass
class Expected:
    """One node's expected state; a route's next hop may be one of several (LB instance spread)."""

    dataplane: Dataplane
    routes: dict[tuple[int, str], tuple[int, frozenset[str]]]


def vpc_vni(vpc: Mapping[str, Any]) -> int | None:
    vni = vpc["spec"].get("vni") or (vpc.get("status") or {}).get("vni")
    return int(vni) if vni else None


def expected_dataplane(
    objects: Objects, nodes: Sequence[str] = NODES, router: str = ROUTER_ADDRESS, exclude: Iterable[str] = ()
) -> dict[str, Expected]:
    """What each agent holds when every object in ``objects`` (but ``exclude``) is programmed.

    Written from docs/resources.md and docs/operator.md, not from the operator's planning code:
    interfaces with VIP, NAT (the slice its status records), alias prefixes, LB prefixes and
    firewall rules on their node; LB instances where the LB's status places them, targets = the
    LB-prefix underlays; on every node, for each VNI it serves, routes to the VNI's interfaces on
    other nodes, to LB IPs, to what an active peering allows, and the default routes; neighbour NATs
    for the VNI's NAT slices on other nodes. Underlay addresses come from the objects' status.
    """
    skip = set(exclude)
    vnis = {v["metadata"]["name"]: vpc_vni(v) for v in objects.vpcs}
    peers: dict[str, list[tuple[str, list[str]]]] = {}
    for vpc in objects.vpcs:
        for peering in vpc["spec"].get("peerings") or []:
            peers.setdefault(vpc["metadata"]["name"], []).append(
                (peering["vpcRef"]["name"], list(peering.get("prefixes") or []))
            )

    def active(a: str) -> list[tuple[str, list[str]]]:
        return [(b, pfx) for b, pfx in peers.get(a, []) if any(c == a for c, _ in peers.get(b, []))]

    nics = [n for n in objects.nics if n["metadata"]["name"] not in skip]
    lbs = [lb for lb in objects.lbs if lb["metadata"]["name"] not in skip]

    def vni_of(obj: Mapping[str, Any]) -> int:
        vni = vnis[obj["spec"]["vpcRef"]["name"]]
        assert vni is not None, f"{obj['metadata']['name']}: its VPC has no VNI"
        return vni

    # Route sources per VPC: (prefix, node, underlay candidates)
    def nic_sources(nic: Mapping[str, Any]) -> list[tuple[str, str, frozenset[str]]]:
        status = nic.get("status") or {}
        result = [
            (_host_prefix(ip), nic["spec"]["nodeName"], frozenset({status.get("underlayRoute", "?")}))
            for ip in nic["spec"]["ips"]
        ]
        for entry in status.get("prefixes") or []:
            result.append(
                (entry["prefix"], nic["spec"]["nodeName"], frozenset({entry.get("underlayRoute", "?")}))
            )
        return result

    def lb_instances(lb: Mapping[str, Any]) -> dict[str, str]:
        return {n["name"]: n.get("underlayRoute", "?") for n in (lb.get("status") or {}).get("nodes") or []}

    result: dict[str, Expected] = {}
    for node in nodes:
        interfaces, vips, nats, prefixes, lb_prefixes, rules = set(), set(), set(), set(), set(), set()
        serving: set[int] = set()
        local_prefixes: dict[int, set[str]] = {}
        for nic in nics:
            if nic["spec"]["nodeName"] != node:
                continue
            uid, spec, status = nic["metadata"]["uid"], nic["spec"], nic.get("status") or {}
            vni = vni_of(nic)
            serving.add(vni)
            ipv4 = next((ip for ip in spec["ips"] if ":" not in ip), "")
            ipv6 = next((str(ipaddress.ip_address(ip)) for ip in spec["ips"] if ":" in ip), "")
            interfaces.add((uid, vni, ipv4, ipv6, status.get("underlayRoute", "?")))
            local_prefixes.setdefault(vni, set()).update(_host_prefix(ip) for ip in spec["ips"])
            local_prefixes[vni].update(spec.get("prefixes") or [])
            if spec.get("virtualIP"):
                vips.add((uid, spec["virtualIP"], (status.get("virtualIP") or {}).get("underlayRoute", "?")))
            nat = status.get("nat")
            if nat:
                nats.add((uid, nat["ip"], nat["minPort"], nat["maxPort"], nat.get("underlayRoute", "?")))
            for entry in status.get("prefixes") or []:
                prefixes.add((uid, entry["prefix"], entry.get("underlayRoute", "?")))
            for entry in status.get("loadBalancerTargets") or []:
                lb_prefixes.add((uid, entry["prefix"], entry.get("underlayRoute", "?")))
            rules |= {(uid, rule["name"]) for rule in spec.get("firewallRules") or []}
        load_balancers, targets = set(), set()
        for lb in lbs:
            instances = lb_instances(lb)
            if node not in instances:
                continue
            uid, spec = lb["metadata"]["uid"], lb["spec"]
            serving.add(vni_of(lb))
            ports = tuple(
                sorted((_protocol_number(p.get("protocol", "TCP")), p["port"]) for p in spec["ports"])
            )
            load_balancers.add((uid, vni_of(lb), spec["ip"], ports, instances[node]))
            targets |= {(uid, t["underlayRoute"]) for t in (lb.get("status") or {}).get("targets") or []}

        routes: dict[tuple[int, str], tuple[int, frozenset[str]]] = {}

        def sources(vpc: str, node: str, remote_only: bool) -> list[tuple[str, frozenset[str]]]:
            found = []
            for nic in nics:
                if nic["spec"]["vpcRef"]["name"] != vpc or (remote_only and nic["spec"]["nodeName"] == node):
                    continue
                found += [(prefix, underlays) for prefix, _, underlays in nic_sources(nic)]
            for lb in lbs:
                if lb["spec"]["vpcRef"]["name"] != vpc:
                    continue
                instances = lb_instances(lb)
                if not instances:
                    continue
                choice = {instances[node]} if node in instances else set(instances.values())
                found.append((_host_prefix(lb["spec"]["ip"]), frozenset(choice)))
            return found

        for vpc_name, vni in vnis.items():
            if vni is None or vni not in serving:
                continue
            local = local_prefixes.get(vni, set())
            candidates = [
                (vni, prefix, underlays) for prefix, underlays in sources(vpc_name, node, remote_only=True)
            ]
            for peer, allowed in active(vpc_name):
                peer_vni = vnis.get(peer)
                if peer_vni is None:
                    continue
                for prefix, underlays in sources(peer, node, remote_only=False):
                    if _allowed(prefix, allowed):
                        candidates.append((peer_vni, prefix, underlays))
            for nexthop_vni, prefix, underlays in candidates:
                if prefix not in local:
                    routes.setdefault((vni, prefix), (nexthop_vni, underlays))
            if router:
                for prefix in DEFAULT_ROUTES:
                    routes.setdefault((vni, prefix), (vni, frozenset({router})))

        neighbor_nats = set()
        for nic in nics:
            nat = (nic.get("status") or {}).get("nat")
            if not nat or nic["spec"]["nodeName"] == node or vni_of(nic) not in serving:
                continue
            neighbor_nats.add(
                (nat["ip"], vni_of(nic), nat["minPort"], nat["maxPort"], nat.get("underlayRoute", "?"))
            )

        result[node] = Expected(
            Dataplane.of(
                interfaces,
                vips,
                nats,
                prefixes,
                lb_prefixes,
                rules,
                load_balancers,
                targets,
                (),
                neighbor_nats,
            ),
            routes,
        )
    return result


def _allowed(prefix: str, allowed: Sequence[str]) -> bool:
    if not allowed:
        return True
    net = ipaddress.ip_network(prefix)
    return any(
        net.version == ipaddress.ip_network(a).version and net.subnet_of(ipaddress.ip_network(a))
        for a in allowed
    )  # type: ignore[arg-type]


def _protocol_number(name: str) -> int:
    return {"TCP": 6, "UDP": 17}[name]


def compare(expected: Mapping[str, Expected], observed: Mapping[str, Dataplane]) -> list[str]:
    """Readable differences (missing / unexpected entries per node and table); [] when equal."""
    problems = []
    for node, want in expected.items():
        have = observed[node]
        for name in want.dataplane.__dataclass_fields__:
            if name == "routes":
                continue
            wanted, got = getattr(want.dataplane, name), getattr(have, name)
            problems += [f"{node}: {name}: missing {entry}" for entry in sorted(wanted - got, key=str)]
            problems += [f"{node}: {name}: unexpected {entry}" for entry in sorted(got - wanted, key=str)]
        got_routes = {(vni, prefix): (nh_vni, nh) for vni, prefix, nh_vni, nh in have.routes}
        for key, (nh_vni, allowed) in sorted(want.routes.items()):
            if key not in got_routes:
                problems.append(
                    f"{node}: route {key} missing (expected via VNI {nh_vni} to {sorted(allowed)})"
                )
            elif got_routes[key][0] != nh_vni or got_routes[key][1] not in allowed:
                problems.append(
                    f"{node}: route {key} via {got_routes[key]}, expected VNI {nh_vni} to {sorted(allowed)}"
                )
        problems += [
            f"{node}: route {key} unexpected {got_routes[key]}"
            for key in sorted(set(got_routes) - set(want.routes))
        ]
    return problems


def status_problems(objects: Objects) -> list[str]:
    """Where two objects' status disagree (a NAT slice, an LB target): each side is written on its
    own timer, so right after a change one may lag; converged means they agree."""
    problems = []
    nats = {
        (
            n["metadata"]["name"],
            nat["natGateway"],
            nat["ip"],
            nat["minPort"],
            nat["maxPort"],
            nat.get("underlayRoute"),
        )
        for n in objects.nics
        if (nat := (n.get("status") or {}).get("nat"))
    }
    allocations = {
        (
            a["networkInterface"],
            g["metadata"]["name"],
            a["ip"],
            a["minPort"],
            a["maxPort"],
            a.get("underlayRoute"),
        )
        for g in objects.natgws
        for a in (g.get("status") or {}).get("allocations") or []
    }
    problems += [
        f"NAT slice in NetworkInterface status only: {entry}" for entry in sorted(nats - allocations)
    ]
    problems += [f"NAT slice in NATGateway status only: {entry}" for entry in sorted(allocations - nats)]
    targets = {
        (n["metadata"]["name"], t["loadBalancer"], t.get("underlayRoute"))
        for n in objects.nics
        for t in (n.get("status") or {}).get("loadBalancerTargets") or []
    }
    listed = set()
    for lb in objects.lbs:
        status = lb.get("status") or {}
        entries = status.get("targets") or []
        if status.get("targetCount", 0) != len(entries):
            problems.append(
                f"{lb['metadata']['name']}: targetCount {status.get('targetCount')} != {len(entries)}"
            )
        listed |= {(t["networkInterface"], lb["metadata"]["name"], t.get("underlayRoute")) for t in entries}
    problems += [f"LB target in NetworkInterface status only: {entry}" for entry in sorted(targets - listed)]
    problems += [f"LB target in LoadBalancer status only: {entry}" for entry in sorted(listed - targets)]
    return problems


def served_vnis(objects: Objects) -> set[int]:
    return {vni for vni in (vpc_vni(v) for v in objects.vpcs) if vni is not None}


# --- Kubernetes helpers ----------------------------------------------------------------------------


def get_json(kube: KubeControlPlane, *args: str) -> Any:
    return json.loads(kube.kubectl("get", *args, "-o", "json").stdout)


def apply(kube: KubeControlPlane, namespace: str, manifests: str | Path) -> subprocess.CompletedProcess[str]:
    if isinstance(manifests, Path):
        return kube.kubectl("apply", "-n", namespace, "-f", str(manifests))
    return kube.kubectl("apply", "-n", namespace, "-f", "-", input=manifests)


def condition(obj: Mapping[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry["type"] == kind:
            return dict(entry)
    return {}


def is_ready(obj: Mapping[str, Any]) -> bool:
    """Ready=True for the current generation, in the condition and in status.observedGeneration."""
    generation = obj["metadata"]["generation"]
    ready = condition(obj)
    return (
        ready.get("status") == "True"
        and ready.get("observedGeneration") == generation
        and (obj.get("status") or {}).get("observedGeneration") == generation
    )


def wait_ready(
    kube: KubeControlPlane, namespace: str, timeout: float = 60.0, exclude: Iterable[str] = ()
) -> Objects:
    """Poll until every object (but ``exclude``) is Ready for its generation; return them all."""
    skip = set(exclude)
    last: list[str] = []

    def ready() -> Objects | None:
        nonlocal last
        objects = read_objects(kube, namespace)
        last = [
            f"{o['kind']}/{o['metadata']['name']}: {condition(o) or 'no Ready condition'}"
            for o in objects.all()
            if o["metadata"]["name"] not in skip and not is_ready(o)
        ]
        return None if last else objects

    try:
        result: Objects = wait_for(ready, timeout=timeout, interval=0.3, what="objects to be Ready")
    except TimeoutError as error:
        raise AssertionError("not Ready:\n" + "\n".join(last)) from error
    return result


def wait_converged(
    kube: KubeControlPlane,
    namespace: str,
    lab: E2eLab,
    timeout: float = 60.0,
    exclude: Iterable[str] = (),
) -> tuple[Objects, dict[str, Dataplane]]:
    """Poll until objects are Ready, their status agrees, and every agent holds exactly the expected state."""
    problems: list[str] = []

    def converged() -> tuple[Objects, dict[str, Dataplane]] | None:
        nonlocal problems
        objects = wait_ready(kube, namespace, timeout=timeout, exclude=exclude)
        observed = lab.snapshot(served_vnis(objects))
        problems = compare(expected_dataplane(objects, exclude=exclude), observed) + status_problems(objects)
        return None if problems else (objects, observed)

    try:
        result: tuple[Objects, dict[str, Dataplane]] = wait_for(
            converged, timeout=timeout, interval=0.5, what="agents to hold the expected state"
        )
    except TimeoutError as error:
        raise AssertionError("agents differ from the objects:\n" + "\n".join(problems[:40])) from error
    return result


def purge_foreign_objects(kube: KubeControlPlane, keep: Iterable[str] = ()) -> None:
    """Delete kubevpc objects of other namespaces (earlier tests leave some on purpose).

    The operator runs cluster-wide, as the chart deploys it; objects that no operator handles (e.g.
    test_chart_install's samples, same node and device names) would clash with the e2e objects.
    """
    kept = set(keep)
    for plural in KINDS:
        items = get_json(kube, f"{plural}.{GROUP}", "--all-namespaces")["items"]
        for item in items:
            ns, name = item["metadata"]["namespace"], item["metadata"]["name"]
            if ns in kept:
                continue
            if item["metadata"].get("finalizers"):
                kube.kubectl(
                    "patch",
                    f"{plural}.{GROUP}",
                    name,
                    "-n",
                    ns,
                    "--type=merge",
                    "-p",
                    '{"metadata":{"finalizers":null}}',
                )
            kube.kubectl("delete", f"{plural}.{GROUP}", name, "-n", ns, "--wait=false", "--ignore-not-found")


def delete_all(kube: KubeControlPlane, namespace: str, timeout: float = 60.0) -> None:
    """Delete every kubevpc object of ``namespace`` and wait until the operator released them."""
    kube.kubectl("delete", ",".join(f"{p}.{GROUP}" for p in KINDS), "--all", "-n", namespace, "--wait=false")
    wait_for(
        lambda: not read_objects(kube, namespace).all(), timeout=timeout, interval=0.3, what="objects to go"
    )


def resource_versions(objects: Objects) -> dict[str, str]:
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in objects.all()}


# --- public addresses: the harness as the underlay's routing protocol -----------------------------


def announce_public(lab: E2eLab, objects: Objects) -> dict[str, str]:
    """Point the border router's public routes at the underlays the objects' status records.

    Virtual IPs go to their interface's VIP underlay; a NAT IP to the NAT underlay of its first
    allocation (the other slices are relayed from there by neighbour NAT); a load balancer IP to
    its first instance.
    """
    routes: dict[str, str] = {}
    for nic in objects.nics:
        vip = (nic.get("status") or {}).get("virtualIP") or {}
        if vip.get("underlayRoute"):
            routes[vip["ip"]] = vip["underlayRoute"]
    for gateway in objects.natgws:
        for allocation in sorted(
            (gateway.get("status") or {}).get("allocations") or [], key=lambda a: a["minPort"]
        ):
            if allocation.get("underlayRoute"):
                routes.setdefault(allocation["ip"], allocation["underlayRoute"])
    for lb in objects.lbs:
        instances = sorted((lb.get("status") or {}).get("nodes") or [], key=lambda n: n["name"])
        if instances and instances[0].get("underlayRoute"):
            routes[lb["spec"]["ip"]] = instances[0]["underlayRoute"]
    for public, underlay in routes.items():
        if lab.announced.get(public) != underlay:
            lab.border.announce(public, underlay)
            lab.announced[public] = underlay
    for public in set(lab.announced) - set(routes):
        lab.border.withdraw(public)
        del lab.announced[public]
    return routes


# --- traffic ----------------------------------------------------------------------------------------


def serve_http(ns: Netns, address: str, port: int, name: str) -> subprocess.Popen[str]:
    """An HTTP server in ``ns`` answering every GET with "<name> <client address> <client port>"."""
    return http_peers.start_whoami(ns, address, port, name)


def fetch(ns: Netns, url: str, timeout: float = 5.0) -> tuple[str, str, int]:
    """curl ``url`` from ``ns``: (server name, client address, client port) the server saw."""
    result = ns.try_run("curl", "-sf", "-g", "--max-time", str(timeout), url, timeout=timeout + 10)
    if result.returncode != 0:
        raise AssertionError(f"curl {url} failed ({result.returncode}): {result.stderr.strip()}")
    name, address, port = result.stdout.split()
    return name, address, int(port)


def ping(ns: Netns, target: str, count: int = 3, deadline: float = 6.0) -> bool:
    return ns.ping(target, count, deadline)


def poll(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """The first truthy value of ``predicate``, polled (an AssertionError names ``what`` on timeout)."""
    try:
        return wait_for(predicate, timeout=timeout, interval=0.3, what=what)
    except TimeoutError as error:
        raise AssertionError(str(error)) from error.__cause__


class ContinuousPing:
    """``ping -D`` running in the background (one echo every ``interval``); replies by time."""

    def __init__(self, ns: Netns, target: str, interval: float = 0.1) -> None:
        self.proc = ns.popen("ping", "-D", "-n", "-i", str(interval), "-W", "1", target)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def replies(self) -> list[float]:
        """The times (epoch seconds) of the replies received so far."""
        return [float(line[1 : line.index("]")]) for line in list(self.lines) if "bytes from" in line]

    def stop(self) -> list[float]:
        """SIGINT (ping prints its summary); the times of every reply received."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(10)
        self._reader.join(5)
        return self.replies()


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "traffic") -> None:
    """Poll a traffic check until it passes (right after programming, the first packets may race)."""
    wait_for(check, timeout=timeout, interval=0.2, what=what)


class TempDir:
    """A temp dir for logs that is removed unless KUBEVPC_E2E_KEEP=1."""

    def __init__(self, prefix: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))

    def cleanup(self) -> None:
        if os.environ.get("KUBEVPC_E2E_KEEP") != "1":
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)


def monotonic() -> float:
    return time.monotonic()


# --- one environment per test module ------------------------------------------------------------


@dataclass
class E2eEnv:
    """The chart release, the tenant namespace, the lab and the running operator."""

    kube: KubeControlPlane
    release: ChartRelease
    namespace: str
    lab: E2eLab
    logs: Path
    operator: OperatorProcess
    operators: list[OperatorProcess] = field(default_factory=list)  # every one started, for logs

    def start_operator(self, priority: int) -> OperatorProcess:
        """A new operator process (the old one must be gone); higher priority wins kopf peering."""
        operator = OperatorProcess(self.release, self.lab.agents_file, self.logs, priority=priority)
        self.operators.append(operator)
        self.operator = operator
        return operator.start()

    def objects(self) -> Objects:
        return read_objects(self.kube, self.namespace)

    def apply(self, manifests: str | Path) -> subprocess.CompletedProcess[str]:
        return apply(self.kube, self.namespace, manifests)

    def converged(
        self, timeout: float = 60.0, exclude: Iterable[str] = ()
    ) -> tuple[Objects, dict[str, Dataplane]]:
        return wait_converged(self.kube, self.namespace, self.lab, timeout=timeout, exclude=exclude)

    def snapshot(self) -> dict[str, Dataplane]:
        return self.lab.snapshot(served_vnis(self.objects()))


@contextlib.contextmanager
def e2e_environment(
    kube: KubeControlPlane,
    vms: Sequence[VmSpec],
    *,
    operator_env: Mapping[str, str] = FAST_OPERATOR_ENV,
    node_labels: Mapping[str, Mapping[str, str]] | None = None,
    spare_taps: Mapping[str, Sequence[str]] | None = None,
    operator_values: Mapping[str, Any] | None = None,
) -> Iterator[E2eEnv]:
    """Install the chart, build the lab, start the operator; tear all of it down afterwards.

    On the way out the tenant's objects are deleted while the operator still runs (so finalizers
    are released), then the operator stops, the lab goes and the release is uninstalled. Set
    KUBEVPC_E2E_KEEP=1 to keep the operator logs.
    """
    extra_env = [{"name": k, "value": v} for k, v in operator_env.items()]
    values = {"operator": {"routerAddress": ROUTER_ADDRESS, "extraEnv": extra_env, **(operator_values or {})}}
    logs = TempDir("kvpc-e2e-")
    release = ChartRelease.install(kube, values)
    namespace = kube.create_namespace("tenant")
    purge_foreign_objects(kube, keep=[namespace])
    env: E2eEnv | None = None
    try:
        with e2e_lab(vms, node_labels, spare_taps) as lab:
            operator = OperatorProcess(release, lab.agents_file, logs.path, priority=100)
            env = E2eEnv(kube, release, namespace, lab, logs.path, operator, [operator])
            try:
                operator.start()
                yield env
            finally:
                if env.operator.running():
                    with contextlib.suppress(Exception):
                        delete_all(kube, namespace, timeout=30)
                for started in env.operators:
                    started.stop()
                if env.operator.log() and os.environ.get("KUBEVPC_E2E_KEEP") == "1":
                    print(f"operator logs kept in {logs.path}")
    finally:
        purge_foreign_objects(kube)  # whatever the operator could not release
        release.uninstall()
        logs.cleanup()
