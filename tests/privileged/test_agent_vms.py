"""The real agent process with "VMs" in namespaces: what real clients see (issue 3, DPSERVICE §4).

One node, started with dpservice-bin's command line: two VMs in VPC 100 (one on a TAP the agent
created, one on a veth "VF"), and a VM in VPC 200 that reuses VPC 100's addresses. Every VM gets
its addresses from real clients (busybox udhcpc, dhclient -6) in the module fixture; the tests
then look at what those clients were told and what traffic gets through.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kubevpc_agent.lab.netns import NetnsPool, leftover_namespaces, wait_for
from kubevpc_agent.lab.topology import Lab, Node, Vm

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VNI_A, VNI_B = 100, 200


@dataclass
class OneNode:
    lab: Lab
    node: Node
    tap: Vm  # VPC 100, 10.0.0.1 / 2001:db8::1, on a TAP
    veth: Vm  # VPC 100, 10.0.0.2 / 2001:db8::2, on a veth "VF"
    other: Vm  # VPC 200, 10.0.0.1 / 2001:db8::1 again, on a TAP
    xdp: Vm  # VPC 100, 10.0.0.4 / 2001:db8::4, on a veth "VF" opened with AF_XDP


@pytest.fixture(scope="module")
def one_node() -> Iterator[OneNode]:
    pool = NetnsPool()
    lab = Lab(pool)
    try:
        node = lab.add_node("node1")
        tap, veth, other = node.add_tap_vm("vm-tap"), node.add_veth_vm("vm-veth"), node.add_tap_vm("vm-other")
        xdp = node.add_veth_vm("vm-xdp", io="af_xdp")
        node.start(metrics_port=9064)
        node.create_interface(tap, VNI_A, "10.0.0.1", "2001:db8::1")
        node.create_interface(veth, VNI_A, "10.0.0.2", "2001:db8::2")
        node.create_interface(other, VNI_B, "10.0.0.1", "2001:db8::1")
        node.create_interface(xdp, VNI_A, "10.0.0.4", "2001:db8::4")
        for vm in (tap, veth, other, xdp):
            vm.dhcp4()
            vm.dhcp6()
        yield OneNode(lab, node, tap, veth, other, xdp)
    finally:
        names = [ns.name for ns in pool.namespaces]
        lab.close()
        pool.close()
        assert leftover_namespaces(names) == []


def traffic(vm: Vm, *args: str, timeout: float = 60) -> dict[str, object]:
    result = vm.ns.try_run(sys.executable, "-m", "kubevpc_agent.lab.traffic", *args, timeout=timeout)
    assert result.returncode == 0, (
        f"{vm.name}: {' '.join(args)} failed:\n{result.stdout}{result.stderr[-2000:]}"
    )
    return dict(json.loads(result.stdout.splitlines()[-1]))


def echo_server(vm: Vm, proto: str, addr: str, port: int) -> None:
    proc = vm.ns.popen(sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", proto, addr, str(port))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"


@pytest.mark.parametrize("which", ["tap", "veth", "xdp"])
def test_dhcpv4_gives_the_interface_address_as_a_slash_32_with_option_121_routes(
    one_node: OneNode, which: str
) -> None:
    vm: Vm = getattr(one_node, which)
    lease = vm.leases["dhcp4"]
    assert lease["ip"] == vm.ipv4
    assert lease["mask"] == "32"
    assert lease["serverid"] == "169.254.0.1"
    assert lease["staticroutes"].split() == ["169.254.0.0/16", "0.0.0.0", "0.0.0.0/0", "169.254.0.1"]
    assert lease["mtu"] == "1500"
    assert lease["hostname"] == vm.name
    assert vm.addresses(4) == [vm.ipv4]
    routes = vm.run("ip", "-4", "route", "show")
    assert "default via 169.254.0.1" in routes and "169.254.0.0/16 dev" in routes


@pytest.mark.parametrize("which", ["tap", "veth", "xdp"])
def test_dhcpv6_leases_the_interface_ipv6_address(one_node: OneNode, which: str) -> None:
    vm: Vm = getattr(one_node, which)
    lease = vm.leases["dhcp6"]
    assert lease["new_ip6_address"] == vm.ipv6
    assert vm.ipv6 in vm.addresses(6)


def test_the_gateway_answers_arp_with_the_port_mac(one_node: OneNode) -> None:
    vm = one_node.veth
    out = vm.run("busybox", "arping", "-f", "-c", "3", "-w", "3", "-I", vm.nic, "169.254.0.1")
    assert "Received 1 response" in out
    port_mac = one_node.node.link_mac("vethvf_2")
    assert f"reply from 169.254.0.1 [{port_mac}]" in out.lower()


def test_vms_in_one_vpc_ping_each_other_over_ipv4_and_ipv6(one_node: OneNode) -> None:
    tap, veth = one_node.tap, one_node.veth
    assert tap.ping("10.0.0.2")
    assert veth.ping("10.0.0.1")
    assert tap.ping("2001:db8::2")
    assert veth.ping("2001:db8::1")


def test_a_vm_on_an_af_xdp_port_talks_to_the_others(one_node: OneNode) -> None:
    xdp, tap = one_node.xdp, one_node.tap
    assert xdp.ping("10.0.0.1")
    assert xdp.ping("2001:db8::2")
    echo_server(xdp, "tcp", "0.0.0.0", 5020)
    assert traffic(tap, "send", "tcp", "10.0.0.4", "5020", str(2 << 20))["ok"]


def test_vms_in_one_vpc_exchange_tcp_and_udp(one_node: OneNode) -> None:
    tap, veth = one_node.tap, one_node.veth
    echo_server(veth, "tcp", "0.0.0.0", 5001)
    assert traffic(tap, "send", "tcp", "10.0.0.2", "5001", str(4 << 20))["ok"]
    echo_server(tap, "udp", "0.0.0.0", 5002)
    assert traffic(veth, "send", "udp", "10.0.0.1", "5002", "60000")["ok"]
    echo_server(tap, "tcp", "::", 5003)
    assert traffic(veth, "send", "tcp", "2001:db8::1", "5003", str(1 << 20))["ok"]


def test_a_vpc_reusing_the_same_addresses_stays_isolated(one_node: OneNode) -> None:
    other, tap, veth = one_node.other, one_node.tap, one_node.veth
    # VPC 200's VM has its own 10.0.0.1 and no 10.0.0.2: nothing of VPC 100 is reachable
    assert not other.ping("10.0.0.2", count=2, timeout=3)
    assert not other.ping("2001:db8::2", count=2, timeout=3)
    # VPC 100's 10.0.0.2 reaching 10.0.0.1 gets VPC 100's VM: a server only in VPC 200 stays silent
    echo_server(other, "udp", "0.0.0.0", 5010)
    result = veth.ns.try_run(
        sys.executable,
        "-m",
        "kubevpc_agent.lab.traffic",
        "send",
        "udp",
        "10.0.0.1",
        "5010",
        "100",
        timeout=30,
    )
    assert result.returncode != 0
    echo_server(tap, "udp", "0.0.0.0", 5011)
    assert traffic(veth, "send", "udp", "10.0.0.1", "5011", "100")["ok"]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_what_the_ports_and_nodes_did(one_node: OneNode) -> None:
    node, tap = one_node.node, one_node.tap
    before = node.metrics()
    assert tap.ping("10.0.0.2", count=4)
    after = node.metrics()
    assert metric(after, "kubevpc_dataplane_up") == 1.0
    port = {"port": tap.device, "ifname": tap.nic}
    assert (
        metric(after, "kubevpc_port_rx_packets_total", **port)
        >= metric(before, "kubevpc_port_rx_packets_total", **port) + 4
    )
    assert (
        metric(after, "kubevpc_port_tx_packets_total", **port)
        >= metric(before, "kubevpc_port_tx_packets_total", **port) + 4
    )
    assert metric(after, "kubevpc_graph_packets_total", node="cls") > metric(
        before, "kubevpc_graph_packets_total", node="cls"
    )
    assert "kubevpc_node_packets_total{" in after


def test_stopping_the_agent_removes_its_tap_devices(netns: NetnsPool) -> None:
    lab = Lab(netns)
    try:
        node = lab.add_node("node")
        vm = node.add_tap_vm("vm")
        node.start()
        assert vm.nic in vm.ns.ip("-o", "link", "show")
        assert node.agent is not None
        assert node.agent.stop() == 0
        wait_for(lambda: vm.nic not in vm.ns.ip("-o", "link", "show"), timeout=10, what="the TAP to vanish")
    finally:
        lab.close()
