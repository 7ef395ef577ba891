"""VIP, NAT gateway, neighbour NAT and NAT64 with real clients: curl against a server on the "internet".

Topology (``kubevpc_agent.lab``): node1 and node2 joined by the router namespace, which runs the
border router (``testkit.border_router``: IP-in-IPv6 termination for ``fc00::ffff``) and reaches
the internet namespace (45.86.6.6). In VPC 300:

* ``vip`` (node1) has the VIP 45.86.7.10 (the border sends 45.86.7.10 to the VIP's underlay);
* ``nat`` (node1, a veth "VF") and ``v6only`` (node1, IPv6 only) share the NAT IP 45.86.7.20 with
  the slices [1000, 1010) and [1010, 1020); ``far`` (node2) has the slice [1020, 1030) of the same
  NAT IP. The border sends all of 45.86.7.20 to node1's NAT underlay: node1 relays replies for
  node2's slice to node2's NAT underlay (a neighbour NAT), as a horizontally scaled NAT gateway.

The internet server answers every request with the address and port it saw, so each test sees what
left the VPC: the VIP, or the NAT IP with a port of the right slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

import pytest

from dpdkironcore.v1 import dpdk_pb2 as pb
from kubevpc_agent.lab.agent import LabClient
from kubevpc_agent.lab.netns import Netns
from kubevpc_agent.lab.topology import Lab, Node, Vm
from testkit.border_router import INTERNET_V4, BorderRouter, attach_internet, lab_with_border
from testkit.http_peers import start_whoami

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

VNI = 300
BORDER = "fc00::ffff"
VIP = "45.86.7.10"
NAT_IP = "45.86.7.20"
SLICES = {"nat": (1000, 1010), "v6only": (1010, 1020), "far": (1020, 1030)}
SERVER_PORT = 8080
NAT64_SERVER = "64:ff9b::2d56:606"  # 45.86.6.6 in the RFC 6052 prefix

# --- gRPC helpers (the lab client covers interfaces and routes only) ------------------------------


def _ip(text: str) -> pb.IpAddress:
    addr = ip_address(text)
    return pb.IpAddress(ipver=pb.IPV4 if addr.version == 4 else pb.IPV6, address=str(addr).encode())


def _ok(status: pb.Status, what: str) -> None:
    assert status.code == 0, f"{what}: [{status.code}] {status.message}"


def create_vip(client: LabClient, vm: Vm, vip: str) -> IPv6Address:
    reply = client.stub.CreateVip(
        pb.CreateVipRequest(interface_id=vm.interface_id.encode(), vip_ip=_ip(vip)), timeout=10
    )
    _ok(reply.status, "CreateVip")
    return IPv6Address(reply.underlay_route.decode())


def create_nat(client: LabClient, vm: Vm, nat_ip: str, lo: int, hi: int) -> IPv6Address:
    request = pb.CreateNatRequest(
        interface_id=vm.interface_id.encode(), nat_ip=_ip(nat_ip), min_port=lo, max_port=hi
    )
    reply = client.stub.CreateNat(request, timeout=10)
    _ok(reply.status, "CreateNat")
    return IPv6Address(reply.underlay_route.decode())


def create_neighbor_nat(client: LabClient, nat_ip: str, lo: int, hi: int, underlay: IPv6Address) -> None:
    request = pb.CreateNeighborNatRequest(
        nat_ip=_ip(nat_ip), vni=VNI, min_port=lo, max_port=hi, underlay_route=str(underlay).encode()
    )
    _ok(client.stub.CreateNeighborNat(request, timeout=10).status, "CreateNeighborNat")


# --- the lab ---------------------------------------------------------------------------------------


@dataclass
class NatLab:
    lab: Lab
    n1: Node
    n2: Node
    inet: Netns
    border: BorderRouter
    vip: Vm
    nat: Vm
    v6only: Vm
    far: Vm

    def fetch(self, vm: Vm, url: str) -> tuple[str, int]:
        """curl ``url`` from ``vm``; the server's answer: the address and port it saw."""
        body = vm.run("curl", "-sf", "-g", "--max-time", "10", url, timeout=20)
        address, port = body.split()
        return address, int(port)


