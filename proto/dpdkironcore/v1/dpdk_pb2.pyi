from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InterfaceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIRTUAL: _ClassVar[InterfaceType]
    BAREMETAL: _ClassVar[InterfaceType]

class IpVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IPV4: _ClassVar[IpVersion]
    IPV6: _ClassVar[IpVersion]

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNDEFINED: _ClassVar[Protocol]
    ICMP: _ClassVar[Protocol]
    TCP: _ClassVar[Protocol]
    UDP: _ClassVar[Protocol]
    ICMPV6: _ClassVar[Protocol]
    SCTP: _ClassVar[Protocol]

class TrafficDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INGRESS: _ClassVar[TrafficDirection]
    EGRESS: _ClassVar[TrafficDirection]

class FirewallAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP: _ClassVar[FirewallAction]
    ACCEPT: _ClassVar[FirewallAction]

class VniType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VNI_IPV4: _ClassVar[VniType]
    VNI_IPV6: _ClassVar[VniType]
    VNI_BOTH: _ClassVar[VniType]

class CaptureInterfaceType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SINGLE_PF: _ClassVar[CaptureInterfaceType]
    SINGLE_VF: _ClassVar[CaptureInterfaceType]
VIRTUAL: InterfaceType
BAREMETAL: InterfaceType
IPV4: IpVersion
IPV6: IpVersion
UNDEFINED: Protocol
ICMP: Protocol
TCP: Protocol
UDP: Protocol
ICMPV6: Protocol
SCTP: Protocol
INGRESS: TrafficDirection
EGRESS: TrafficDirection
DROP: FirewallAction
ACCEPT: FirewallAction
VNI_IPV4: VniType
VNI_IPV6: VniType
VNI_BOTH: VniType
SINGLE_PF: CaptureInterfaceType
SINGLE_VF: CaptureInterfaceType

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Status(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class IpAddress(_message.Message):
    __slots__ = ("ipver", "address")
    IPVER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ipver: IpVersion
    address: bytes
    def __init__(self, ipver: _Optional[_Union[IpVersion, str]] = ..., address: _Optional[bytes] = ...) -> None: ...

class Prefix(_message.Message):
    __slots__ = ("ip", "length", "underlay_route")
    IP_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    ip: IpAddress
    length: int
    underlay_route: bytes
    def __init__(self, ip: _Optional[_Union[IpAddress, _Mapping]] = ..., length: _Optional[int] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("id", "vni", "primary_ipv4", "primary_ipv6", "underlay_route", "pci_name", "meteringParams", "hostname")
    ID_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_IPV4_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_IPV6_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    PCI_NAME_FIELD_NUMBER: _ClassVar[int]
    METERINGPARAMS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    vni: int
    primary_ipv4: bytes
    primary_ipv6: bytes
    underlay_route: bytes
    pci_name: str
    meteringParams: MeteringParams
    hostname: str
    def __init__(self, id: _Optional[bytes] = ..., vni: _Optional[int] = ..., primary_ipv4: _Optional[bytes] = ..., primary_ipv6: _Optional[bytes] = ..., underlay_route: _Optional[bytes] = ..., pci_name: _Optional[str] = ..., meteringParams: _Optional[_Union[MeteringParams, _Mapping]] = ..., hostname: _Optional[str] = ...) -> None: ...

class IpConfig(_message.Message):
    __slots__ = ("primary_address",)
    PRIMARY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    primary_address: bytes
    def __init__(self, primary_address: _Optional[bytes] = ...) -> None: ...

class PxeConfig(_message.Message):
    __slots__ = ("next_server", "boot_filename")
    NEXT_SERVER_FIELD_NUMBER: _ClassVar[int]
    BOOT_FILENAME_FIELD_NUMBER: _ClassVar[int]
    next_server: str
    boot_filename: str
    def __init__(self, next_server: _Optional[str] = ..., boot_filename: _Optional[str] = ...) -> None: ...

class VirtualFunction(_message.Message):
    __slots__ = ("name", "domain", "bus", "slot", "function")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    BUS_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    domain: int
    bus: int
    slot: int
    function: int
    def __init__(self, name: _Optional[str] = ..., domain: _Optional[int] = ..., bus: _Optional[int] = ..., slot: _Optional[int] = ..., function: _Optional[int] = ...) -> None: ...

class LbPort(_message.Message):
    __slots__ = ("port", "protocol")
    PORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    port: int
    protocol: Protocol
    def __init__(self, port: _Optional[int] = ..., protocol: _Optional[_Union[Protocol, str]] = ...) -> None: ...

class NatEntry(_message.Message):
    __slots__ = ("nat_ip", "min_port", "max_port", "underlay_route", "vni", "actual_nat_ip")
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    MIN_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_PORT_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_NAT_IP_FIELD_NUMBER: _ClassVar[int]
    nat_ip: IpAddress
    min_port: int
    max_port: int
    underlay_route: bytes
    vni: int
    actual_nat_ip: IpAddress
    def __init__(self, nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., min_port: _Optional[int] = ..., max_port: _Optional[int] = ..., underlay_route: _Optional[bytes] = ..., vni: _Optional[int] = ..., actual_nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("prefix", "nexthop_vni", "nexthop_address", "weight")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NEXTHOP_VNI_FIELD_NUMBER: _ClassVar[int]
    NEXTHOP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    prefix: Prefix
    nexthop_vni: int
    nexthop_address: IpAddress
    weight: int
    def __init__(self, prefix: _Optional[_Union[Prefix, _Mapping]] = ..., nexthop_vni: _Optional[int] = ..., nexthop_address: _Optional[_Union[IpAddress, _Mapping]] = ..., weight: _Optional[int] = ...) -> None: ...

class Loadbalancer(_message.Message):
    __slots__ = ("id", "vni", "ip", "ports", "underlay_route")
    ID_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    vni: int
    ip: IpAddress
    ports: _containers.RepeatedCompositeFieldContainer[LbPort]
    underlay_route: bytes
    def __init__(self, id: _Optional[bytes] = ..., vni: _Optional[int] = ..., ip: _Optional[_Union[IpAddress, _Mapping]] = ..., ports: _Optional[_Iterable[_Union[LbPort, _Mapping]]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class IcmpFilter(_message.Message):
    __slots__ = ("icmp_type", "icmp_code")
    ICMP_TYPE_FIELD_NUMBER: _ClassVar[int]
    ICMP_CODE_FIELD_NUMBER: _ClassVar[int]
    icmp_type: int
    icmp_code: int
    def __init__(self, icmp_type: _Optional[int] = ..., icmp_code: _Optional[int] = ...) -> None: ...

class TcpFilter(_message.Message):
    __slots__ = ("src_port_lower", "src_port_upper", "dst_port_lower", "dst_port_upper")
    SRC_PORT_LOWER_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_UPPER_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_LOWER_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_UPPER_FIELD_NUMBER: _ClassVar[int]
    src_port_lower: int
    src_port_upper: int
    dst_port_lower: int
    dst_port_upper: int
    def __init__(self, src_port_lower: _Optional[int] = ..., src_port_upper: _Optional[int] = ..., dst_port_lower: _Optional[int] = ..., dst_port_upper: _Optional[int] = ...) -> None: ...

class UdpFilter(_message.Message):
    __slots__ = ("src_port_lower", "src_port_upper", "dst_port_lower", "dst_port_upper")
    SRC_PORT_LOWER_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_UPPER_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_LOWER_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_UPPER_FIELD_NUMBER: _ClassVar[int]
    src_port_lower: int
    src_port_upper: int
    dst_port_lower: int
    dst_port_upper: int
    def __init__(self, src_port_lower: _Optional[int] = ..., src_port_upper: _Optional[int] = ..., dst_port_lower: _Optional[int] = ..., dst_port_upper: _Optional[int] = ...) -> None: ...

class ProtocolFilter(_message.Message):
    __slots__ = ("icmp", "tcp", "udp")
    ICMP_FIELD_NUMBER: _ClassVar[int]
    TCP_FIELD_NUMBER: _ClassVar[int]
    UDP_FIELD_NUMBER: _ClassVar[int]
    icmp: IcmpFilter
    tcp: TcpFilter
    udp: UdpFilter
    def __init__(self, icmp: _Optional[_Union[IcmpFilter, _Mapping]] = ..., tcp: _Optional[_Union[TcpFilter, _Mapping]] = ..., udp: _Optional[_Union[UdpFilter, _Mapping]] = ...) -> None: ...

class MeteringParams(_message.Message):
    __slots__ = ("total_rate", "public_rate")
    TOTAL_RATE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_RATE_FIELD_NUMBER: _ClassVar[int]
    total_rate: int
    public_rate: int
    def __init__(self, total_rate: _Optional[int] = ..., public_rate: _Optional[int] = ...) -> None: ...

class FirewallRule(_message.Message):
    __slots__ = ("id", "direction", "action", "priority", "source_prefix", "destination_prefix", "protocol_filter")
    ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FILTER_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    direction: TrafficDirection
    action: FirewallAction
    priority: int
    source_prefix: Prefix
    destination_prefix: Prefix
    protocol_filter: ProtocolFilter
    def __init__(self, id: _Optional[bytes] = ..., direction: _Optional[_Union[TrafficDirection, str]] = ..., action: _Optional[_Union[FirewallAction, str]] = ..., priority: _Optional[int] = ..., source_prefix: _Optional[_Union[Prefix, _Mapping]] = ..., destination_prefix: _Optional[_Union[Prefix, _Mapping]] = ..., protocol_filter: _Optional[_Union[ProtocolFilter, _Mapping]] = ...) -> None: ...

class CapturedInterface(_message.Message):
    __slots__ = ("interface_type", "filter", "vf_name", "pf_index")
    INTERFACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    VF_NAME_FIELD_NUMBER: _ClassVar[int]
    PF_INDEX_FIELD_NUMBER: _ClassVar[int]
    interface_type: CaptureInterfaceType
    filter: bytes
    vf_name: bytes
    pf_index: int
    def __init__(self, interface_type: _Optional[_Union[CaptureInterfaceType, str]] = ..., filter: _Optional[bytes] = ..., vf_name: _Optional[bytes] = ..., pf_index: _Optional[int] = ...) -> None: ...

class CaptureConfig(_message.Message):
    __slots__ = ("sink_node_ip", "udp_src_port", "udp_dst_port", "interfaces")
    SINK_NODE_IP_FIELD_NUMBER: _ClassVar[int]
    UDP_SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    UDP_DST_PORT_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    sink_node_ip: IpAddress
    udp_src_port: int
    udp_dst_port: int
    interfaces: _containers.RepeatedCompositeFieldContainer[CapturedInterface]
    def __init__(self, sink_node_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., udp_src_port: _Optional[int] = ..., udp_dst_port: _Optional[int] = ..., interfaces: _Optional[_Iterable[_Union[CapturedInterface, _Mapping]]] = ...) -> None: ...

class CheckInitializedRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckInitializedResponse(_message.Message):
    __slots__ = ("status", "uuid")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    status: Status
    uuid: str
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., uuid: _Optional[str] = ...) -> None: ...

class InitializeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InitializeResponse(_message.Message):
    __slots__ = ("status", "uuid")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    status: Status
    uuid: str
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., uuid: _Optional[str] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("client_protocol", "client_name", "client_version")
    CLIENT_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    client_protocol: str
    client_name: str
    client_version: str
    def __init__(self, client_protocol: _Optional[str] = ..., client_name: _Optional[str] = ..., client_version: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("status", "service_protocol", "service_version")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    status: Status
    service_protocol: str
    service_version: str
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., service_protocol: _Optional[str] = ..., service_version: _Optional[str] = ...) -> None: ...

class ListInterfacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInterfacesResponse(_message.Message):
    __slots__ = ("status", "interfaces")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    interfaces: _containers.RepeatedCompositeFieldContainer[Interface]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., interfaces: _Optional[_Iterable[_Union[Interface, _Mapping]]] = ...) -> None: ...

class GetInterfaceRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class GetInterfaceResponse(_message.Message):
    __slots__ = ("status", "interface")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    interface: Interface
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., interface: _Optional[_Union[Interface, _Mapping]] = ...) -> None: ...

class CreateInterfaceRequest(_message.Message):
    __slots__ = ("interface_type", "interface_id", "vni", "ipv4_config", "ipv6_config", "pxe_config", "device_name", "metering_parameters", "preferred_underlay_route", "hostname")
    INTERFACE_TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    IPV4_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IPV6_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PXE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    METERING_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    interface_type: InterfaceType
    interface_id: bytes
    vni: int
    ipv4_config: IpConfig
    ipv6_config: IpConfig
    pxe_config: PxeConfig
    device_name: str
    metering_parameters: MeteringParams
    preferred_underlay_route: bytes
    hostname: str
    def __init__(self, interface_type: _Optional[_Union[InterfaceType, str]] = ..., interface_id: _Optional[bytes] = ..., vni: _Optional[int] = ..., ipv4_config: _Optional[_Union[IpConfig, _Mapping]] = ..., ipv6_config: _Optional[_Union[IpConfig, _Mapping]] = ..., pxe_config: _Optional[_Union[PxeConfig, _Mapping]] = ..., device_name: _Optional[str] = ..., metering_parameters: _Optional[_Union[MeteringParams, _Mapping]] = ..., preferred_underlay_route: _Optional[bytes] = ..., hostname: _Optional[str] = ...) -> None: ...

class CreateInterfaceResponse(_message.Message):
    __slots__ = ("status", "underlay_route", "vf")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    VF_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    vf: VirtualFunction
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ..., vf: _Optional[_Union[VirtualFunction, _Mapping]] = ...) -> None: ...

class DeleteInterfaceRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class DeleteInterfaceResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListPrefixesRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class ListPrefixesResponse(_message.Message):
    __slots__ = ("status", "prefixes")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    prefixes: _containers.RepeatedCompositeFieldContainer[Prefix]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., prefixes: _Optional[_Iterable[_Union[Prefix, _Mapping]]] = ...) -> None: ...

