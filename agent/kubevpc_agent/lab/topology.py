"""Nodes, VMs and an IPv6 underlay router, as network namespaces around real agent processes.

::

    vm namespaces            node namespaces (one agent each)         router namespace
    [vm-a: dtapvf_0] ─TAP─── [node1: kubevpc-agent  pf0] ──veth── [n1          ]
    [vm-b: eth0] ────veth─── [       vethvf_1          ]          [  IPv6 fwd   ]
    [vm-c: dtapvf_0] ─TAP─── [node2: kubevpc-agent  pf0] ──veth── [n2          ]

* Node ``i`` has the host underlay address ``fc00:i::1`` (``--ipv6``); the agent derives its
  interfaces' underlay addresses from that /64. The router forwards ``fc00:i::/64`` to node
  ``i``'s uplink (a static route via ``fe80::2`` with a permanent neighbour entry for the uplink's
  MAC), and each node has a permanent *router* neighbour (``NTF_ROUTER``) for the router's MAC on
  its uplink, which is where the agent takes the encapsulation's destination MAC from.
* A TAP "VM" is the kernel side of a TAP the agent created, moved into the VM's namespace; a veth
  "VM" is one end of a veth pair whose other end (a stand-in for an SR-IOV VF representor) the
  agent opens. Transmit checksum offload is switched off on veth VM ends: a real VF computes
  checksums in hardware, a veth leaves them to the receiver, which our raw socket is not.
* The underlay links have an MTU of 1600 so that a VM's full 1500-byte packet still fits after
  encapsulation (a real underlay runs jumbo frames for the same reason).
* VMs get their addresses with real clients: busybox ``udhcpc`` (DHCPv4, option 121 routes) and
  ``dhclient -6`` (DHCPv6, address as /128, default route via fe80::1).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path

from kubevpc_agent.lab.agent import AgentProcess, LabClient, LabError, PortDecl, agent_argv
from kubevpc_agent.lab.netns import Netns, NetnsPool, wait_for

UNDERLAY_MTU = 1600

UDHCPC_SCRIPT = r"""#!/bin/sh
# udhcpc hook: address as given (/32), option 121 routes (0.0.0.0 gateway = on-link), MTU
env | grep -E '^(ip|mask|subnet|router|staticroutes|mtu|hostname|dns|serverid|lease)=' > "$KVPC_ENV.tmp"
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = "0.0.0.0" ]; then
          ip route replace "$1" dev "$interface"
        else
          ip route replace "$1" via "$2" dev "$interface" onlink
        fi
        shift 2
      done
    elif [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface" onlink
    fi
    mv "$KVPC_ENV.tmp" "$KVPC_ENV"
    ;;
esac
exit 0
"""

DHCLIENT6_SCRIPT = r"""#!/bin/sh
# dhclient -6 hook: the leased address as /128; traffic leaves via the gateway fe80::1
case "$reason" in
  BOUND6|REBIND6|RENEW6|REBOOT6)
    ip -6 addr replace "$new_ip6_address/128" dev "$interface" nodad
    ip -6 route replace default via fe80::1 dev "$interface"
    env | grep -E '^(new_|reason=|interface=)' > "$KVPC_ENV.tmp"
    mv "$KVPC_ENV.tmp" "$KVPC_ENV"
    ;;
