"""Firewall rule counts per interface, from the firewall node through the worker snapshot to /metrics.

dpservice's ``test_telemetry_fwall``: every interface reports 0, one rule makes it 1, deleting the
rule makes it 0 again.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address, ip_network

from prometheus_client import generate_latest

from kubevpc_agent.dataplane import DataplaneOptions
from kubevpc_agent.dataplane.worker import Worker
from kubevpc_agent.metrics import make_registry
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables import commands as cmd
from kubevpc_agent.tables.model import Action, Direction, FirewallRule, Protocol
from testkit.dp_topology import CONFIG, PORTS, VM1, VM2, VM3

ANY4 = ip_network("0.0.0.0/0")


def make_worker() -> Worker:
    ports = [MemoryPort(replace(p, driver="memory")) for p in PORTS]
    worker = Worker(CONFIG, ports, DataplaneOptions(pin=False, idle_timeout=0.01))
    for i, vm in enumerate((VM1, VM2, VM3)):
        worker.handle(
            cmd.CreateInterface(
                vm.name,
                PORTS[vm.port].device,
                vm.vni,
                IPv4Address(vm.ip),
                None,
                IPv6Address(f"fc00:1::{i + 10}"),
            )
        )
    return worker


def rule_counts(worker: Worker) -> dict[str, int]:
    return worker.snapshot().interfaces["firewall_rules"]


def test_rule_counts_reach_the_snapshot_and_the_exposition() -> None:
    worker = make_worker()
    try:
        assert rule_counts(worker) == {"vm1": 0, "vm2": 0, "vm3": 0}
        rule = FirewallRule("fw0-vm1", Direction.INGRESS, Action.ACCEPT, 1000, ANY4, ANY4, Protocol.TCP)
        worker.handle(cmd.CreateFirewallRule("vm1", rule, ANY4.network_address, ANY4.network_address))
        assert rule_counts(worker) == {"vm1": 1, "vm2": 0, "vm3": 0}
        text = generate_latest(make_registry(worker.snapshot)).decode()
        assert 'kubevpc_firewall_rules{interface="vm1"} 1.0' in text
        assert 'kubevpc_firewall_rules{interface="vm2"} 0.0' in text
        worker.handle(cmd.DeleteFirewallRule("vm1", "fw0-vm1"))
        assert rule_counts(worker) == {"vm1": 0, "vm2": 0, "vm3": 0}
    finally:
        worker.close()