class CreatePrefixRequest(_message.Message):
    __slots__ = ("interface_id", "prefix", "preferred_underlay_route")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    prefix: Prefix
    preferred_underlay_route: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., prefix: _Optional[_Union[Prefix, _Mapping]] = ..., preferred_underlay_route: _Optional[bytes] = ...) -> None: ...

class CreatePrefixResponse(_message.Message):
    __slots__ = ("status", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class DeletePrefixRequest(_message.Message):
    __slots__ = ("interface_id", "prefix")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    prefix: Prefix
    def __init__(self, interface_id: _Optional[bytes] = ..., prefix: _Optional[_Union[Prefix, _Mapping]] = ...) -> None: ...

class DeletePrefixResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListLoadBalancerPrefixesRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class ListLoadBalancerPrefixesResponse(_message.Message):
    __slots__ = ("status", "prefixes")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    prefixes: _containers.RepeatedCompositeFieldContainer[Prefix]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., prefixes: _Optional[_Iterable[_Union[Prefix, _Mapping]]] = ...) -> None: ...

class CreateLoadBalancerPrefixRequest(_message.Message):
    __slots__ = ("interface_id", "prefix", "preferred_underlay_route")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    prefix: Prefix
    preferred_underlay_route: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., prefix: _Optional[_Union[Prefix, _Mapping]] = ..., preferred_underlay_route: _Optional[bytes] = ...) -> None: ...