esac
exit 0
"""


def _write_script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass
class Vm:
    """A "VM": a namespace with one NIC attached to an agent port."""

    name: str
    node: Node
    ns: Netns
    device: str  # API device name of its port (net_tapN / net_af_packetN)
    nic: str  # its NIC's name inside the VM namespace
    kind: str  # "tap" or "veth"
    vni: int = 0
    ipv4: str | None = None
    ipv6: str | None = None
    underlay: IPv6Address | None = None  # set once the interface exists
    leases: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def interface_id(self) -> str:
        return f"{self.node.name}-{self.name}"

    def mac(self) -> str:
        return str(json.loads(self.ns.run("ip", "-j", "link", "show", "dev", self.nic))[0]["address"])

    def dhcp4(self, timeout: float = 20) -> dict[str, str]:
        """Run busybox udhcpc once; returns what the server sent (the hook's environment)."""
        env_file = self.node.lab.workdir / f"{self.interface_id}.dhcp4"
        env_file.unlink(missing_ok=True)
        script = self.node.lab.udhcpc_script
        cmd = ["env", f"KVPC_ENV={env_file}", "busybox", "udhcpc", "-i", self.nic, "-s", str(script)]
        cmd += ["-n", "-q", "-f", "-t", "8", "-T", "1", "-O", "staticroutes", "-O", "mtu", "-O", "hostname"]
        result = self.ns.try_run(*cmd, timeout=timeout)
        if result.returncode != 0 or not env_file.exists():
            raise LabError(
                f"{self.name}: udhcpc failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        lease = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        self.leases["dhcp4"] = lease
        return lease

    def dhcp6(self, timeout: float = 20) -> dict[str, str]:
        """Run ``dhclient -6`` once; returns the hook's environment (``new_ip6_address`` ...)."""
        base = self.node.lab.workdir / f"{self.interface_id}"
        env_file = base.with_suffix(".dhcp6")
        env_file.unlink(missing_ok=True)
        cmd = ["env", f"KVPC_ENV={env_file}", "dhclient", "-6", "-1", "-v"]
        cmd += ["-lf", f"{base}.lease6", "-pf", f"{base}.pid6", "-sf", str(self.node.lab.dhclient_script)]
        cmd += ["-e", f"KVPC_ENV={env_file}", self.nic]
        result = self.ns.try_run(*cmd, timeout=timeout)
        try:
            wait_for(env_file.exists, timeout=timeout, what=f"{self.name}'s DHCPv6 lease")
        except TimeoutError as exc:
            raise LabError(f"{self.name}: dhclient -6 failed:\n{result.stdout}{result.stderr}") from exc
        lease = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        self.leases["dhcp6"] = lease
        return lease

    def addresses(self, family: int = 4) -> list[str]:
        out = json.loads(self.ns.run("ip", "-j", f"-{family}", "addr", "show", "dev", self.nic))
        return [a["local"] for entry in out for a in entry.get("addr_info", []) if a.get("scope") == "global"]

    def ping(self, target: str, count: int = 3, timeout: float = 10) -> bool:
        return self.ns.ping(target, count, timeout)

    def run(self, *cmd: str, timeout: float = 30) -> str:
        return self.ns.run(*cmd, timeout=timeout)


class Node:
    """One agent "node": a namespace with an uplink to the router, its VM ports and the agent."""

    def __init__(self, lab: Lab, name: str, index: int, uplink_io: str = "af_packet") -> None:
        self.lab = lab
        self.name = name
        self.index = index
        self.ns = lab.pool.netns(name)
        self.underlay = IPv6Address(f"fc00:{index}::1")
        self.ports: list[PortDecl] = []
        self.vms: list[Vm] = []
        self.agent: AgentProcess | None = None
        self.client: LabClient | None = None
        self.socket_path = lab.workdir / f"{name}.sock"
        self.metrics_port = 0
        self.ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
        self.ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
        uplink = f"n{index}"
        lab.pool.veth("pf0", self.ns, uplink, lab.router)
        # the underlay carries 1500-byte VM packets plus 40 bytes of outer IPv6 (real fabrics: jumbo)
        self.ns.ip("link", "set", "pf0", "mtu", str(UNDERLAY_MTU))
        lab.router.ip("link", "set", uplink, "mtu", str(UNDERLAY_MTU))
        self.ports.append(PortDecl(f"net_{uplink_io}0", "pf0"))
        # the router reaches fc00:i::/64 through this node's uplink ...
        pf_mac = self.link_mac("pf0")
        lab.router.ip(
            "-6", "neigh", "replace", "fe80::2", "lladdr", pf_mac, "dev", uplink, "nud", "permanent"
        )
        lab.router.ip("-6", "route", "replace", f"fc00:{index}::/64", "via", "fe80::2", "dev", uplink)
        # ... and the node knows the router's MAC as an NTF_ROUTER neighbour (dpservice's source)
        router_mac = str(json.loads(lab.router.run("ip", "-j", "link", "show", "dev", uplink))[0]["address"])
        self.ns.ip(
            "-6",
            "neigh",
            "replace",
            "fe80::1",
            "lladdr",
            router_mac,
            "dev",
            "pf0",
            "router",
            "nud",
            "permanent",
        )

    def link_mac(self, dev: str) -> str:
        return str(json.loads(self.ns.run("ip", "-j", "link", "show", "dev", dev))[0]["address"])

    def _vm_ns(self, name: str) -> Netns:
        ns = self.lab.pool.netns(name)
        ns.sysctl("net.ipv6.conf.all.accept_dad", 0)
        ns.sysctl("net.ipv6.conf.default.accept_dad", 0)
        return ns

    def add_tap_vm(self, name: str) -> Vm:
        """A VM on a TAP the agent will create (moved into the VM namespace once it exists)."""
        port_id = len(self.ports)
        ifname = f"dtapvf_{port_id}"
        self.ports.append(
            PortDecl(f"net_tap{port_id}", ifname, f"02:{self.index:02x}:00:00:00:{port_id:02x}")
        )
        vm = Vm(name, self, self._vm_ns(name), f"net_tap{port_id}", ifname, "tap")
        self.vms.append(vm)
        return vm

    def add_veth_vm(self, name: str, io: str = "af_packet") -> Vm:
        """A VM on a veth pair; the node end stands in for an SR-IOV VF representor.

        ``io`` is the agent's I/O method on it: ``af_packet`` (TPACKET rings) or ``af_xdp``.
        """
        port_id = len(self.ports)
        node_end = f"vethvf_{port_id}"
        vm_ns = self._vm_ns(name)
        self.lab.pool.veth(node_end, self.ns, "eth0", vm_ns)
        vm_ns.run("ethtool", "-K", "eth0", "tx", "off")
        device = f"net_{io}{port_id}"
        self.ports.append(PortDecl(device, node_end))
        vm = Vm(name, self, vm_ns, device, "eth0", "veth")
        self.vms.append(vm)
        return vm

    def start(self, metrics_port: int = 0, extra: tuple[str, ...] = ()) -> LabClient:
        """Start the agent, move the TAP kernel sides into their VMs, Initialize."""
        self.metrics_port = metrics_port
        argv = agent_argv(
            self.ports,
            pf0="pf0",
            underlay=str(self.underlay),
            vf_pattern="vf_",
            grpc_listen=f"unix:{self.socket_path}",
            metrics_listen=f"127.0.0.1:{metrics_port}" if metrics_port else "",
            extra=extra,
        )
        self.agent = AgentProcess(self.lab.pool, self.ns, argv, self.socket_path)
        self.client = self.agent.wait_ready()
        for vm in self.vms:
            if vm.kind == "tap":
                self.ns.ip("link", "set", vm.nic, "netns", vm.ns.name)
            vm.ns.ip("link", "set", vm.nic, "up")
        self.client.initialize()
        return self.client

    def create_interface(self, vm: Vm, vni: int, ipv4: str | None, ipv6: str | None) -> IPv6Address:
        assert self.client is not None, "start the node first"
        vm.vni, vm.ipv4, vm.ipv6 = vni, ipv4, ipv6
        vm.underlay = self.client.create_interface(
            vm.interface_id, vm.device, vni, ipv4=ipv4, ipv6=ipv6, hostname=vm.name
        )
        return vm.underlay

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.agent is not None:
            self.agent.stop()

    def metrics(self) -> str:
        """The agent's /metrics page (fetched from inside the node namespace)."""
        return self.ns.run("curl", "-sf", f"http://127.0.0.1:{self.metrics_port}/metrics")


class Lab:
    """Everything of one topology; :meth:`close` removes it all (agents first)."""

    def __init__(self, pool: NetnsPool | None = None) -> None:
        self.pool = pool or NetnsPool()
        self._own_pool = pool is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kvpc-lab-"))  # scripts, leases, agent sockets
        self.udhcpc_script = _write_script(self.workdir, "udhcpc.sh", UDHCPC_SCRIPT)
        self.dhclient_script = _write_script(self.workdir, "dhclient6.sh", DHCLIENT6_SCRIPT)
        self.router = self.pool.netns("router")
        self.router.sysctl("net.ipv6.conf.all.forwarding", 1)
        self.nodes: list[Node] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_node(self, name: str, uplink_io: str = "af_packet") -> Node:
        """A node; ``uplink_io`` is the agent's I/O method on its uplink (``af_packet``/``af_xdp``)."""
        node = Node(self, name, len(self.nodes) + 1, uplink_io)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):  # the pool below kills whatever is left
                node.stop()
        if self._own_pool:
            self.pool.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
