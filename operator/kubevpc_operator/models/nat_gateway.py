"""A NATGateway: public IPv4 addresses shared by a VPC's interfaces, one port slice each.

Each selected interface gets a slice of ``portsPerNetworkInterface`` ports (a power of two) of one
of ``spec.ips``; slices come from 1024..65535 and stay where they are once given (they are
recorded in ``status.allocations`` and read back after a restart).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from kubevpc_operator.models.common import BodyReader, LabelSelector, ObjectKey, Resource

FIRST_PORT = 1024  # ports below stay with the host's well-known services
END_PORT = 65535  # exclusive: the agent takes [min_port, max_port) with max_port <= 65535
DEFAULT_PORTS_PER_INTERFACE = 2048
MAX_PORTS_PER_INTERFACE = 32768  # largest power of two that fits once in [1024, 65535)
MIN_PORTS_PER_INTERFACE = 1

FIELDS = (
    "spec.vpcRef.name",
    "spec.ips[]",
    "spec.portsPerNetworkInterface",
    "spec.interfaceSelector",
    "spec.interfaceSelector.matchLabels",
    "spec.interfaceSelector.matchExpressions[].key",
    "spec.interfaceSelector.matchExpressions[].operator",
    "spec.interfaceSelector.matchExpressions[].values",
    "status.allocations[].networkInterface",
    "status.allocations[].ip",
    "status.allocations[].minPort",
    "status.allocations[].maxPort",
)


@dataclass(frozen=True, order=True)
class NatSlot:
    """One port slice: ``[min_port, max_port)`` of ``ip``."""

    ip: ipaddress.IPv4Address
    min_port: int
    max_port: int


@dataclass(frozen=True)
class NATGateway(Resource):
    vpc: ObjectKey
    ips: tuple[ipaddress.IPv4Address, ...]
    ports_per_interface: int
    interface_selector: LabelSelector | None  # None: every interface of the VPC (never one with a VIP)
    recorded: Mapping[str, NatSlot]  # status.allocations: interface name -> slot

    @property
    def slices_per_ip(self) -> int:
        return (END_PORT - FIRST_PORT) // self.ports_per_interface

    def slots(self) -> list[NatSlot]:
        """Every slot, in allocation order (IP order, then port order)."""
        return list(self._slots)

    @cached_property
    def _slots(self) -> tuple[NatSlot, ...]:
        size = self.ports_per_interface
        return tuple(
            NatSlot(ip, FIRST_PORT + i * size, FIRST_PORT + (i + 1) * size)
            for ip in self.ips
            for i in range(self.slices_per_ip)
        )

    def is_slot(self, slot: NatSlot) -> bool:
        offset = slot.min_port - FIRST_PORT
        return (
            slot.ip in self.ips
            and offset >= 0
            and offset % self.ports_per_interface == 0
            and slot.max_port == slot.min_port + self.ports_per_interface
            and slot.max_port <= END_PORT
        )

    @classmethod
    def read(cls, reader: BodyReader) -> NATGateway:
        meta = reader.meta()
        vpc_name = reader.string("spec.vpcRef.name", required=True)
        ips: list[ipaddress.IPv4Address] = []
        for _, path in reader.items("spec.ips"):
            ip = reader.ip(path, required=True)
            if ip is None:
                continue
            if not isinstance(ip, ipaddress.IPv4Address) or ip.is_unspecified:
                reader.fail(path, f"{ip} is not a usable IPv4 address (NAT gateways are IPv4)")
            elif ip in ips:
                reader.fail(path, f"{ip} is listed twice")
            else:
                ips.append(ip)
        if not ips and reader.get("spec.ips") is None:
            reader.fail("spec.ips", "required: at least one public IPv4 address")
        size = reader.integer(
            "spec.portsPerNetworkInterface",
            default=DEFAULT_PORTS_PER_INTERFACE,
            minimum=MIN_PORTS_PER_INTERFACE,
            maximum=MAX_PORTS_PER_INTERFACE,
        )
        if size is None or size & (size - 1):
            if size is not None:
                reader.fail("spec.portsPerNetworkInterface", f"{size} is not a power of two")
            size = DEFAULT_PORTS_PER_INTERFACE
        selector = reader.selector("spec.interfaceSelector")
        recorded = _read_recorded(reader)
        reader.raise_if_failed()
        return cls(
            meta=meta,
            vpc=ObjectKey(meta.namespace, vpc_name),
            ips=tuple(ips),
            ports_per_interface=size,
            interface_selector=selector,
            recorded=recorded,
        )


def _read_recorded(reader: BodyReader) -> dict[str, NatSlot]:
    """status.allocations, leniently: a malformed entry is dropped (and re-allocated), never fatal."""
    recorded: dict[str, NatSlot] = {}
    raw = reader.get("status.allocations", [])
    if not isinstance(raw, list):
        return recorded
    for index, entry in enumerate(raw):
        path = f"status.allocations[{index}]"
        name = reader.get(f"{path}.networkInterface")
        ip_text = reader.get(f"{path}.ip")
        low = reader.get(f"{path}.minPort")
        high = reader.get(f"{path}.maxPort")
        if not isinstance(entry, Mapping) or not isinstance(name, str):
            continue
        if not isinstance(low, int) or not isinstance(high, int):
            continue
        try:
            ip = ipaddress.IPv4Address(str(ip_text))
        except ValueError:
            continue
        recorded[name] = NatSlot(ip, low, high)
    return recorded
