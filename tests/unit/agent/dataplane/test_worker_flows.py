"""The worker with the real pipeline: commands purge flows first, snapshots carry flow and NAT figures."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

from prometheus_client import generate_latest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from kubevpc_agent.dataplane.worker import DataplaneOptions, Worker
from kubevpc_agent.metrics import make_registry
from kubevpc_agent.ports.memory import MemoryPort
from kubevpc_agent.tables import commands as cmd
from testkit.dp_topology import CONFIG, PF0, PORTS, VM1

NAT_IP = IPv4Address("172.21.1.1")
ROUTER = IPv6Address("fc00::ffff")


def test_delete_nat_purges_flows_and_the_snapshot_shows_the_tables() -> None:
    config = replace(CONFIG, ports=tuple(replace(p, driver="memory") for p in PORTS), conntrack_capacity=4096)
    ports = [MemoryPort(spec) for spec in config.ports]
    worker = Worker(config, ports, DataplaneOptions(pin=False, idle_timeout=0.01))
    try:
        for command in (
            cmd.CreateInterface(
                VM1.name,
                PORTS[VM1.port].device,
                VM1.vni,
                IPv4Address(VM1.ip),
                None,
                IPv6Address("fc00:1::d000:0:0:1"),
            ),
            cmd.CreateRoute(VM1.vni, IPv4Address(0), 0, ROUTER),
            cmd.CreateNat(VM1.name, NAT_IP, 100, 102, IPv6Address("fc00:1::d000:0:0:2")),
        ):
            worker.handle(command)
        frame = (
            Ether(src=VM1.mac, dst=PORTS[VM1.port].mac)
            / IP(src=VM1.ip, dst="45.86.6.6")
            / UDP(sport=12345, dport=53)
        )
        ports[VM1.port].inject([bytes(frame)])
        worker.step(timeout=0)
        sent = ports[PF0].take_sent()
        assert len(sent) == 1
        assert Ether(sent[0])[IPv6].payload[IP].src == str(NAT_IP)
        snap = worker.snapshot()
        assert snap.tables["conntrack_table"] == (4096, 1)
        assert snap.tables["nat_portoverload_table"][1] == 1
        assert snap.interfaces["nat_used_ports"] == {VM1.name: 1}
        text = generate_latest(make_registry(lambda: snap)).decode()
        assert 'kubevpc_table_entries{table="conntrack_table"} 1.0' in text
        assert 'kubevpc_nat_used_ports{interface="vm1"} 1.0' in text

        worker.handle(cmd.DeleteNat(VM1.name))  # the hook removes the NAT flow before the NAT goes
        snap = worker.snapshot()
        assert snap.tables["conntrack_table"] == (4096, 0)
        assert snap.tables["nat_portoverload_table"][1] == 0
        assert snap.interfaces["nat_used_ports"] == {}
        assert snap.node_counter("conntrack", "flows_purged") == 1
    finally:
        worker.close()
