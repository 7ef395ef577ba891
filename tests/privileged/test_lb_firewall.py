"""Load balancer and firewall with real clients: two agent nodes, an underlay router, the internet.

Topology (``kubevpc_agent.lab``): node1 and node2 joined by the router namespace, which also runs
the border router (``testkit.border_router``: IP-in-IPv6 termination for ``fc00::ffff`` in user
space) and reaches the "internet" namespace (45.86.6.6). VPC 100 has four HTTP backends, two per
node (a TAP and a veth "VF" each); each owns the LB IP, holds it as an LB prefix and is a target
of the load balancer on node1. The border router sends internet traffic for the LB IP to the LB's
underlay; node1 balances it (its own backends by recirculation, node2's through the underlay) and
the backends answer the client directly (DSR) through their default route to the border.

Two more VMs, fw-a (node1) and fw-b (node2), have firewall rules between them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest

import testkit
from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.lab.agent import LabClient
from kubevpc_agent.lab.netns import Netns, NetnsPool, leftover_namespaces
from kubevpc_agent.lab.topology import Lab, Node, Vm
from testkit.border_router import INTERNET_V4, BorderRouter, attach_internet, lab_with_border

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VNI = 100
BORDER = "fc00::ffff"
LB_IP = "45.86.7.80"
PEERS = str(Path(testkit.__file__).parent / "http_peers.py")
BACKEND_IPS = {"be1": "10.2.0.1", "be2": "10.2.0.2", "be3": "10.2.0.3", "be4": "10.2.0.4"}
FW_A, FW_B = "10.2.0.11", "10.2.0.12"


# --- gRPC helpers (the lab client covers interfaces and routes only) ------------------------------


def _ip(text: str) -> pb.IpAddress:
    addr = ip_address(text)
    return pb.IpAddress(ipver=pb.IPV4 if addr.version == 4 else pb.IPV6, address=str(addr).encode())


def _ok(status: pb.Status, what: str) -> None:
    assert status.code == 0, f"{what}: [{status.code}] {status.message}"


def create_lb(client: LabClient, lb_id: str, ip: str, port: int) -> IPv6Address:
    reply = client.stub.CreateLoadBalancer(
        pb.CreateLoadBalancerRequest(
            loadbalancer_id=lb_id.encode(),
            loadbalanced_ip=_ip(ip),
            vni=VNI,
            loadbalanced_ports=[pb.LbPort(port=port, protocol=pb.TCP)],
        ),
        timeout=10,
    )
    _ok(reply.status, "CreateLoadBalancer")
    return IPv6Address(reply.underlay_route.decode())


def create_lb_prefix(client: LabClient, vm: Vm, ip: str) -> IPv6Address:
    reply = client.stub.CreateLoadBalancerPrefix(
        pb.CreateLoadBalancerPrefixRequest(
            interface_id=vm.interface_id.encode(), prefix=pb.Prefix(ip=_ip(ip), length=32)
        ),
        timeout=10,
    )
    _ok(reply.status, "CreateLoadBalancerPrefix")
    return IPv6Address(reply.underlay_route.decode())


def lb_target(client: LabClient, lb_id: str, target: IPv6Address, *, delete: bool = False) -> None:
    if delete:
        request = pb.DeleteLoadBalancerTargetRequest(
            loadbalancer_id=lb_id.encode(), target_ip=_ip(str(target))
        )
        _ok(client.stub.DeleteLoadBalancerTarget(request, timeout=10).status, "DeleteLoadBalancerTarget")
    else:
        request = pb.CreateLoadBalancerTargetRequest(
            loadbalancer_id=lb_id.encode(), target_ip=_ip(str(target))
        )
        _ok(client.stub.CreateLoadBalancerTarget(request, timeout=10).status, "CreateLoadBalancerTarget")


def firewall_rule(
    client: LabClient,
    vm: Vm,
    rule_id: str,
    *,
    direction: int = pb.INGRESS,
    action: int = pb.ACCEPT,
    priority: int = 1000,
    src: str = "0.0.0.0/0",
    proto: str = "any",
    dport: int = -1,
) -> pb.Status:
    address, length = src.split("/")
    if proto == "tcp":
        flt = pb.ProtocolFilter(
            tcp=pb.TcpFilter(src_port_lower=-1, src_port_upper=-1, dst_port_lower=dport, dst_port_upper=dport)
        )
    elif proto == "icmp":
        flt = pb.ProtocolFilter(icmp=pb.IcmpFilter(icmp_type=-1, icmp_code=-1))
    else:
        flt = pb.ProtocolFilter()
    rule = pb.FirewallRule(
        id=rule_id.encode(),
        direction=direction,
        action=action,
        priority=priority,
        source_prefix=pb.Prefix(ip=_ip(address), length=int(length)),
        destination_prefix=pb.Prefix(ip=_ip("0.0.0.0"), length=0),
        protocol_filter=flt,
    )
    request = pb.CreateFirewallRuleRequest(interface_id=vm.interface_id.encode(), rule=rule)
    status: pb.Status = client.stub.CreateFirewallRule(request, timeout=10).status
    return status


def delete_firewall_rule(client: LabClient, vm: Vm, rule_id: str) -> None:
    request = pb.DeleteFirewallRuleRequest(interface_id=vm.interface_id.encode(), rule_id=rule_id.encode())
    _ok(client.stub.DeleteFirewallRule(request, timeout=10).status, "DeleteFirewallRule")


# --- the lab ---------------------------------------------------------------------------------------


@dataclass
class LbLab:
    lab: Lab
    n1: Node
    n2: Node
    inet: Netns
    border: BorderRouter
    backends: dict[str, Vm]
    targets: dict[str, IPv6Address]  # backend name -> its LB prefix underlay (the LB target)
    fw_a: Vm
    fw_b: Vm
    first_port: dict[str, int] = field(default_factory=lambda: {"next": 20000})

    def client_ports(self, count: int) -> int:
        """A fresh range of client source ports (no TIME_WAIT reuse between tests)."""
        first = self.first_port["next"]
        self.first_port["next"] += count + 100
        return first

    def stats(self) -> dict[str, dict[str, int]]:
        """Per backend: client port -> requests it served (counted at the backend)."""
        out = {}
        for name, vm in self.backends.items():
            body = vm.ns.run("curl", "-sf", "--max-time", "5", "http://127.0.0.1/stats")
            out[name] = json.loads(body)["peers"]
        return out

    def spread(self, count: int, requests: int = 1) -> dict[str, list[str]]:
        first = self.client_ports(count)
        args = (LB_IP, "80", str(INTERNET_V4), str(first), str(count), str(requests), "16")
        out = self.inet.run(sys.executable, PEERS, "spread", *args, timeout=300)
        answers: dict[str, list[str]] = json.loads(out.splitlines()[-1])
        return answers


@pytest.fixture(scope="module")
def lb_lab() -> Iterator[LbLab]:
    with lab_with_border(BORDER) as (pool, lab, border):
        n1, n2 = lab.add_node("node1"), lab.add_node("node2")
        be1, be2 = n1.add_tap_vm("be1"), n1.add_veth_vm("be2")
        be3, be4 = n2.add_tap_vm("be3"), n2.add_veth_vm("be4")
        fw_a, fw_b = n1.add_tap_vm("fw-a"), n2.add_tap_vm("fw-b")
        n1.start()
        n2.start()
        inet = attach_internet(pool, lab.router)
        border.start()
        backends = {"be1": be1, "be2": be2, "be3": be3, "be4": be4}
        underlays = {}
        for name, vm in backends.items():
            underlays[name] = vm.node.create_interface(vm, VNI, BACKEND_IPS[name], None)
        ua, ub = n1.create_interface(fw_a, VNI, FW_A, None), n2.create_interface(fw_b, VNI, FW_B, None)
        for node in (n1, n2):
            assert node.client is not None
            node.client.create_route(VNI, "0.0.0.0/0", VNI, BORDER)
        assert n1.client is not None and n2.client is not None
        n1.client.create_route(VNI, f"{FW_B}/32", VNI, ub)
        n2.client.create_route(VNI, f"{FW_A}/32", VNI, ua)
        for name in ("be3", "be4"):  # node1 reaches node2's backends directly too (not needed by the LB)
            n1.client.create_route(VNI, f"{BACKEND_IPS[name]}/32", VNI, underlays[name])
        lb_ul = create_lb(n1.client, "web", LB_IP, 80)
        border.announce(LB_IP, lb_ul)
        targets = {}
        for name, vm in backends.items():
            assert vm.node.client is not None
            targets[name] = create_lb_prefix(vm.node.client, vm, LB_IP)
            lb_target(n1.client, "web", targets[name])
        for name, vm in backends.items():
            vm.dhcp4()
            vm.ns.ip("addr", "add", f"{LB_IP}/32", "dev", vm.nic)  # the backend owns the LB IP (DSR)
            server = vm.ns.popen(sys.executable, PEERS, "serve", name, "80")
            assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        for vm in (fw_a, fw_b):
            vm.dhcp4()
        yield LbLab(lab, n1, n2, inet, border, backends, targets, fw_a, fw_b)


# --- load balancer -----------------------------------------------------------------------------------


def test_curl_through_the_lb_ip_lands_on_the_backends(lb_lab: LbLab) -> None:
    seen = set()
    for _ in range(12):
        body = lb_lab.inet.run("curl", "-sf", "--max-time", "5", f"http://{LB_IP}/")
        assert body in lb_lab.backends, body
        seen.add(body)
    assert len(seen) >= 2  # twelve fresh connections do not all hash to one of four backends
    lb_lab.border.check()


def test_thousand_connections_spread_evenly_and_each_sticks_to_one_backend(lb_lab: LbLab) -> None:
    before = lb_lab.stats()
    answers = lb_lab.spread(1000, requests=3)
    failed = {p: a for p, a in answers.items() if any(x.startswith("error") for x in a)}
    assert not failed, f"{len(failed)} connections failed, e.g. {list(failed.items())[:3]}"
    assert all(len(set(a)) == 1 for a in answers.values())  # every request of a connection: one backend
    # counted at the backends: each client port served by exactly one backend, 3 requests there
    after = lb_lab.stats()
    served: dict[str, list[str]] = {}
    for name in lb_lab.backends:
        for port, n in after[name].items():
            if int(port) in range(min(map(int, answers)), max(map(int, answers)) + 1):
                assert n - before[name].get(port, 0) == 3
                served.setdefault(port, []).append(name)
    assert sorted(served) == sorted(answers)
    assert all(len(names) == 1 and names == [answers[p][0]] for p, names in served.items())
    counts = Counter(names[0] for names in served.values())
    assert set(counts) == set(lb_lab.backends)
    # within a quarter of even; be1/be2 (node1) were reached by recirculation, be3/be4 via node2
    assert all(750 / 4 <= n <= 1250 / 4 for n in counts.values()), counts


def test_removing_a_backend_moves_only_its_connections(lb_lab: LbLab) -> None:
    count = 200
    first = lb_lab.client_ports(count)
    args = (LB_IP, "80", str(INTERNET_V4), str(first), str(count))
    holder = lb_lab.inet.popen(
        sys.executable, PEERS, "hold", *args, stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        before: dict[str, str] = json.loads(holder.stdout.readline())
        assert set(before.values()) == set(lb_lab.backends), before
        gone = "be3"  # a backend on node2
        assert lb_lab.n1.client is not None
        lb_target(lb_lab.n1.client, "web", lb_lab.targets[gone], delete=True)
        holder.stdin.write("again\n")
        holder.stdin.flush()
        after: dict[str, str] = json.loads(holder.stdout.readline())
    finally:
        lb_lab.lab.pool.stop(holder)
        assert lb_lab.n1.client is not None
        lb_target(lb_lab.n1.client, "web", lb_lab.targets["be3"])
    kept = {p for p, name in before.items() if name != gone}
    moved = set(before) - kept
    assert moved and kept
    assert all(after[p] == before[p] for p in kept)  # every other connection: same backend
    # the removed backend's connections went to another backend, which has no such connection
    assert all(after[p] != gone for p in moved)
    assert all(after[p].startswith("error") for p in moved)
    # new connections never reach the removed backend while it is out ... (re-added in finally)


def test_echo_to_the_lb_ip_is_answered(lb_lab: LbLab) -> None:
    out = lb_lab.inet.run("ping", "-c", "2", "-i", "0.2", "-W", "2", LB_IP)
    assert " 0% packet loss" in out


# --- firewall -------------------------------------------------------------------------------------


def can_connect(vm: Vm, addr: str, port: int, timeout: float = 2.0) -> bool:
    code = f"import socket; socket.create_connection(({addr!r}, {port}), timeout={timeout}).close()"
    return vm.ns.try_run(sys.executable, "-c", code, timeout=timeout + 10).returncode == 0


@pytest.fixture(scope="module")
def listeners(lb_lab: LbLab) -> LbLab:
    for vm in (lb_lab.fw_a, lb_lab.fw_b):
        for port in (7001, 7002):
            proc = vm.ns.popen(
                sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", "tcp", "0.0.0.0", str(port)
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    return lb_lab


def test_firewall_blocks_and_allows_as_configured(listeners: LbLab) -> None:
    lab, a, b = listeners, listeners.fw_a, listeners.fw_b
    n2 = lab.n2.client
    assert n2 is not None
    assert can_connect(a, FW_B, 7001) and can_connect(a, FW_B, 7002)  # no rules: open
    assert a.ping(FW_B, count=1)
    created: list[str] = []
    try:
        # b accepts TCP 7001 only
        _ok(firewall_rule(n2, b, "in-7001", proto="tcp", dport=7001), "CreateFirewallRule")
        created.append("in-7001")
        assert can_connect(a, FW_B, 7001)
        assert not can_connect(a, FW_B, 7002)
        assert not a.ping(FW_B, count=1, timeout=2)
        _ok(firewall_rule(n2, b, "in-icmp", proto="icmp"), "CreateFirewallRule")
        created.append("in-icmp")
        assert a.ping(FW_B, count=1)
        # an explicit DROP with a better priority wins over the accept rule: DROP is enforced
        deny = firewall_rule(
            n2, b, "deny-a", action=pb.DROP, priority=10, src=f"{FW_A}/32", proto="tcp", dport=7001
        )
        _ok(deny, "CreateFirewallRule DROP")
        created.append("deny-a")
        assert not can_connect(a, FW_B, 7001)
        assert can_connect(lab.backends["be3"], FW_B, 7001)  # another source still may
    finally:
        for rule_id in created:
            delete_firewall_rule(n2, b, rule_id)
    assert can_connect(a, FW_B, 7002)  # rules gone: open again


def test_replies_to_allowed_egress_pass(listeners: LbLab) -> None:
    """a may open TCP 7001 only and accepts only TCP to port 1; its connections to b work both ways."""
    lab, a, b = listeners, listeners.fw_a, listeners.fw_b
    n1 = lab.n1.client
    assert n1 is not None
    created: list[str] = []
    try:
        _ok(firewall_rule(n1, a, "out-7001", direction=pb.EGRESS, proto="tcp", dport=7001), "egress rule")
        created.append("out-7001")
        _ok(firewall_rule(n1, a, "in-1", proto="tcp", dport=1), "ingress rule")
        created.append("in-1")
        args = ("send", "tcp", FW_B, "7001", "100000")
        result = a.ns.try_run(sys.executable, "-m", "kubevpc_agent.lab.traffic", *args, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr[-1000:]  # 100 kB there and echoed back
        assert not can_connect(a, FW_B, 7002)  # egress: no rule for 7002
        assert not can_connect(b, FW_A, 7001)  # ingress: b may not open connections to a
    finally:
        for rule_id in created:
            delete_firewall_rule(n1, a, rule_id)


def test_fw_drop_compat_agent_refuses_drop_rules_and_forwards_everything() -> None:
    """An agent started with --fw-drop-compat behaves as dpservice: 441 for DROP, no enforcement."""
    pool = NetnsPool()
    lab = Lab(pool)
    try:
        node = lab.add_node("node1")
        a, b = node.add_tap_vm("fw-a"), node.add_tap_vm("fw-b")
        client = node.start(extra=("--fw-drop-compat",))
        node.create_interface(a, VNI, FW_A, None)
        node.create_interface(b, VNI, FW_B, None)
        for vm in (a, b):
            vm.dhcp4()
        for port in (7001, 7002):
            proc = b.ns.popen(
                sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", "tcp", "0.0.0.0", str(port)
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        refused = firewall_rule(client, b, "deny", action=pb.DROP, proto="tcp", dport=7001)
        assert (refused.code, refused.message) == (441, "NO_DROP_SUPPORT")
        _ok(firewall_rule(client, b, "in-7001", proto="tcp", dport=7001), "CreateFirewallRule")
        assert can_connect(a, FW_B, 7001)
        assert can_connect(a, FW_B, 7002)  # computed DROP, not enforced
    finally:
        names = [ns.name for ns in pool.namespaces]
        lab.close()
        pool.close()
        assert leftover_namespaces(names) == []
