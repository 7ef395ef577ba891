"""Open every port the configuration declares, in port-id order.

``driver`` selects the I/O: ``tap`` creates a TAP device now (its kernel side is the VM's NIC),
``netdev`` opens an existing netdev (veth "VF", SR-IOV representor, uplink PF), ``memory`` gives an
in-memory port for tests. For netdevs the device name picks the method as DPDK's PMD names do:
``net_af_xdpN`` an AF_XDP socket (``xdp.py``), ``net_af_packetN`` (and anything else) TPACKET_V2
rings (``ring.py``); docs/dataplane.md says which to use where. A port spec without a
MAC gets one: a TAP a random one (as DPDK's net_tap does), a netdev the kernel's.
"""

from __future__ import annotations

import dataclasses
import fcntl
import socket
import struct

from kubevpc_agent.config import AgentConfig
from kubevpc_agent.graph.port import Port, PortSpec
from kubevpc_agent.ports.memory import MemoryPort


class PortConfigError(ValueError):
    """A port spec names an unknown driver or a device that is not there."""


SIOCGIFHWADDR = 0x8927


def netdev_mac(ifname: str) -> str:
    """The kernel's MAC address of ``ifname`` (asked via ioctl: right in any network namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            ifr = fcntl.ioctl(sock, SIOCGIFHWADDR, struct.pack("16s16x", ifname.encode()[:15]))
        except OSError as exc:
            raise PortConfigError(f"netdev {ifname!r} not found") from exc
    return ":".join(f"{b:02x}" for b in ifr[18:24])


def open_port(spec: PortSpec) -> Port:
    """Open one port (see the module docstring)."""
    if spec.driver == "tap":
        from kubevpc_agent.ports.tap import TapPort, random_mac

        if not spec.mac:
            spec = dataclasses.replace(spec, mac=random_mac())
        return TapPort(spec)
    if spec.driver == "netdev":
        if not spec.mac:
            spec = dataclasses.replace(spec, mac=netdev_mac(spec.ifname))
        if spec.device.startswith("net_af_xdp"):  # DPDK's AF_XDP PMD name: AF_XDP socket
            from kubevpc_agent.ports.xdp import XdpPort

            return XdpPort(spec)
        from kubevpc_agent.ports.ring import RingPort

        return RingPort(spec)
    if spec.driver == "memory":
        return MemoryPort(spec)
    raise PortConfigError(f"port {spec.device}: unknown driver {spec.driver!r}")


def open_ports(config: AgentConfig) -> list[Port]:
    """Every configured port, opened; on failure the ones already opened are closed again."""
    ports: list[Port] = []
    try:
        for spec in sorted(config.ports, key=lambda p: p.port_id):
            ports.append(open_port(spec))
    except BaseException:
        for port in ports:
            port.close()
        raise
    return ports
