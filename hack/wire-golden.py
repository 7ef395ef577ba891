"""Derive the wire-contract golden data from dpservice's own proto/dpdk.proto.

    python hack/wire-golden.py PATH/TO/dpservice/proto/dpdk.proto \
        [--source ironcore-dev/dpservice@<commit>] [--out tests/data/wire]

Writes two files that tests/contracts/test_wire_contract.py holds kubevpc's stubs to:

* dpservice_descriptor.json: service, methods, messages (every field's name, number, type, label,
  type_name, oneof, json_name) and enums of dpservice's proto.
* golden_requests.json: the messages in CASES below, serialized with dpservice's descriptor, as hex.

Only derived data is written. The proto is copied into a temp dir, compiled there into a
descriptor set, and loaded into a private descriptor pool; neither the proto nor code generated
from it is kept. Case values are plain JSON: `bytes` fields hold ASCII text (dpservice puts
addresses on the wire as text, e.g. "10.0.0.1"), enum fields hold the value name.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from testkit.wire_values import fill

Values = dict[str, Any]

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "wire"

# Addresses and names follow dpservice's test suite (DPSERVICE.md §6.3): VM1 "vm1" on net_tap2 in
# VNI 100, host underlay fc00:1::/64, neighbour host fc00:2::1. Preferred underlay addresses
# have the 0x80 "externally generated" flag in byte 10, as dpservice requires.
OK: Values = {"code": 0, "message": "Success"}
V4 = "IPV4"
V6 = "IPV6"


def ip(address: str) -> Values:
    return {"ipver": V6 if ":" in address else V4, "address": address}


def prefix(address: str, length: int) -> Values:
    return {"ip": ip(address), "length": length}


TCP_RULE: Values = {
    "id": "fw-egress-https",
    "direction": "EGRESS",
    "action": "ACCEPT",
    "priority": 1000,
    "source_prefix": prefix("10.100.1.1", 32),
    "destination_prefix": prefix("0.0.0.0", 0),
    "protocol_filter": {
        "tcp": {"src_port_lower": -1, "src_port_upper": -1, "dst_port_lower": 443, "dst_port_upper": 443}
    },
}
UDP_RULE: Values = {
    "id": "fw-ingress-dns",
    "direction": "INGRESS",
    "action": "ACCEPT",
    "priority": 100,
    "source_prefix": prefix("45.86.6.0", 24),
    "destination_prefix": prefix("10.100.1.1", 32),
    "protocol_filter": {
        "udp": {"src_port_lower": 1024, "src_port_upper": 65535, "dst_port_lower": 53, "dst_port_upper": 53}
    },
}
ICMP6_RULE: Values = {
    "id": "fw-ingress-ping6",
    "direction": "INGRESS",
    "action": "ACCEPT",
    "priority": 65535,
    "source_prefix": prefix("2001:db8::", 32),
    "destination_prefix": prefix("2000:100:1::1", 128),
    "protocol_filter": {"icmp": {"icmp_type": 128, "icmp_code": -1}},
}
CAPTURE: Values = {
    "sink_node_ip": ip("fc00:2::ffff"),
    "udp_src_port": 3000,
    "udp_dst_port": 3010,
    "interfaces": [
        {"interface_type": "SINGLE_VF", "filter": "udp", "vf_name": "vm1"},
        # pf_index 0 is a set oneof member: it goes on the wire although it is the zero value.
        {"interface_type": "SINGLE_PF", "pf_index": 0},
    ],
}

# (case id, message name, values). Every request message has at least one case; together the cases
# set every field of every message they reach to a non-default value (the test checks this).
CASES: list[tuple[str, str, Values]] = [
    ("check-initialized", "CheckInitializedRequest", {}),
    ("initialize", "InitializeRequest", {}),
    (
        "get-version",
        "GetVersionRequest",
        {"client_protocol": "v0.3.15", "client_name": "kubevpc-operator", "client_version": "0.1.0"},
    ),
    ("list-interfaces", "ListInterfacesRequest", {}),
    ("get-interface", "GetInterfaceRequest", {"interface_id": "vm1"}),
    (
        "create-interface-vm",
        "CreateInterfaceRequest",
        {
            "interface_id": "vm1",
            "vni": 100,
            "ipv4_config": {"primary_address": "10.100.1.1"},
            "ipv6_config": {"primary_address": "2000:100:1::1"},
            "pxe_config": {"next_server": "2001:dede::1", "boot_filename": "ipxe"},
            "device_name": "net_tap2",
            "metering_parameters": {"total_rate": 10000, "public_rate": 5000000000},
            "preferred_underlay_route": "fc00:1::8000:0:1",
            "hostname": "vm1-host",
        },
    ),
    (
        "create-interface-baremetal-ipv6-only",
        "CreateInterfaceRequest",
        {
            "interface_type": "BAREMETAL",
            "interface_id": "bm-0",
            "vni": 300,
            "ipv4_config": {"primary_address": "0.0.0.0"},
            "ipv6_config": {"primary_address": "2000:300:1::10"},
            "device_name": "0000:3b:00.0_representor_vf0",
        },
    ),
    ("delete-interface", "DeleteInterfaceRequest", {"interface_id": "vm1"}),
    ("list-prefixes", "ListPrefixesRequest", {"interface_id": "vm1"}),
    (
        "create-prefix",
        "CreatePrefixRequest",
        {
            "interface_id": "vm1",
            "prefix": prefix("10.100.3.0", 24),
            "preferred_underlay_route": "fc00:1::8000:0:2",
        },
    ),
    ("delete-prefix", "DeletePrefixRequest", {"interface_id": "vm1", "prefix": prefix("10.100.3.0", 24)}),
    ("list-lb-prefixes", "ListLoadBalancerPrefixesRequest", {"interface_id": "vm1"}),
    (
        "create-lb-prefix",
        "CreateLoadBalancerPrefixRequest",
        {
            "interface_id": "vm1",
            "prefix": prefix("2a10:defe:e01f:f4::2", 128),
            "preferred_underlay_route": "fc00:1::c000:0:2",
        },
    ),
    (
        "delete-lb-prefix",
        "DeleteLoadBalancerPrefixRequest",
        {"interface_id": "vm1", "prefix": prefix("2a10:defe:e01f:f4::2", 128)},
    ),
    (
        "create-vip",
        "CreateVipRequest",
        {
            "interface_id": "vm1",
            "vip_ip": ip("172.20.0.1"),
            "preferred_underlay_route": "fc00:1::8000:0:3",
        },
    ),
    ("get-vip", "GetVipRequest", {"interface_id": "vm1"}),
    ("delete-vip", "DeleteVipRequest", {"interface_id": "vm1"}),
    (
        "create-lb",
        "CreateLoadBalancerRequest",
        {
            "loadbalancer_id": "my_lb",
            "loadbalanced_ip": ip("172.22.2.1"),
            "vni": 100,
            "loadbalanced_ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
            "preferred_underlay_route": "fc00:1::8000:0:4",
        },
    ),
    ("get-lb", "GetLoadBalancerRequest", {"loadbalancer_id": "my_lb"}),
    ("delete-lb", "DeleteLoadBalancerRequest", {"loadbalancer_id": "my_lb"}),
    ("list-lbs", "ListLoadBalancersRequest", {}),
    (
        "create-lb-target",
        "CreateLoadBalancerTargetRequest",
        {"loadbalancer_id": "my_lb", "target_ip": ip("fc00:2::64:0:1")},
    ),
    ("list-lb-targets", "ListLoadBalancerTargetsRequest", {"loadbalancer_id": "my_lb"}),
    (
        "delete-lb-target",
        "DeleteLoadBalancerTargetRequest",
        {"loadbalancer_id": "my_lb", "target_ip": ip("fc00:2::64:0:1")},
    ),
    (
        "create-nat",
        "CreateNatRequest",
        {
            "interface_id": "vm1",
            "nat_ip": ip("172.21.1.1"),
            "min_port": 100,
            "max_port": 102,
            "preferred_underlay_route": "fc00:1::8000:0:5",
        },
    ),
    ("get-nat", "GetNatRequest", {"interface_id": "vm1"}),
    ("delete-nat", "DeleteNatRequest", {"interface_id": "vm1"}),
    ("list-local-nats", "ListLocalNatsRequest", {"nat_ip": ip("172.21.1.1")}),
    (
        "create-neighbor-nat",
        "CreateNeighborNatRequest",
        {
            "nat_ip": ip("172.21.1.1"),
            "vni": 100,
            "min_port": 500,
            "max_port": 520,
            "underlay_route": "fc00:2::64:0:1",
        },
    ),
    (
        "delete-neighbor-nat",
        "DeleteNeighborNatRequest",
        {"nat_ip": ip("172.21.1.1"), "vni": 100, "min_port": 500, "max_port": 520},
    ),
    ("list-neighbor-nats-all", "ListNeighborNatsRequest", {"nat_ip": ip("0.0.0.0")}),
    ("list-routes", "ListRoutesRequest", {"vni": 100}),
    (
        "create-route-ipv4",
        "CreateRouteRequest",
        {
            "vni": 100,
            "route": {
                "prefix": prefix("10.100.2.0", 24),
                "nexthop_vni": 100,
                "nexthop_address": ip("fc00:2::1"),
                "weight": 100,
            },
        },
    ),
    (
        "create-route-ipv6",
        "CreateRouteRequest",
        {
            "vni": 100,
            "route": {
                "prefix": prefix("2000:100:2::", 104),
                "nexthop_vni": 200,
                "nexthop_address": ip("fc00:2::1"),
            },
        },
    ),
    ("delete-route", "DeleteRouteRequest", {"vni": 100, "route": {"prefix": prefix("10.100.2.0", 24)}}),
    ("check-vni-in-use", "CheckVniInUseRequest", {"vni": 200, "type": "VNI_IPV6"}),
    ("reset-vni", "ResetVniRequest", {"vni": 100, "type": "VNI_BOTH"}),
    ("list-fw-rules", "ListFirewallRulesRequest", {"interface_id": "vm1"}),
    ("create-fw-rule-tcp", "CreateFirewallRuleRequest", {"interface_id": "vm1", "rule": TCP_RULE}),
    ("create-fw-rule-udp", "CreateFirewallRuleRequest", {"interface_id": "vm1", "rule": UDP_RULE}),
    ("create-fw-rule-icmp6", "CreateFirewallRuleRequest", {"interface_id": "vm1", "rule": ICMP6_RULE}),
    ("get-fw-rule", "GetFirewallRuleRequest", {"interface_id": "vm1", "rule_id": "fw-egress-https"}),
    ("delete-fw-rule", "DeleteFirewallRuleRequest", {"interface_id": "vm1", "rule_id": "fw-egress-https"}),
    ("capture-start", "CaptureStartRequest", {"capture_config": CAPTURE}),
    ("capture-stop", "CaptureStopRequest", {}),
    ("capture-status", "CaptureStatusRequest", {}),
    # Replies: the shapes clients parse, including types that only replies carry.
    (
        "reply-check-initialized",
        "CheckInitializedResponse",
        {"status": OK, "uuid": "4C3E4F1E-7E1A-4B8C-9C39-2F1D0A6B5E21"},
    ),
    (
        "reply-get-version",
        "GetVersionResponse",
        {"status": OK, "service_protocol": "v0.3.15-19-g41304c6", "service_version": "v0.3.15-19-g41304c6"},
    ),
    (
        "reply-create-interface",
        "CreateInterfaceResponse",
        {
            "status": OK,
            "underlay_route": "fc00:1::d000:2a:0:5",
            "vf": {"name": "dtapvf_0", "domain": 1, "bus": 59, "slot": 2, "function": 3},
        },
    ),
    (
        "reply-get-interface",
        "GetInterfaceResponse",
        {
            "status": OK,
            "interface": {
                "id": "vm1",
                "vni": 100,
                "primary_ipv4": "10.100.1.1",
                "primary_ipv6": "2000:100:1::1",
                "underlay_route": "fc00:1::d000:2a:0:5",
                "pci_name": "net_tap2",
                "meteringParams": {"total_rate": 10000, "public_rate": 5000000000},
                "hostname": "vm1-host",
            },
        },
    ),
    ("reply-create-vip", "CreateVipResponse", {"status": OK, "underlay_route": "fc00:1::8000:0:3"}),
    ("reply-error-no-vm", "CreateVipResponse", {"status": {"code": 205, "message": "NO_VM"}}),
    ("reply-error-not-found", "DeleteInterfaceResponse", {"status": {"code": 201, "message": "NOT_FOUND"}}),
    (
        "reply-list-prefixes",
        "ListPrefixesResponse",
        {
            "status": OK,
            "prefixes": [{**prefix("10.100.3.0", 24), "underlay_route": "fc00:1::d000:2a:0:6"}],
        },
    ),
    (
        "reply-get-vip",
        "GetVipResponse",
        {"status": OK, "vip_ip": ip("172.20.0.1"), "underlay_route": "fc00:1::d000:2a:0:7"},
    ),
    (
        "reply-get-lb",
        "GetLoadBalancerResponse",
        {
            "status": OK,
            "loadbalanced_ip": ip("172.22.2.1"),
            "vni": 100,
            "loadbalanced_ports": [{"port": 80, "protocol": "TCP"}],
            "underlay_route": "fc00:1::d000:2a:0:8",
        },
    ),
    (
        "reply-list-lbs",
        "ListLoadBalancersResponse",
        {
            "status": OK,
            "loadbalancers": [
                {
                    "id": "my_lb",
                    "vni": 100,
                    "ip": ip("2a10:defe:e01f:f4::2"),
                    "ports": [{"port": 443, "protocol": "TCP"}, {"port": 443, "protocol": "UDP"}],
                    "underlay_route": "fc00:1::d000:2a:0:9",
                }
            ],
        },
    ),
    (
        "reply-list-lb-targets",
        "ListLoadBalancerTargetsResponse",
        {"status": OK, "target_ips": [ip("fc00:2::64:0:1"), ip("fc00:3::64:0:1")]},
    ),
    (
        "reply-get-nat",
        "GetNatResponse",
        {
            "status": OK,
            "nat_ip": ip("172.21.1.1"),
            "min_port": 100,
            "max_port": 102,
            "underlay_route": "fc00:1::d000:2a:0:a",
        },
    ),
    (
        "reply-list-local-nats",
        "ListLocalNatsResponse",
        {
            "status": OK,
            "nat_entries": [
                {
                    "nat_ip": ip("10.100.1.2"),
                    "min_port": 100,
                    "max_port": 101,
                    "vni": 100,
                    "actual_nat_ip": ip("172.21.1.1"),
                }
            ],
        },
    ),
    (
        "reply-list-neighbor-nats",
        "ListNeighborNatsResponse",
        {
            "status": OK,
            "nat_entries": [
                {
                    "min_port": 500,
                    "max_port": 520,
                    "vni": 100,
                    "underlay_route": "fc00:2::64:0:1",
                    "actual_nat_ip": ip("172.21.1.1"),
                }
            ],
        },
    ),
    (
        "reply-list-routes",
        "ListRoutesResponse",
        {
            "status": OK,
            "routes": [
                {"prefix": prefix("10.100.2.0", 24), "nexthop_vni": 100, "nexthop_address": ip("fc00:2::1")}
            ],
        },
    ),
    ("reply-check-vni-in-use", "CheckVniInUseResponse", {"status": OK, "in_use": True}),
    ("reply-create-fw-rule", "CreateFirewallRuleResponse", {"status": OK, "rule_id": "fw-egress-https"}),
    (
        "reply-list-fw-rules",
        "ListFirewallRulesResponse",
        {"status": OK, "rules": [TCP_RULE, UDP_RULE, ICMP6_RULE]},
    ),
    ("reply-capture-stop", "CaptureStopResponse", {"status": OK, "stopped_interface_cnt": 2}),
    (
        "reply-capture-status",
        "CaptureStatusResponse",
        {"status": OK, "is_active": True, "capture_config": CAPTURE},
    ),
]


def compile_descriptor(proto: Path) -> descriptor_pb2.FileDescriptorProto:
    """Compile `proto` in a temp dir and return its FileDescriptorProto."""
    with tempfile.TemporaryDirectory(prefix="wire-golden-") as tmp:
        work = Path(tmp)
        shutil.copyfile(proto, work / proto.name)
        out = work / "descriptor_set.pb"
        args = ["protoc", f"--proto_path={work}", f"--descriptor_set_out={out}", str(work / proto.name)]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    if len(files) != 1:
        raise SystemExit(f"expected one file in the descriptor set, got {len(files)}")
    return files[0]


def summarize_fields(message: descriptor_pb2.DescriptorProto) -> list[Values]:
    fields = []
    for field in sorted(message.field, key=lambda f: f.number):
        oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
        fields.append(
            {
                "number": field.number,
                "name": field.name,
                "type": descriptor_pb2.FieldDescriptorProto.Type.Name(field.type),
                "label": descriptor_pb2.FieldDescriptorProto.Label.Name(field.label),
                "type_name": field.type_name,
                "oneof": oneof,
                "json_name": field.json_name,
            }
        )
    return fields


def summarize(file: descriptor_pb2.FileDescriptorProto) -> Values:
    """Everything about the file that a peer's encoder, decoder or gRPC router depends on."""
    messages: Values = {}
    enums: Values = {}

    def add_enum(enum: descriptor_pb2.EnumDescriptorProto, scope: str) -> None:
        enums[scope + enum.name] = {value.name: value.number for value in enum.value}

    def add_message(message: descriptor_pb2.DescriptorProto, scope: str) -> None:
        name = scope + message.name
        messages[name] = summarize_fields(message)
        for nested in message.nested_type:
            add_message(nested, name + ".")
        for enum in message.enum_type:
            add_enum(enum, name + ".")

    for message in file.message_type:
        add_message(message, "")
    for enum in file.enum_type:
        add_enum(enum, "")
    services = {
        service.name: {
            method.name: {
                "input_type": method.input_type,
                "output_type": method.output_type,
                "client_streaming": method.client_streaming,
                "server_streaming": method.server_streaming,
            }
            for method in service.method
        }
        for service in file.service
    }
    return {
        "package": file.package,
        "syntax": file.syntax,
        "services": services,
        "messages": messages,
        "enums": enums,
    }


