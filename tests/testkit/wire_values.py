"""Messages from the wire-contract cases' plain JSON values, shared by the golden-data generator
(hack/wire-golden.py, on dpservice's descriptor) and the contract test (on our stubs), so both
sides turn a case into a message the same way and only the descriptors differ.

Values: ``bytes`` fields hold ASCII text (dpservice puts addresses and ids on the wire as text),
enum fields hold the value's name, nested messages are dicts, repeated fields lists.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

Values = dict[str, Any]


def to_wire_value(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return value.encode("ascii")
    if field.enum_type is not None:
        return field.enum_type.values_by_name[value].number
    return value


def fill(message: Message, values: Values) -> Message:
    """Set ``values`` on ``message`` (recursively) and return it."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.is_repeated and field.message_type is not None:
            for item in value:
                fill(target.add(), item)
        elif field.is_repeated:
            target.extend(to_wire_value(field, item) for item in value)
        elif field.message_type is not None:
            target.SetInParent()
            fill(target, value)
        else:
            setattr(message, name, to_wire_value(field, value))
    return message
