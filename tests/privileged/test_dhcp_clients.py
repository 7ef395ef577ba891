"""Real DHCP clients against the slow-path nodes: busybox udhcpc, ISC dhclient -6, the kernel's ARP.

A TAP device whose kernel side sits in a fresh namespace plays the VM's NIC; a thread in the test
process reads its frames, hands ARP/DHCP/DHCPv6/ND frames to the nodes (a tiny stand-in for
``cls``/``conntrack``) and writes the replies back. The clients' scripts record what they were told
and configure the namespace the way a VM's network stack would, so the test sees the /32 address,
the option 121 routes, the DNS servers, the IPv6 address and the gateway's neighbour entries.
"""

from __future__ import annotations

import select
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import numpy as np
import pytest

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import PacketPool
from kubevpc_agent.graph.node import Node
from kubevpc_agent.graph.port import PortKind, PortSpec
from kubevpc_agent.nodes.arp import Arp
from kubevpc_agent.nodes.dhcp import Dhcp
from kubevpc_agent.nodes.dhcpv6 import Dhcpv6
from kubevpc_agent.nodes.ipv6_nd import Ipv6Nd
from kubevpc_agent.ports.tap import TapPort
from kubevpc_agent.tables.model import Interface
from kubevpc_agent.tables.state import AgentState
from kubevpc_agent.tables.vm_mac import PortMacs, mac_bytes
from testkit.netns import Netns, NetnsPool, sh, unique_name, wait_for

pytestmark = pytest.mark.privileged

PORT_MAC = "02:00:00:00:0d:01"  # the port's own MAC (the representor's)
VM_MAC = "02:00:00:00:0d:99"  # the VM NIC's, set on the TAP's kernel side: learned, never configured
VM_IP = "10.100.1.1"
VM_IPV6 = "2000:100:1::1"
TX = 1  # every slow-path node's edge to ``tx``


class Responder:
    """Reads the TAP, runs the matching node per frame, writes what the nodes send to ``tx``."""

    def __init__(self, port: TapPort, state: AgentState, macs: PortMacs, config: AgentConfig) -> None:
        self.port = port
        self.macs = macs
        self.arp = Arp(state, macs, config)
        self.dhcp = Dhcp(state, macs, config)
        self.dhcpv6 = Dhcpv6(state, macs, config)
        self.nd = Ipv6Nd(state, macs, config)
        self.pool = PacketPool(256)
        self.answered: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="slowpath-responder", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Responder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive(), "responder thread did not stop"

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.port.fileno()], [], [], 0.05)
                if ready:
                    self._turn()
        except BaseException as exc:  # surfaced by the test via check()
            self.error = exc

    def _node_for(self, frame: bytes) -> Node | None:
        """The node ``cls``/``conntrack`` would pick for a frame from a VF."""
        ethertype = frame[12:14]
        if ethertype == b"\x08\x06":
            return self.arp
        if ethertype == b"\x08\x00" and len(frame) >= 38 and frame[23] == 17 and frame[36:38] == b"\x00\x43":
            return self.dhcp
        if ethertype == b"\x86\xdd" and len(frame) >= 58:
            if frame[20] == 17 and frame[56:58] == b"\x02\x23":
                return self.dhcpv6
            if frame[20] == 58 and frame[54] in (133, 135):
                return self.nd
        return None

    def _turn(self) -> None:
        batch = self.port.receive(self.pool, 64)
        try:
            frames = batch.frames()
            for node in (self.arp, self.dhcp, self.dhcpv6, self.nd):
                rows = np.flatnonzero([self._node_for(f) is node for f in frames])
                if len(rows) == 0:
                    continue
                sub = batch.select(rows)
                edges = np.asarray(node.process(sub))
                self.port.send(sub.select(np.flatnonzero(edges == TX)))
                self.answered[node.name] = self.answered.get(node.name, 0) + int((edges == TX).sum())
        finally:
            self.pool.free(batch.slot)

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"responder failed: {self.error!r}") from self.error


@dataclass
class Vm:
    ns: Netns
    tap: str
    responder: Responder
    macs: PortMacs