class CreateLoadBalancerPrefixResponse(_message.Message):
    __slots__ = ("status", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class DeleteLoadBalancerPrefixRequest(_message.Message):
    __slots__ = ("interface_id", "prefix")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    prefix: Prefix
    def __init__(self, interface_id: _Optional[bytes] = ..., prefix: _Optional[_Union[Prefix, _Mapping]] = ...) -> None: ...

class DeleteLoadBalancerPrefixResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CreateVipRequest(_message.Message):
    __slots__ = ("interface_id", "vip_ip", "preferred_underlay_route")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    VIP_IP_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    vip_ip: IpAddress
    preferred_underlay_route: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., vip_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., preferred_underlay_route: _Optional[bytes] = ...) -> None: ...

class CreateVipResponse(_message.Message):
    __slots__ = ("status", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class GetVipRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class GetVipResponse(_message.Message):
    __slots__ = ("status", "vip_ip", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VIP_IP_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    vip_ip: IpAddress
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., vip_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class DeleteVipRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class DeleteVipResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CreateLoadBalancerRequest(_message.Message):
    __slots__ = ("loadbalancer_id", "loadbalanced_ip", "vni", "loadbalanced_ports", "preferred_underlay_route")
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    LOADBALANCED_IP_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    LOADBALANCED_PORTS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    loadbalanced_ip: IpAddress
    vni: int
    loadbalanced_ports: _containers.RepeatedCompositeFieldContainer[LbPort]
    preferred_underlay_route: bytes
    def __init__(self, loadbalancer_id: _Optional[bytes] = ..., loadbalanced_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., vni: _Optional[int] = ..., loadbalanced_ports: _Optional[_Iterable[_Union[LbPort, _Mapping]]] = ..., preferred_underlay_route: _Optional[bytes] = ...) -> None: ...

class CreateLoadBalancerResponse(_message.Message):
    __slots__ = ("status", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class GetLoadBalancerRequest(_message.Message):
    __slots__ = ("loadbalancer_id",)
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    def __init__(self, loadbalancer_id: _Optional[bytes] = ...) -> None: ...

class GetLoadBalancerResponse(_message.Message):
    __slots__ = ("status", "loadbalanced_ip", "vni", "loadbalanced_ports", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOADBALANCED_IP_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    LOADBALANCED_PORTS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    loadbalanced_ip: IpAddress
    vni: int
    loadbalanced_ports: _containers.RepeatedCompositeFieldContainer[LbPort]
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., loadbalanced_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., vni: _Optional[int] = ..., loadbalanced_ports: _Optional[_Iterable[_Union[LbPort, _Mapping]]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class DeleteLoadBalancerRequest(_message.Message):
    __slots__ = ("loadbalancer_id",)
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    def __init__(self, loadbalancer_id: _Optional[bytes] = ...) -> None: ...

class DeleteLoadBalancerResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListLoadBalancersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLoadBalancersResponse(_message.Message):
    __slots__ = ("status", "loadbalancers")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOADBALANCERS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    loadbalancers: _containers.RepeatedCompositeFieldContainer[Loadbalancer]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., loadbalancers: _Optional[_Iterable[_Union[Loadbalancer, _Mapping]]] = ...) -> None: ...

class CreateLoadBalancerTargetRequest(_message.Message):
    __slots__ = ("loadbalancer_id", "target_ip")
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_IP_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    target_ip: IpAddress
    def __init__(self, loadbalancer_id: _Optional[bytes] = ..., target_ip: _Optional[_Union[IpAddress, _Mapping]] = ...) -> None: ...

class CreateLoadBalancerTargetResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListLoadBalancerTargetsRequest(_message.Message):
    __slots__ = ("loadbalancer_id",)
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    def __init__(self, loadbalancer_id: _Optional[bytes] = ...) -> None: ...

class ListLoadBalancerTargetsResponse(_message.Message):
    __slots__ = ("status", "target_ips")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TARGET_IPS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    target_ips: _containers.RepeatedCompositeFieldContainer[IpAddress]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., target_ips: _Optional[_Iterable[_Union[IpAddress, _Mapping]]] = ...) -> None: ...

class DeleteLoadBalancerTargetRequest(_message.Message):
    __slots__ = ("loadbalancer_id", "target_ip")
    LOADBALANCER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_IP_FIELD_NUMBER: _ClassVar[int]
    loadbalancer_id: bytes
    target_ip: IpAddress
    def __init__(self, loadbalancer_id: _Optional[bytes] = ..., target_ip: _Optional[_Union[IpAddress, _Mapping]] = ...) -> None: ...

class DeleteLoadBalancerTargetResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CreateNatRequest(_message.Message):
    __slots__ = ("interface_id", "nat_ip", "min_port", "max_port", "preferred_underlay_route")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    MIN_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_PORT_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    nat_ip: IpAddress
    min_port: int
    max_port: int
    preferred_underlay_route: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., min_port: _Optional[int] = ..., max_port: _Optional[int] = ..., preferred_underlay_route: _Optional[bytes] = ...) -> None: ...

class CreateNatResponse(_message.Message):
    __slots__ = ("status", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class GetNatRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class GetNatResponse(_message.Message):
    __slots__ = ("status", "nat_ip", "min_port", "max_port", "underlay_route")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    MIN_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_PORT_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    nat_ip: IpAddress
    min_port: int
    max_port: int
    underlay_route: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., min_port: _Optional[int] = ..., max_port: _Optional[int] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class DeleteNatRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class DeleteNatResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CreateNeighborNatRequest(_message.Message):
    __slots__ = ("nat_ip", "vni", "min_port", "max_port", "underlay_route")
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    MIN_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_PORT_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    nat_ip: IpAddress
    vni: int
    min_port: int
    max_port: int
    underlay_route: bytes
    def __init__(self, nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., vni: _Optional[int] = ..., min_port: _Optional[int] = ..., max_port: _Optional[int] = ..., underlay_route: _Optional[bytes] = ...) -> None: ...

class CreateNeighborNatResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class DeleteNeighborNatRequest(_message.Message):
    __slots__ = ("nat_ip", "vni", "min_port", "max_port")
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    MIN_PORT_FIELD_NUMBER: _ClassVar[int]
    MAX_PORT_FIELD_NUMBER: _ClassVar[int]
    nat_ip: IpAddress
    vni: int
    min_port: int
    max_port: int
    def __init__(self, nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ..., vni: _Optional[int] = ..., min_port: _Optional[int] = ..., max_port: _Optional[int] = ...) -> None: ...

class DeleteNeighborNatResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListLocalNatsRequest(_message.Message):
    __slots__ = ("nat_ip",)
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    nat_ip: IpAddress
    def __init__(self, nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ...) -> None: ...

class ListLocalNatsResponse(_message.Message):
    __slots__ = ("status", "nat_entries")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NAT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    nat_entries: _containers.RepeatedCompositeFieldContainer[NatEntry]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., nat_entries: _Optional[_Iterable[_Union[NatEntry, _Mapping]]] = ...) -> None: ...

class ListNeighborNatsRequest(_message.Message):
    __slots__ = ("nat_ip",)
    NAT_IP_FIELD_NUMBER: _ClassVar[int]
    nat_ip: IpAddress
    def __init__(self, nat_ip: _Optional[_Union[IpAddress, _Mapping]] = ...) -> None: ...

class ListNeighborNatsResponse(_message.Message):
    __slots__ = ("status", "nat_entries")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NAT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    nat_entries: _containers.RepeatedCompositeFieldContainer[NatEntry]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., nat_entries: _Optional[_Iterable[_Union[NatEntry, _Mapping]]] = ...) -> None: ...

class ListRoutesRequest(_message.Message):
    __slots__ = ("vni",)
    VNI_FIELD_NUMBER: _ClassVar[int]
    vni: int
    def __init__(self, vni: _Optional[int] = ...) -> None: ...

class ListRoutesResponse(_message.Message):
    __slots__ = ("status", "routes")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class CreateRouteRequest(_message.Message):
    __slots__ = ("vni", "route")
    VNI_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    vni: int
    route: Route
    def __init__(self, vni: _Optional[int] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class CreateRouteResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class DeleteRouteRequest(_message.Message):
    __slots__ = ("vni", "route")
    VNI_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    vni: int
    route: Route
    def __init__(self, vni: _Optional[int] = ..., route: _Optional[_Union[Route, _Mapping]] = ...) -> None: ...

class DeleteRouteResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CheckVniInUseRequest(_message.Message):
    __slots__ = ("vni", "type")
    VNI_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    vni: int
    type: VniType
    def __init__(self, vni: _Optional[int] = ..., type: _Optional[_Union[VniType, str]] = ...) -> None: ...

class CheckVniInUseResponse(_message.Message):
    __slots__ = ("status", "in_use")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    in_use: bool
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., in_use: _Optional[bool] = ...) -> None: ...

class ResetVniRequest(_message.Message):
    __slots__ = ("vni", "type")
    VNI_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    vni: int
    type: VniType
    def __init__(self, vni: _Optional[int] = ..., type: _Optional[_Union[VniType, str]] = ...) -> None: ...

class ResetVniResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class ListFirewallRulesRequest(_message.Message):
    __slots__ = ("interface_id",)
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ...) -> None: ...