@pytest.fixture(scope="module")
def nat_lab() -> Iterator[NatLab]:
    with lab_with_border(BORDER) as (pool, lab, border):
        n1, n2 = lab.add_node("node1"), lab.add_node("node2")
        vip, nat, v6only = n1.add_tap_vm("vip"), n1.add_veth_vm("nat"), n1.add_tap_vm("v6only")
        far = n2.add_tap_vm("far")
        n1.start()
        n2.start()
        inet = attach_internet(pool, lab.router)
        border.start()
        n1.create_interface(vip, VNI, "10.3.0.1", None)
        n1.create_interface(nat, VNI, "10.3.0.2", None)
        n1.create_interface(v6only, VNI, None, "2001:db8:3::3")
        n2.create_interface(far, VNI, "10.3.0.4", None)
        for node in (n1, n2):
            assert node.client is not None
            node.client.create_route(VNI, "0.0.0.0/0", VNI, BORDER)
            node.client.create_route(VNI, "::/0", VNI, BORDER)
        assert n1.client is not None and n2.client is not None
        border.announce(VIP, create_vip(n1.client, vip, VIP))
        nat_ul = create_nat(n1.client, nat, NAT_IP, *SLICES["nat"])
        create_nat(n1.client, v6only, NAT_IP, *SLICES["v6only"])
        far_ul = create_nat(n2.client, far, NAT_IP, *SLICES["far"])
        create_neighbor_nat(n1.client, NAT_IP, *SLICES["far"], far_ul)
        border.announce(NAT_IP, nat_ul)
        for vm in (vip, nat, far):
            vm.dhcp4()
        v6only.dhcp6()
        start_whoami(inet, str(INTERNET_V4), SERVER_PORT)
        start_whoami(vip.ns, "0.0.0.0", SERVER_PORT)
        yield NatLab(lab, n1, n2, inet, border, vip, nat, v6only, far)


SERVER_URL = f"http://{INTERNET_V4}:{SERVER_PORT}/"


def test_vm_with_a_vip_reaches_the_internet_from_its_vip(nat_lab: NatLab) -> None:
    address, port = nat_lab.fetch(nat_lab.vip, SERVER_URL)
    assert address == VIP
    assert port >= 1024  # the VM's own ephemeral port: a VIP is 1:1, ports stay
    nat_lab.border.check()


def test_inbound_connection_to_the_vip_reaches_the_vm(nat_lab: NatLab) -> None:
    body = nat_lab.inet.run("curl", "-sf", "--max-time", "10", f"http://{VIP}:{SERVER_PORT}/", timeout=20)
    address, _ = body.split()
    assert address == str(INTERNET_V4)  # the VM saw the real client; its answer left from the VIP


def test_vm_behind_the_nat_reaches_the_internet_from_a_port_of_its_slice(nat_lab: NatLab) -> None:
    lo, hi = SLICES["nat"]
    seen = set()
    for _ in range(4):  # fresh connections, fresh VM ports: each gets a NAT port of the slice
        address, port = nat_lab.fetch(nat_lab.nat, SERVER_URL)
        assert address == NAT_IP
        assert lo <= port < hi, port
        seen.add(port)
    assert len(seen) >= 2


def test_ipv6_only_vm_fetches_from_an_ipv4_server_through_nat64(nat_lab: NatLab) -> None:
    lo, hi = SLICES["v6only"]
    address, port = nat_lab.fetch(nat_lab.v6only, f"http://[{NAT64_SERVER}]:{SERVER_PORT}/")
    assert address == NAT_IP
    assert lo <= port < hi, port


def test_neighbour_nat_relays_replies_to_the_node_owning_the_slice(nat_lab: NatLab) -> None:
    """``far``'s replies reach node1 (the border sends the NAT IP there) and are relayed to node2."""
    lo, hi = SLICES["far"]
    address, port = nat_lab.fetch(nat_lab.far, SERVER_URL)
    assert address == NAT_IP
    assert lo <= port < hi, port


def test_ping_through_the_nat_and_to_the_nat_ip(nat_lab: NatLab) -> None:
    assert nat_lab.nat.ping(str(INTERNET_V4), count=2)
    result = nat_lab.inet.try_run("ping", "-c", "2", "-i", "0.2", "-W", "2", NAT_IP, timeout=15)
    assert result.returncode == 0, result.stdout  # answered by node1's agent itself


def test_unsolicited_inbound_to_the_nat_ip_is_dropped(nat_lab: NatLab) -> None:
    result = nat_lab.inet.try_run(
        "curl", "-sf", "--max-time", "2", f"http://{NAT_IP}:{SERVER_PORT}/", timeout=10
    )
    assert result.returncode != 0
