"""Two agent nodes joined by an IPv6 underlay router: VM-to-VM traffic across nodes, encapsulated.

Each node's routes point at the other node's interface underlay addresses (returned by
CreateInterface there), as metalnet programs them. The router namespace only knows the two
nodes' /64s, so every packet that arrives crossed the underlay as IP-in-IPv6.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kubevpc_agent.lab.netns import NetnsPool, leftover_namespaces
from kubevpc_agent.lab.topology import Lab, Node, Vm

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VNI = 100


@dataclass
class TwoNodes:
    lab: Lab
    n1: Node
    n2: Node
    a: Vm  # node1, TAP, 10.1.0.1
    b: Vm  # node2, TAP, 10.1.0.2
    c: Vm  # node2, veth "VF" over AF_XDP, 10.1.0.3


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodes]:
    pool = NetnsPool()
    lab = Lab(pool)
    try:
        # node2 uses AF_XDP on its uplink (underlay-only XDP program) and on vm-c's veth "VF"
        n1, n2 = lab.add_node("node1"), lab.add_node("node2", uplink_io="af_xdp")
        a, b, c = n1.add_tap_vm("vm-a"), n2.add_tap_vm("vm-b"), n2.add_veth_vm("vm-c", io="af_xdp")
        n1.start()
        n2.start()
        ua = n1.create_interface(a, VNI, "10.1.0.1", "2001:db8:1::1")
        ub = n2.create_interface(b, VNI, "10.1.0.2", "2001:db8:1::2")
        uc = n2.create_interface(c, VNI, "10.1.0.3", "2001:db8:1::3")
        assert n1.client is not None and n2.client is not None
        for prefix, underlay in (("10.1.0.2/32", ub), ("10.1.0.3/32", uc), ("2001:db8:1::2/128", ub)):
            n1.client.create_route(VNI, prefix, VNI, underlay)
        for prefix, underlay in (("10.1.0.1/32", ua), ("2001:db8:1::1/128", ua)):
            n2.client.create_route(VNI, prefix, VNI, underlay)
        for vm in (a, b, c):
            vm.dhcp4()
            vm.dhcp6()
        yield TwoNodes(lab, n1, n2, a, b, c)
    finally:
        names = [ns.name for ns in pool.namespaces]
        lab.close()
        pool.close()
        assert leftover_namespaces(names) == []


def router_counters(lab: Lab, dev: str) -> dict[str, int]:
    info = json.loads(lab.router.run("ip", "-j", "-s", "link", "show", "dev", dev))[0]["stats64"]
    return {"rx": info["rx"]["packets"], "tx": info["tx"]["packets"]}


def test_interfaces_get_underlay_addresses_from_their_node_prefix(two_nodes: TwoNodes) -> None:
    assert str(two_nodes.a.underlay).startswith("fc00:1::")
    assert str(two_nodes.b.underlay).startswith("fc00:2::")


def test_vms_on_different_nodes_ping_across_the_underlay(two_nodes: TwoNodes) -> None:
    lab, a = two_nodes.lab, two_nodes.a
    before = router_counters(lab, "n1"), router_counters(lab, "n2")
    assert a.ping("10.1.0.2", count=5)
    assert a.ping("10.1.0.3")
    assert a.ping("2001:db8:1::2")
    after = router_counters(lab, "n1"), router_counters(lab, "n2")
    assert after[0]["rx"] - before[0]["rx"] >= 5  # node1 -> router
    assert after[1]["tx"] - before[1]["tx"] >= 5  # router -> node2


def test_underlay_frames_are_ip_in_ipv6_between_the_interface_underlays(two_nodes: TwoNodes) -> None:
    lab, a, b = two_nodes.lab, two_nodes.a, two_nodes.b
    # Only a -> b frames, and ping only once tcpdump is listening: otherwise the first frame
    # captured can be b's echo reply.
    capture = lab.router.popen(
        "tcpdump", "-ni", "n1", "-c", "1", "-l", f"ip6 src {a.underlay} and ip6[6] == 4"
    )
    try:
        assert capture.stdout is not None
        line = capture.stdout.readline()
        while "listening on" not in line:
            assert line, "tcpdump exited before listening"
            line = capture.stdout.readline()
        assert a.ping("10.1.0.2", count=3)
        out, _ = capture.communicate(timeout=10)
    finally:
        lab.pool.stop(capture)
    assert f"{a.underlay} > {b.underlay}" in out
    assert "10.1.0.1 > 10.1.0.2" in out


def test_tcp_stream_between_vms_on_two_nodes(two_nodes: TwoNodes) -> None:
    a, b, c = two_nodes.a, two_nodes.b, two_nodes.c
    for server, addr, port in ((b, "10.1.0.2", 6001), (c, "10.1.0.3", 6002)):
        proc = server.ns.popen(
            sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", "tcp", "0.0.0.0", str(port)
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        result = a.ns.try_run(
            sys.executable,
            "-m",
            "kubevpc_agent.lab.traffic",
            "send",
            "tcp",
            addr,
            str(port),
            str(8 << 20),
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr[-2000:]
        assert json.loads(result.stdout.splitlines()[-1])["ok"]
    # a full-size iperf3 stream too (1500-byte packets fit the 1600-byte underlay after encapsulation)
    iperf = b.ns.popen("iperf3", "-s", "-1", "-p", "6003")
    try:
        result = a.ns.try_run("iperf3", "-c", "10.1.0.2", "-p", "6003", "-t", "2", "-J", timeout=60)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        sent = json.loads(result.stdout)["end"]["sum_received"]["bytes"]
        assert sent > 1 << 20
    finally:
        two_nodes.lab.pool.stop(iperf)


def test_udp_between_vms_on_two_nodes(two_nodes: TwoNodes) -> None:
    a, c = two_nodes.a, two_nodes.c
    proc = a.ns.popen(sys.executable, "-m", "kubevpc_agent.lab.traffic", "serve", "udp", "0.0.0.0", "6010")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
    result = c.ns.try_run(
        sys.executable,
        "-m",
        "kubevpc_agent.lab.traffic",
        "send",
        "udp",
        "10.1.0.1",
        "6010",
        "50000",
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