class ListFirewallRulesResponse(_message.Message):
    __slots__ = ("status", "rules")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    status: Status
    rules: _containers.RepeatedCompositeFieldContainer[FirewallRule]
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[FirewallRule, _Mapping]]] = ...) -> None: ...

class CreateFirewallRuleRequest(_message.Message):
    __slots__ = ("interface_id", "rule")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    rule: FirewallRule
    def __init__(self, interface_id: _Optional[bytes] = ..., rule: _Optional[_Union[FirewallRule, _Mapping]] = ...) -> None: ...

class CreateFirewallRuleResponse(_message.Message):
    __slots__ = ("status", "rule_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    status: Status
    rule_id: bytes
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., rule_id: _Optional[bytes] = ...) -> None: ...

class GetFirewallRuleRequest(_message.Message):
    __slots__ = ("interface_id", "rule_id")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    rule_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., rule_id: _Optional[bytes] = ...) -> None: ...

class GetFirewallRuleResponse(_message.Message):
    __slots__ = ("status", "rule")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    rule: FirewallRule
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., rule: _Optional[_Union[FirewallRule, _Mapping]] = ...) -> None: ...

class DeleteFirewallRuleRequest(_message.Message):
    __slots__ = ("interface_id", "rule_id")
    INTERFACE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    interface_id: bytes
    rule_id: bytes
    def __init__(self, interface_id: _Optional[bytes] = ..., rule_id: _Optional[bytes] = ...) -> None: ...

class DeleteFirewallRuleResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CaptureStartRequest(_message.Message):
    __slots__ = ("capture_config",)
    CAPTURE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    capture_config: CaptureConfig
    def __init__(self, capture_config: _Optional[_Union[CaptureConfig, _Mapping]] = ...) -> None: ...

class CaptureStartResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: Status
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ...) -> None: ...

class CaptureStopRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CaptureStopResponse(_message.Message):
    __slots__ = ("status", "stopped_interface_cnt")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_INTERFACE_CNT_FIELD_NUMBER: _ClassVar[int]
    status: Status
    stopped_interface_cnt: int
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., stopped_interface_cnt: _Optional[int] = ...) -> None: ...

class CaptureStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CaptureStatusResponse(_message.Message):
    __slots__ = ("status", "is_active", "capture_config")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    status: Status
    is_active: bool
    capture_config: CaptureConfig
    def __init__(self, status: _Optional[_Union[Status, _Mapping]] = ..., is_active: _Optional[bool] = ..., capture_config: _Optional[_Union[CaptureConfig, _Mapping]] = ...) -> None: ...
