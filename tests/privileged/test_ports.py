"""TAP and TPACKET ring ports on real devices: frames in, frames out, lifetime, counters."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.batch import PacketPool
from kubevpc_agent.graph.port import Port, PortKind, PortSpec
from kubevpc_agent.ports.factory import PortConfigError, open_ports
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.ports.ring import RingPort
from kubevpc_agent.ports.tap import TapPort
from kubevpc_agent.ports.xdp import XdpPort
from testkit.netns import NetnsPool, inside, wait_for

pytestmark = pytest.mark.privileged

ETH_P_ALL = 0x0003
RawSocket = Callable[[str], socket.socket]
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
MAC = "02:00:00:00:0a:01"


def link(ifname: str) -> dict[str, Any] | None:
    """``ip -j link show`` of a device in the calling thread's namespace (None if absent)."""
    proc = subprocess.run(["ip", "-j", "link", "show", ifname], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return cast(dict[str, Any], json.loads(proc.stdout)[0])


def frames(count: int, size: int = 60) -> list[bytes]:
    """Distinct IPv4-ethertype frames addressed to broadcast (the kernel ignores their payload)."""
    return [
        bytes.fromhex("ffffffffffff02000000beef0800") + i.to_bytes(2, "big") * ((size - 14) // 2)
        for i in range(count)
    ]


@pytest.fixture
def raw_socket() -> Iterator[Callable[[str], socket.socket]]:
    """Opens packet sockets that see only what arrives on a device; closes them after the test."""
    opened: list[socket.socket] = []

    def open_on(ifname: str) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        opened.append(sock)
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((ifname, 0))
        sock.settimeout(2)
        return sock

    yield open_on
    for sock in opened:
        sock.close()


def receive_all(port: Port, pool: PacketPool, want: int) -> list[bytes]:
    got: list[bytes] = []

    def more() -> bool:
        batch = port.receive(pool, 1024)
        got.extend(f for f in batch.frames() if f[12:14] == b"\x08\x00")
        pool.free(batch.slot)
        return len(got) >= want

    wait_for(more, timeout=5, what=f"{want} frames")
    return got


def read_ipv4_frames(sock: socket.socket, want: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < want:
        frame = sock.recv(4096)
        if frame[12:14] == b"\x08\x00":
            got.append(frame)
    return got


def send_batch(port: Port, pool: PacketPool, payloads: list[bytes]) -> int:
    source = MemoryPort(PortSpec(9, "mem", "mem", MAC, PortKind.VF, "memory"))
    source.inject(payloads)
    batch = source.receive(pool, 1024)
    try:
        return port.send(batch)
    finally:
        pool.free(batch.slot)


def test_tap_port_exchanges_frames_with_its_kernel_side(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    pool = PacketPool(256)
    with inside(node):
        port = TapPort(PortSpec(0, "net_tap0", "dtap0", MAC, PortKind.VF, "tap"))
        try:
            info = link("dtap0")
            assert info is not None and info["address"] == MAC and "UP" in info["flags"]
            kernel_side = raw_socket("dtap0")
            sent = frames(50)
            for f in sent:
                kernel_side.send(f)
            assert receive_all(port, pool, 50) == sent
            assert port.stats.rx_packets >= 50

            out = frames(20, size=1400)
            assert send_batch(port, pool, out) == 20
            assert read_ipv4_frames(kernel_side, 20) == out
            assert port.stats.tx_packets == 20 and port.stats.tx_bytes == 20 * 1400
            assert pool.available == 256
        finally:
            port.close()
        assert link("dtap0") is None, "the TAP must vanish with its fd"


def test_tap_keeps_working_after_its_kernel_side_moves_into_a_vm_namespace(
    netns: NetnsPool, raw_socket: RawSocket
) -> None:
    node, vm = netns.netns("node"), netns.netns("vm")
    pool = PacketPool(64)
    with inside(node):
        port = TapPort(PortSpec(0, "net_tap0", "dtapvm", MAC, PortKind.VF, "tap"))
    try:
        node.ip("link", "set", "dtapvm", "netns", vm.name)
        vm.ip("link", "set", "dtapvm", "up")
        with inside(vm):
            kernel_side = raw_socket("dtapvm")
            kernel_side.send(frames(1)[0])
        assert receive_all(port, pool, 1) == frames(1)
        assert send_batch(port, pool, frames(3)) == 3
        assert read_ipv4_frames(kernel_side, 3) == frames(3)
    finally:
        port.close()
    assert "dtapvm" not in vm.ip("-o", "link", "show")


def test_ring_port_moves_batches_both_ways_on_a_veth(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    netns.veth("vf0", node, "vm0", node)
    pool = PacketPool(4096)
    with inside(node):
        port = RingPort(PortSpec(0, "net_af_packet0", "vf0", "", PortKind.VF, "netdev"), rx_frames=1024)
        try:
            peer = raw_socket("vm0")
            sent = frames(600, size=64) + frames(100, size=1514)
            for f in sent:
                peer.send(f)
            assert receive_all(port, pool, len(sent)) == sent

            # longer than the ring: the ring wraps, order is kept
            for f in sent:
                peer.send(f)
            assert receive_all(port, pool, len(sent)) == sent

            out = frames(700, size=128)
            assert send_batch(port, pool, out) == 700
            assert read_ipv4_frames(peer, 700) == out
            assert port.stats.tx_packets == 700
            assert pool.available == 4096
        finally:
            port.close()


def test_ring_port_sends_frames_at_mixed_offsets(netns: NetnsPool, raw_socket: RawSocket) -> None:
    """Encapsulated frames start earlier in their slot than received ones; both go out intact."""
    node = netns.netns("node")
    netns.veth("pf0", node, "rt0", node)
    pool = PacketPool(64)
    with inside(node):
        port = RingPort(PortSpec(0, "net_af_packet0", "pf0", "", PortKind.PF, "netdev"))
        try:
            peer = raw_socket("rt0")
            source = MemoryPort(PortSpec(9, "mem", "mem", MAC, PortKind.VF, "memory"))
            source.inject(frames(4, size=100))
            batch = source.receive(pool, 16)
            batch.off[1::2] -= 54  # as if 54 bytes of outer header had been prepended
            batch.length[1::2] += 54
            expected = batch.frames()
            assert port.send(batch) == 4
            assert read_ipv4_frames(peer, 2) == [expected[0], expected[2]]
            pool.free(batch.slot)
        finally:
            port.close()


def test_ring_port_ignores_what_the_kernel_itself_transmits(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    netns.veth("vf0", node, "vm0", node)
    pool = PacketPool(64)
    with inside(node):
        port = RingPort(PortSpec(0, "net_af_packet0", "vf0", "", PortKind.VF, "netdev"))
        try:
            own = raw_socket("vf0")
            own.send(frames(1)[0])  # leaves through vf0: outgoing, not for us
            peer = raw_socket("vm0")
            marker = frames(2)[1]
            peer.send(marker)
            assert receive_all(port, pool, 1) == [marker]
        finally:
            port.close()


def test_ring_port_drops_frames_longer_than_a_slot(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    netns.veth("vf0", node, "vm0", node)
    node.ip("link", "set", "vf0", "mtu", "4000")
    node.ip("link", "set", "vm0", "mtu", "4000")
    pool = PacketPool(64)
    with inside(node):
        port = RingPort(PortSpec(0, "net_af_packet0", "vf0", "", PortKind.VF, "netdev"))
        try:
            peer = raw_socket("vm0")
            peer.send(frames(1, size=3000)[0])
            peer.send(frames(1)[0])
            assert receive_all(port, pool, 1) == frames(1)
            assert port.stats.rx_dropped == 1
            assert pool.available == 64
        finally:
            port.close()


def test_open_ports_opens_each_driver_in_port_order_and_fills_missing_macs(
    netns: NetnsPool, raw_socket: RawSocket
) -> None:
    node = netns.netns("node")
    netns.veth("pf0", node, "rt0", node)
    config = AgentConfig(
        ports=(
            PortSpec(1, "net_tap1", "dtapvf_0", "", PortKind.VF, "tap"),
            PortSpec(0, "net_af_packet0", "pf0", "", PortKind.PF, "netdev"),
            PortSpec(2, "mem0", "mem0", MAC, PortKind.VF, "memory"),
        )
    )
    with inside(node):
        ports = open_ports(config)
        try:
            assert [type(p) for p in ports] == [RingPort, TapPort, MemoryPort]
            assert ports[0].spec.mac == cast(dict[str, Any], link("pf0"))["address"]
            tap_mac = ports[1].spec.mac
            assert cast(dict[str, Any], link("dtapvf_0"))["address"] == tap_mac
            assert int(tap_mac[:2], 16) & 0x03 == 0x02  # locally administered unicast
        finally:
            for p in ports:
                p.close()
        missing = AgentConfig(ports=(PortSpec(0, "net_af_packet0", "nope0", "", PortKind.VF, "netdev"),))
        with pytest.raises(PortConfigError, match="nope0"):
            open_ports(missing)
        bad = AgentConfig(ports=(PortSpec(0, "x", "x", MAC, PortKind.VF, "warp"),))
        with pytest.raises(PortConfigError, match="unknown driver"):
            open_ports(bad)


def test_tap_open_failure_closes_already_opened_ports(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    config = AgentConfig(
        ports=(
            PortSpec(0, "net_tap0", "dtapok", MAC, PortKind.VF, "tap"),
            PortSpec(1, "net_tap1", "x" * 20, MAC, PortKind.VF, "tap"),
        )
    )
    with inside(node):
        with pytest.raises(OSError):
            open_ports(config)
        assert link("dtapok") is None


def ipip_frame(i: int) -> bytes:
    ipv6 = bytes([0x60, 0, 0, 0, 0, 20, 4, 64]) + bytes(32)
    return bytes.fromhex("02000000002002000000beef86dd") + ipv6 + i.to_bytes(2, "big") * 10


def test_xdp_port_moves_batches_both_ways_and_detaches_on_close(
    netns: NetnsPool, raw_socket: RawSocket
) -> None:
    node = netns.netns("node")
    netns.veth("vf0", node, "vm0", node)
    pool = PacketPool(4096)
    with inside(node):
        port = XdpPort(PortSpec(0, "net_af_xdp0", "vf0", "", PortKind.VF, "netdev"))
        try:
            assert "xdp" in node.ip("-d", "link", "show", "vf0")
            peer = raw_socket("vm0")
            sent = frames(500, size=64) + frames(100, size=1514)
            for f in sent:
                peer.send(f)
            assert receive_all(port, pool, len(sent)) == sent
            for f in sent:  # again: the chunks went back to the kernel and are reused
                peer.send(f)
            assert receive_all(port, pool, len(sent)) == sent
            out = frames(3000, size=128)
            for chunk in range(0, 3000, 1000):
                assert send_batch(port, pool, out[chunk : chunk + 1000]) == 1000
            assert read_ipv4_frames(peer, 3000) == out
            assert port.stats.tx_packets == 3000 and pool.available == 4096
        finally:
            port.close()
    assert "xdp" not in node.ip("-d", "link", "show", "vf0"), "the XDP program must go with the port"


def test_xdp_uplink_takes_only_the_ip_in_ipv6_underlay(netns: NetnsPool, raw_socket: RawSocket) -> None:
    node = netns.netns("node")
    netns.veth("pf0", node, "rt0", node)
    pool = PacketPool(64)
    with inside(node):
        port = XdpPort(PortSpec(0, "net_af_xdp0", "pf0", "", PortKind.PF, "netdev"))
        try:
            kernel_view = raw_socket("pf0")  # sees what XDP passed on to the kernel
            peer = raw_socket("rt0")
            peer.send(frames(1)[0])
            peer.send(ipip_frame(1))
            got: list[bytes] = []

            def underlay_arrived() -> bool:
                batch = port.receive(pool, 16)
                got.extend(batch.frames())
                pool.free(batch.slot)
                return bool(got)

            wait_for(underlay_arrived, timeout=5, what="the IP-in-IPv6 frame")
            assert got == [ipip_frame(1)]
            assert read_ipv4_frames(kernel_view, 1) == frames(1)  # the kernel still gets the rest
        finally:
            port.close()


def test_factory_picks_af_xdp_by_device_name(netns: NetnsPool) -> None:
    node = netns.netns("node")
    netns.veth("vf0", node, "vm0", node)
    netns.veth("vf1", node, "vm1", node)
    config = AgentConfig(
        ports=(
            PortSpec(0, "net_af_xdp0", "vf0", "", PortKind.VF, "netdev"),
            PortSpec(1, "net_af_packet1", "vf1", "", PortKind.VF, "netdev"),
        )
    )
    with inside(node):
        ports = open_ports(config)
        try:
            assert [type(p) for p in ports] == [XdpPort, RingPort]
        finally:
            for p in ports:
                p.close()
