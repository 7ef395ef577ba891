"""The agent's settings, one dataclass, whichever form they came in.

Filled from dpservice-bin's command line (EAL options before ``--``, dpservice options after),
from ``DP_CONF`` / ``/run/dpservice/dpservice.conf``, or from our YAML config file (``cmdline.py``
parses all three). Nodes read the dataplane part; the gRPC server reads the listen part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv6Address

from kubevpc_agent.graph.port import PortSpec


class NicType(Enum):
    MELLANOX = "mellanox"
    TAP = "tap"
    BLUEFIELD2 = "bluefield2"


@dataclass(frozen=True)
class AgentConfig:
    """Everything the agent was started with."""

    ports: tuple[PortSpec, ...] = ()  # every dataplane port, in port-id order
    pf0: str = ""  # netdev name of the first uplink
    pf1: str = ""  # netdev name of the second uplink ("" = none)
    vf_pattern: str = ""  # substring that marks VF netdev names
    underlay_ipv6: IPv6Address = IPv6Address("::")  # noqa: RUF009 --ipv6: host underlay address, /64 = our pool
    nic_type: NicType = NicType.MELLANOX
    enable_ipv6_overlay: bool = False  # ND/RA responder and periodic RA/NA
    dhcp_mtu: int = 1500  # DHCP option 26
    dhcp_dns: tuple[IPv4Address, ...] = ()  # DHCP option 6
    dhcpv6_dns: tuple[IPv6Address, ...] = ()  # DHCPv6 option 23
    wcmp_percent: int = 100  # share of IPv4-overlay egress flows on pf0; < 100 enables WCMP
    flow_timeout: int = 30  # seconds, every flow except established TCP
    offload: bool = True  # --no-offload clears it
    stats: bool = True  # --no-stats clears it
    grpc_listen: str = "127.0.0.1:1337"  # host:port, or unix:/path
    grpc_tls_cert: str = ""  # server certificate (PEM); with tls_key and tls_ca: mutual TLS
    grpc_tls_key: str = ""
    grpc_tls_ca: str = ""  # CA that client certificates must chain to
    log_format: str = "text"
    color: str = "never"
    metrics_listen: str = ""  # host:port of the Prometheus endpoint ("" = off)
    fw_drop_compat: bool = False  # reject firewall DROP rules with 441 NO_DROP_SUPPORT, as dpservice
    conntrack_capacity: int = 1 << 20  # flows; full table drops new flows, keeps established
    extra: dict[str, str] = field(default_factory=dict)  # accepted-and-ignored options, for the log

    def port_by_ifname(self, ifname: str) -> PortSpec | None:
        return next((p for p in self.ports if p.ifname == ifname), None)

    def port_by_device(self, device: str) -> PortSpec | None:
        return next((p for p in self.ports if p.device == device), None)