@pytest.fixture
def vm(netns: NetnsPool) -> Iterator[Vm]:
    """A namespace whose NIC is an agent TAP, with VM1's interface (v4 + v6, hostname) bound to it."""
    tap = unique_name("dhcp")
    spec = PortSpec(0, "net_tap0", tap, PORT_MAC, PortKind.VF)
    config = AgentConfig(
        ports=(spec,),
        enable_ipv6_overlay=True,
        dhcp_mtu=1337,
        dhcp_dns=(IPv4Address("8.8.4.4"), IPv4Address("8.8.8.8")),
        dhcpv6_dns=(IPv6Address("2001:4860:4860::6464"), IPv6Address("2002:4861:4861::6464")),
    )
    state = AgentState(config)
    iface = Interface(
        "vm1",
        "net_tap0",
        0,
        100,
        IPv4Address(VM_IP),
        IPv6Address(VM_IPV6),
        IPv6Address("fc00:1::1"),
        "vm1-host",
    )
    state.interfaces["vm1"] = iface
    state.port_interface[0] = "vm1"
    macs = PortMacs([spec])
    ns = netns.netns("dhcp")
    port = TapPort(spec)
    try:
        sh("ip", "link", "set", tap, "netns", ns.name)
        ns.sysctl(f"net.ipv6.conf.{tap}.accept_dad", 0)  # dhclient -6 needs a usable link-local now
        ns.ip("link", "set", tap, "address", VM_MAC, "up")
        with Responder(port, state, macs, config) as responder:
            yield Vm(ns, tap, responder, macs)
            responder.check()
    finally:
        port.close()


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def env_of(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_udhcpc_configures_a_32_with_option_121_routes(vm: Vm, tmp_path: Path) -> None:
    record = tmp_path / "udhcpc.env"
    hook = script(
        tmp_path / "udhcpc.sh",
        f"""
[ "$1" = bound ] || exit 0
env > {record}
ip addr add "$ip/32" dev "$interface"
set -- $staticroutes
while [ $# -ge 2 ]; do
    if [ "$2" = 0.0.0.0 ]; then via=""; else via="via $2"; fi
    ip route add "$1" $via dev "$interface"
    shift 2
done
""",
    )
    out = vm.ns.run(
        "busybox", "udhcpc", "-i", vm.tap, "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", str(hook),
        "-O", "staticroutes", "-O", "mtu",
        timeout=30,
    )  # fmt: skip
    vm.responder.check()
    env = env_of(record)
    assert env["ip"] == VM_IP, out
    assert env["subnet"] == "255.255.255.255"
    assert env["staticroutes"] == "169.254.0.0/16 0.0.0.0 0.0.0.0/0 169.254.0.1"
    assert env["serverid"] == "169.254.0.1"
    assert env["dns"].split() == ["8.8.4.4", "8.8.8.8"]
    assert env["mtu"] == "1337"
    assert env["hostname"] == "vm1-host"
    assert env["lease"] == str(0xFFFFFFFF)
    assert "router" not in env  # option 3 only in PXE mode
    assert vm.responder.answered["dhcp"] == 2  # OFFER and ACK
    assert vm.macs.peer_mac(0) == mac_bytes(VM_MAC)  # learned from the REQUEST

    assert f"{VM_IP}/32" in vm.ns.ip("-4", "addr", "show", "dev", vm.tap)
    routes = vm.ns.ip("-4", "route", "show")
    assert "default via 169.254.0.1" in routes
    assert "169.254.0.0/16" in routes

    # the kernel resolves the gateway through the arp node: the neighbour entry gets the port's MAC
    vm.ns.run("ping", "-c", "1", "-W", "1", "169.254.0.1", check=False)  # nothing answers the echo itself
    neigh = wait_for(
        lambda: (n := vm.ns.ip("neigh", "show", "169.254.0.1")) and PORT_MAC in n and n,
        timeout=5,
        what="ARP entry for the gateway",
    )
    assert "lladdr " + PORT_MAC in neigh
    vm.responder.check()


def test_dhclient6_gets_address_and_dns(vm: Vm, tmp_path: Path) -> None:
    record = tmp_path / "dhclient6.env"
    hook = script(
        tmp_path / "dhclient6.sh",
        f"""
case "$reason" in
BOUND6|RENEW6|REBIND6)
    env > {record}.tmp && mv {record}.tmp {record}
    ip -6 addr add "$new_ip6_address/128" dev "$interface" ;;
esac
exit 0
""",
    )
    proc = vm.ns.popen(
        "dhclient", "-6", "-1", "-d", "-v",
        "-cf", str(script(tmp_path / "dhclient.conf", "")),
        "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid"),
        "-sf", str(hook), vm.tap,
    )  # fmt: skip
    try:
        wait_for(record.exists, timeout=20, what="dhclient -6 to bind")
    finally:
        vm.ns.run("kill", str(proc.pid), check=False)
        log = proc.communicate(timeout=10)[0]
    vm.responder.check()
    env = env_of(record)
    assert env["reason"] == "BOUND6", log
    assert env["new_ip6_address"] == VM_IPV6
    assert env["new_dhcp6_name_servers"].split() == ["2001:4860:4860::6464", "2002:4861:4861::6464"]
    server_id = bytes(int(b, 16) for b in env["new_dhcp6_server_id"].split(":"))
    assert server_id == bytes.fromhex("0003abcd") + mac_bytes(PORT_MAC)
    assert vm.responder.answered["dhcpv6"] >= 2  # ADVERTISE and REPLY
    assert f"{VM_IPV6}/128" in vm.ns.ip("-6", "addr", "show", "dev", vm.tap)


def test_kernel_resolves_fe80_1(vm: Vm) -> None:
    """The VM kernel's NS for fe80::1 gets an NA: a router neighbour entry with the port's MAC."""
    vm.ns.ip("-6", "neigh", "flush", "dev", vm.tap)  # forget what an RA at link-up may have taught
    answered = vm.responder.answered.get("ipv6_nd", 0)
    vm.ns.run(
        "ping", "-6", "-c", "1", "-W", "1", f"fe80::1%{vm.tap}", check=False
    )  # the echo is not answered
    neigh = wait_for(
        lambda: (n := vm.ns.ip("-6", "neigh", "show", "fe80::1", "dev", vm.tap)) and PORT_MAC in n and n,
        timeout=5,
        what="neighbour entry for fe80::1",
    )
    assert "router" in neigh
    assert vm.responder.answered["ipv6_nd"] > answered
    assert vm.macs.peer_mac(0) == mac_bytes(VM_MAC)  # learned from the NS
    vm.responder.check()


def test_kernel_takes_the_ra(vm: Vm) -> None:
    """The VM kernel's RS gets an RA: a default route via fe80::1 (addresses come from DHCPv6)."""
    vm.ns.sysctl(f"net.ipv6.conf.{vm.tap}.accept_ra", 2)
    vm.ns.ip("link", "set", vm.tap, "down")
    vm.ns.ip("link", "set", vm.tap, "up")  # solicits routers again
    routes = wait_for(
        lambda: (r := vm.ns.ip("-6", "route", "show", "default")) and "fe80::1" in r and r,
        timeout=10,
        what="default route from the RA",
    )
    assert f"dev {vm.tap}" in routes
    assert VM_IPV6 not in vm.ns.ip("-6", "addr", "show", "dev", vm.tap)  # no prefix information
    vm.responder.check()
