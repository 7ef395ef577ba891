"""Models: valid bodies become typed views; invalid ones fail with every problem, readably."""

from __future__ import annotations

import ipaddress

import pytest

from kubevpc_operator.models import (
    VPC,
    DeviceKind,
    LabelSelector,
    LoadBalancer,
    NATGateway,
    NetworkInterface,
    SpecError,
)
from kubevpc_operator.models.common import BodyReader, Requirement
from kubevpc_operator.models.nat_gateway import NatSlot
from testkit import operator_objects as objects


def problems_of(model: type, body: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        model.from_body(body)  # type: ignore[attr-defined]
    return dict(caught.value.problems)


def test_vpc_reads_pinned_vni_peerings_and_recorded_vni() -> None:
    body = objects.vpc("a", vni=100, peerings=[{"vpcRef": {"name": "b"}, "prefixes": ["10.1.0.0/16"]}])
    body["status"] = {"vni": 7}
    vpc = VPC.from_body(body)
    assert vpc.vni == 100
    assert vpc.status_vni == 7
    assert vpc.effective_vni == 100
    assert vpc.peerings[0].vpc.name == "b"
    assert vpc.peerings[0].allows(ipaddress.ip_network("10.1.2.3/32"))
    assert not vpc.peerings[0].allows(ipaddress.ip_network("10.2.0.1/32"))


def test_vpc_without_vni_uses_the_recorded_one() -> None:
    assert VPC.from_body(objects.vpc("a", status_vni=42)).effective_vni == 42
    assert VPC.from_body(objects.vpc("a")).effective_vni is None


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"vni": 0}, "spec.vni", "below the minimum 1"),
        ({"vni": 1 << 24}, "spec.vni", "above the maximum 16777215"),
        ({"vni": "7"}, "spec.vni", "must be an integer"),
        (
            {"peerings": [{"vpcRef": {"name": "a"}}]},
            "spec.peerings[0].vpcRef.name",
            "cannot peer with itself",
        ),
        ({"peerings": [{"vpcRef": {}}]}, "spec.peerings[0].vpcRef.name", "required"),
        (
            {"peerings": [{"vpcRef": {"name": "b"}, "prefixes": ["10.1.0.1/16"]}]},
            "spec.peerings[0].prefixes[0]",
            "host bits set; did you mean 10.1.0.0/16?",
        ),
    ],
)
def test_vpc_rejects_with_path_and_reason(spec: dict, path: str, fragment: str) -> None:
    body = objects.vpc("a")
    body["spec"] = spec
    assert fragment in problems_of(VPC, body)[path]


def test_interface_reads_every_field() -> None:
    body = objects.nic(
        "web",
        ips=["10.0.0.5", "fd00::5"],
        vf="0000:3b:00.2",
        virtualIP="203.0.113.5",
        prefixes=["10.10.0.0/24"],
        hostname="web-1",
        pxe={"server": "fd00::1", "bootFilename": "ipxe.efi"},
        firewallRules=[
            {
                "name": "web",
                "direction": "Ingress",
                "protocol": "TCP",
                "destinationPorts": {"from": 80, "to": 443},
            },
            {"name": "ssh", "direction": "Ingress", "protocol": "TCP", "destinationPorts": {"from": 22}},
            {"name": "first", "direction": "Egress", "priority": 10, "action": "Drop"},
            {"name": "v6", "direction": "Ingress", "ipFamily": "IPv6", "sourcePrefix": "fd00::/64"},
        ],
    )
    nic = NetworkInterface.from_body(body)
    assert nic.device.kind is DeviceKind.VF
    assert nic.device.agent_name == "0000:3b:00.2"
    assert nic.ipv4 == ipaddress.IPv4Address("10.0.0.5")
    assert nic.ipv6 == ipaddress.IPv6Address("fd00::5")
    assert str(nic.virtual_ip) == "203.0.113.5"
    assert [str(p) for p in nic.prefixes] == ["10.10.0.0/24"]
    assert nic.pxe is not None and nic.pxe.server == "fd00::1"
    # Rules are evaluated in (priority, name) order.
    assert [r.id for r in nic.firewall_rules] == ["first", "ssh", "v6", "web"]
    first, ssh, v6, web = nic.firewall_rules
    assert first.action.value == "Drop"
    assert (ssh.destination_ports.first, ssh.destination_ports.last) == (22, 22)
    assert (web.destination_ports.first, web.destination_ports.last) == (80, 443)
    assert (str(v6.source), str(v6.destination)) == ("fd00::/64", "::/0")


def test_interface_reports_every_problem_at_once() -> None:
    body = objects.nic(
        "bad",
        ips=["10.0.0.1", "10.0.0.2", "not-an-ip"],
        virtualIP="fd00::1",
        prefixes=["10.0.0.0/24"],
        hostname="h" * 64,
        pxe={"server": "fd00::1", "bootFilename": "x" * 32},
        firewallRules=[
            {
                "name": "r",
                "direction": "Sideways",
                "action": "Reject",
                "protocol": "ICMP",
                "destinationPorts": {"from": 80},
                "sourcePrefix": "fd00::/64",
            },
            {"direction": "Ingress"},
        ],
    )
    problems = problems_of(NetworkInterface, body)
    assert "only one IPv4 address per interface" in problems["spec.ips[1]"]
    assert "'not-an-ip' is not an IP address" in problems["spec.ips[2]"]
    assert "virtual IPs are IPv4 only" in problems["spec.virtualIP"]
    assert "contains the interface's own address" in problems["spec.prefixes[0]"]
    assert "shorter than 64" in problems["spec.hostname"]
    assert "at most 31" in problems["spec.pxe.bootFilename"]
    assert "must be IPv4" in problems["spec.pxe.server"]
    assert "'Sideways' is not one of Ingress, Egress" in problems["spec.firewallRules[0].direction"]
    assert "'Reject' is not one of Accept, Drop" in problems["spec.firewallRules[0].action"]
    assert "ports need protocol TCP or UDP" in problems["spec.firewallRules[0].protocol"]
    assert "not an IPv4 prefix" in problems["spec.firewallRules[0].sourcePrefix"]
    assert problems["spec.firewallRules[1].name"] == "required"
    # One readable sentence per problem, each naming its field.
    message = str(SpecError(list(problems.items())))
    assert message.count("spec.") == len(problems)