def build_golden(file: descriptor_pb2.FileDescriptorProto) -> list[Values]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    cases = []
    for case_id, message_name, values in CASES:
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{message_name}"))
        message = fill(cls(), values)
        wire = message.SerializeToString()
        if cls.FromString(wire) != message:
            raise SystemExit(f"{case_id}: does not survive a round trip")
        cases.append({"id": case_id, "message": message_name, "values": values, "hex": wire.hex()})
    return cases


def write_json(path: Path, data: Values) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("proto", type=Path, help="path to dpservice's proto/dpdk.proto")
    parser.add_argument(
        "--source",
        default="ironcore-dev/dpservice proto/dpdk.proto",
        help="where the proto came from, recorded in the output",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output dir (default: %(default)s)")
    args = parser.parse_args(argv)

    file = compile_descriptor(args.proto)
    source = {"proto": args.source, "sha256": hashlib.sha256(args.proto.read_bytes()).hexdigest()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "dpservice_descriptor.json", {"source": source, "descriptor": summarize(file)})
    write_json(
        args.out / "golden_requests.json",
        {
            "source": source,
            "encoding": "values: bytes fields as ASCII text, enum fields by value name; "
            "hex: the message serialized with dpservice's descriptor",
            "cases": build_golden(file),
        },
    )


if __name__ == "__main__":
    main(sys.argv[1:])
