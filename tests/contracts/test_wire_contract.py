"""kubevpc's generated stubs speak exactly dpservice's wire contract.

The reference is data that hack/wire-golden.py derived from dpservice's own proto/dpdk.proto
(tests/data/wire/): a summary of its descriptor, and messages serialized with it. Two checks:

* descriptor: our runtime descriptors (what the committed stubs register) have the same package,
  service, method paths and types, messages, fields (name, number, type, label, type name, oneof,
  JSON name) and enum values. A changed number or type fails here even where the bytes would not
  show it (int32 vs uint32 for positive values, bytes vs string).
* golden bytes: our stubs build every case from the same JSON values into the same bytes, and
  parse dpservice's bytes back into the same message. The cases cover every request, and together
  set every field of every message they reach, so a field that moved shows up as a byte diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from google.protobuf.descriptor_pb2 import FieldDescriptorProto, FileDescriptorProto
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from dpdkironcore.v1 import dpdk_pb2, dpdk_pb2_grpc
from testkit.wire_values import fill

WIRE_DATA = Path(__file__).resolve().parents[1] / "data" / "wire"
DPSERVICE = json.loads((WIRE_DATA / "dpservice_descriptor.json").read_text())["descriptor"]
GOLDEN = json.loads((WIRE_DATA / "golden_requests.json").read_text())["cases"]
SERVICE = "DPDKironcore"
PACKAGE = "dpdkironcore.v1"

Values = dict[str, Any]
TYPE_NAMES = {v.number: v.name for v in FieldDescriptorProto.DESCRIPTOR.enum_types_by_name["Type"].values}


# ---- our side, read from the runtime descriptors of the committed stubs ----


def iter_messages(file: FileDescriptor) -> Iterator[tuple[str, Descriptor]]:
    """Yield (name relative to the package, descriptor) for every message, nested ones included."""
    stack = [(d.name, d) for d in file.message_types_by_name.values()]
    while stack:
        name, descriptor = stack.pop()
        yield name, descriptor
        stack.extend((f"{name}.{nested.name}", nested) for nested in descriptor.nested_types)


def field_summary(field: FieldDescriptor) -> Values:
    referenced = field.message_type or field.enum_type
    return {
        "number": field.number,
        "name": field.name,
        "type": TYPE_NAMES[field.type],
        "label": "LABEL_REPEATED" if field.is_repeated else "LABEL_OPTIONAL",
        "type_name": f".{referenced.full_name}" if referenced is not None else "",
        "oneof": field.containing_oneof.name if field.containing_oneof is not None else None,
        "json_name": field.json_name,
    }


def summarize_ours(file: FileDescriptor) -> Values:
    enums = {name: {v.name: v.number for v in enum.values} for name, enum in file.enum_types_by_name.items()}
    messages: Values = {}
    for name, descriptor in iter_messages(file):
        messages[name] = [field_summary(f) for f in sorted(descriptor.fields, key=lambda f: f.number)]
        for enum in descriptor.enum_types:
            enums[f"{name}.{enum.name}"] = {v.name: v.number for v in enum.values}
    services = {
        service.name: {
            method.name: {
                "input_type": f".{method.input_type.full_name}",
                "output_type": f".{method.output_type.full_name}",
                "client_streaming": method.client_streaming,
                "server_streaming": method.server_streaming,
            }
            for method in service.methods
        }
        for service in file.services_by_name.values()
    }
    return {
        "package": file.package,
        "syntax": FileDescriptorProto.FromString(file.serialized_pb).syntax,
        "services": services,
        "messages": messages,
        "enums": enums,
    }


OURS = summarize_ours(dpdk_pb2.DESCRIPTOR)


# ---- descriptor comparison ----


def test_package_and_syntax_match() -> None:
    assert (
        (OURS["package"], OURS["syntax"])
        == (DPSERVICE["package"], DPSERVICE["syntax"])
        == (
            PACKAGE,
            "proto3",
        )
    )


def test_service_has_every_method_with_the_same_types() -> None:
    assert OURS["services"].keys() == DPSERVICE["services"].keys() == {SERVICE}
    ours, theirs = OURS["services"][SERVICE], DPSERVICE["services"][SERVICE]
    assert sorted(ours) == sorted(theirs)
    for method, signature in theirs.items():
        assert ours[method] == signature, method


def test_same_message_and_enum_names() -> None:
    assert sorted(OURS["messages"]) == sorted(DPSERVICE["messages"])
    assert sorted(OURS["enums"]) == sorted(DPSERVICE["enums"])


@pytest.mark.parametrize("message", sorted(DPSERVICE["messages"]))
def test_message_fields_match(message: str) -> None:
    ours = {f["number"]: f for f in OURS["messages"].get(message, [])}
    theirs = {f["number"]: f for f in DPSERVICE["messages"][message]}
    assert sorted(ours) == sorted(theirs), f"{message}: field numbers differ"
    for number, field in theirs.items():
        assert ours[number] == field, f"{message} field {number}"


@pytest.mark.parametrize("enum", sorted(DPSERVICE["enums"]))
def test_enum_values_match(enum: str) -> None:
    assert OURS["enums"].get(enum) == DPSERVICE["enums"][enum]


class RecordingChannel:
    """Stands in for grpc.Channel: records the method paths a stub registers."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def unary_unary(self, path: str, *args: Any, **kwargs: Any) -> object:
        self.paths.append(path)
        return object()