@pytest.mark.parametrize(
    ("device", "fragment"),
    [
        ({}, "required: vf"),
        ({"vf": {"name": "a", "pciAddress": "0000:00:00.1"}}, "exactly one of name and pciAddress"),
        ({"vf": {"name": "a"}, "tap": {"name": "b"}}, "either vf or tap"),
        ({"tap": {"name": "x" * 16}}, "at most 15 characters"),
    ],
)
def test_interface_device_rules(device: dict, fragment: str) -> None:
    body = objects.nic("n")
    body["spec"]["device"] = device
    assert any(fragment in message for message in problems_of(NetworkInterface, body).values())


def test_virtual_ip_needs_an_ipv4_address() -> None:
    body = objects.nic("n", ips=["fd00::1"], virtualIP="203.0.113.1")
    assert "needs an IPv4 address" in problems_of(NetworkInterface, body)["spec.virtualIP"]


def test_interface_needs_an_address() -> None:
    body = objects.nic("n")
    body["spec"]["ips"] = []
    assert problems_of(NetworkInterface, body)["spec.ips"].startswith("required")


def test_load_balancer_reads_ports_sorted_and_selectors() -> None:
    body = objects.load_balancer(
        "lb",
        ports=[
            {"protocol": "UDP", "port": 53},
            {"protocol": "TCP", "port": 443},
            {"protocol": "TCP", "port": 80},
        ],
        targets={"app": "web"},
        nodeSelector={"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
    )
    lb = LoadBalancer.from_body(body)
    assert [(p.protocol.name, p.port) for p in lb.ports] == [("TCP", 80), ("TCP", 443), ("UDP", 53)]
    assert lb.target_selector == LabelSelector((("app", "web"),))
    assert lb.node_selector is not None and lb.node_selector.matches({"zone": "a"})
    assert not lb.node_selector.matches({"zone": "b"})


def test_load_balancer_rejects_duplicates_and_too_many_ports() -> None:
    body = objects.load_balancer("lb", ports=[{"protocol": "TCP", "port": 80}] * 2)
    assert "listed twice" in problems_of(LoadBalancer, body)["spec.ports[1]"]
    body = objects.load_balancer("lb", ports=[{"protocol": "TCP", "port": p} for p in range(1, 18)])
    assert "at most 15" in problems_of(LoadBalancer, body)["spec.ports"]
    body = objects.load_balancer("lb", ports=[{"protocol": "SCTP", "port": 80}])
    assert "not TCP or UDP" in problems_of(LoadBalancer, body)["spec.ports[0].protocol"]


def test_nat_gateway_slots_and_recorded_allocations() -> None:
    body = objects.nat_gateway("gw", ips=["203.0.113.1", "203.0.113.2"], ports=16384)
    body["status"] = {
        "allocations": [
            {"networkInterface": "a", "ip": "203.0.113.2", "minPort": 17408, "maxPort": 33792},
            {"networkInterface": "broken", "ip": "nope", "minPort": 1, "maxPort": 2},
        ]
    }
    gateway = NATGateway.from_body(body)
    assert gateway.slices_per_ip == 3  # 1024..65535 holds three 16384-port slices
    slots = gateway.slots()
    assert len(slots) == 6
    assert slots[0] == NatSlot(ipaddress.IPv4Address("203.0.113.1"), 1024, 17408)
    assert all(slot.max_port <= 65535 for slot in slots)
    assert gateway.recorded == {"a": NatSlot(ipaddress.IPv4Address("203.0.113.2"), 17408, 33792)}
    assert gateway.is_slot(gateway.recorded["a"])


def test_nat_gateway_defaults_and_rules() -> None:
    gateway = NATGateway.from_body(objects.nat_gateway("gw"))
    assert gateway.ports_per_interface == 2048
    assert gateway.slices_per_ip == 31
    assert (
        "not a power of two"
        in problems_of(NATGateway, objects.nat_gateway("gw", ports=3000))["spec.portsPerNetworkInterface"]
    )
    assert "IPv4" in problems_of(NATGateway, objects.nat_gateway("gw", ips=["fd00::1"]))["spec.ips[0]"]


def test_label_selector_semantics() -> None:
    selector = LabelSelector(
        (("app", "web"),),
        (Requirement("tier", "NotIn", frozenset({"db"})), Requirement("canary", "DoesNotExist")),
    )
    assert selector.matches({"app": "web"})
    assert selector.matches({"app": "web", "tier": "front"})
    assert not selector.matches({"app": "web", "tier": "db"})
    assert not selector.matches({"app": "web", "canary": "1"})
    assert not selector.matches({"app": "api"})
    assert LabelSelector().matches({})


def test_reader_records_normalised_paths() -> None:
    reader = BodyReader({"spec": {"items": [{"a": 1}, {"a": 2}]}})
    assert [reader.get(path) for _, item in reader.items("spec.items") for path in [f"{item}.a"]] == [1, 2]
    assert "spec.items[].a" in reader.paths