def test_client_stub_calls_dpservice_method_paths() -> None:
    channel = RecordingChannel()
    dpdk_pb2_grpc.DPDKironcoreStub(channel)
    expected = {f"/{PACKAGE}.{SERVICE}/{method}" for method in DPSERVICE["services"][SERVICE]}
    assert sorted(channel.paths) == sorted(expected)


def test_servicer_base_has_every_method() -> None:
    servicer = dpdk_pb2_grpc.DPDKironcoreServicer
    assert [m for m in DPSERVICE["services"][SERVICE] if not hasattr(servicer, m)] == []


# ---- golden bytes ----


def unknown_fields_in(message: Message) -> Iterator[int]:
    """Yield the field numbers the parser could not map, in `message` and everything it contains."""
    unknown = UnknownFieldSet(message)
    yield from (unknown[i].field_number for i in range(len(unknown)))
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                yield from unknown_fields_in(item)


def build_case(case: Values) -> Message:
    return fill(getattr(dpdk_pb2, case["message"])(), case["values"])


@pytest.mark.parametrize("case", GOLDEN, ids=[c["id"] for c in GOLDEN])
def test_our_stubs_serialize_golden_bytes(case: Values) -> None:
    assert build_case(case).SerializeToString().hex() == case["hex"]


@pytest.mark.parametrize("case", GOLDEN, ids=[c["id"] for c in GOLDEN])
def test_our_stubs_parse_golden_bytes(case: Values) -> None:
    cls = getattr(dpdk_pb2, case["message"])
    parsed = cls.FromString(bytes.fromhex(case["hex"]))
    assert parsed == build_case(case)
    assert list(unknown_fields_in(parsed)) == [], "dpservice's bytes carry fields our proto does not know"


def golden_message(case_id: str) -> Any:
    case = next(c for c in GOLDEN if c["id"] == case_id)
    return getattr(dpdk_pb2, case["message"]).FromString(bytes.fromhex(case["hex"]))


def test_golden_addresses_are_ascii_text() -> None:
    vip = golden_message("create-vip")
    assert vip.vip_ip == dpdk_pb2.IpAddress(ipver=dpdk_pb2.IPV4, address=b"172.20.0.1")
    assert vip.preferred_underlay_route == b"fc00:1::8000:0:3"
    target = golden_message("create-lb-target")
    assert target.target_ip == dpdk_pb2.IpAddress(ipver=dpdk_pb2.IPV6, address=b"fc00:2::64:0:1")


def test_golden_cases_cover_every_request() -> None:
    requests = {sig["input_type"].rsplit(".", 1)[1] for sig in DPSERVICE["services"][SERVICE].values()}
    assert requests - {c["message"] for c in GOLDEN} == set()


def set_fields(message: Message) -> Iterator[str]:
    """Yield 'Message.field' for every field set to a non-default value, recursively."""
    for field, value in message.ListFields():
        yield f"{message.DESCRIPTOR.name}.{field.name}"
        if field.message_type is None:
            continue
        for item in value if field.is_repeated else [value]:
            yield from set_fields(item)


def test_golden_cases_set_every_field_somewhere() -> None:
    covered = {name for case in GOLDEN for name in set_fields(build_case(case))}
    used_messages = {c["message"] for c in GOLDEN}
    # every field of every request and shared type, and of each reply that has a case
    required = {
        f"{message}.{field['name']}"
        for message, fields in DPSERVICE["messages"].items()
        if not message.endswith("Response") or message in used_messages
        for field in fields
    }
    assert sorted(required - covered) == []
