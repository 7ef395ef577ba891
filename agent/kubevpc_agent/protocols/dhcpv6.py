"""DHCPv6 messages and options (RFC 8415 §8, §21; DNS RFC 3646; boot file URL RFC 5970).

Client/server message::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    msg-type   |               transaction-id                  |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                            options (variable)                 |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Every option is ``option-code (2), option-len (2), option-data``. IA_NA (§21.4) holds
``IAID (4), T1 (4), T2 (4)`` then sub-options, among them IAADDR (§21.6): ``address (16),
preferred-lifetime (4), valid-lifetime (4)`` then its own sub-options (a Status Code, §21.13:
``status-code (2), status-message``). A DUID-LL (§11.4) is ``type 3 (2), hardware type (2),
link-layer address``.
"""

from __future__ import annotations

import struct
from enum import IntEnum

HEADER = struct.Struct("!B3s")  # msg-type, transaction-id
HEADER_LEN = HEADER.size  # 4 bytes
OPTION = struct.Struct("!HH")  # option-code, option-len
IA_NA_FIXED = struct.Struct("!III")  # IAID, T1, T2
IA_NA_FIXED_LEN = IA_NA_FIXED.size  # 12 bytes
IAADDR_FIXED = struct.Struct("!16sII")  # address, preferred lifetime, valid lifetime
INFINITY = 0xFFFFFFFF  # lifetimes and T1/T2: never expires (RFC 8415 §7.7)


class MessageType(IntEnum):
    """RFC 8415 §7.3."""

    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11


class OptionCode(IntEnum):
    """The DHCPv6 options the agent reads or writes."""

    CLIENTID = 1  # RFC 8415 §21.2
    SERVERID = 2  # §21.3
    IA_NA = 3  # §21.4
    IAADDR = 5  # §21.6
    ORO = 6  # §21.7
    ELAPSED_TIME = 8  # §21.9
    STATUS_CODE = 13  # §21.13
    RAPID_COMMIT = 14  # §21.14
    USER_CLASS = 15  # §21.15
    VENDOR_CLASS = 16  # §21.16
    DNS_SERVERS = 23  # RFC 3646 §3
    BOOTFILE_URL = 59  # RFC 5970 §3.1


class StatusCode(IntEnum):
    """RFC 8415 §21.13."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5


class DuidType(IntEnum):
    """RFC 8415 §11.1."""

    LLT = 1
    EN = 2
    LL = 3
    UUID = 4


def parse_options(data: bytes | bytearray | memoryview) -> list[tuple[int, bytes]] | None:
    """Every option in ``data`` as ``(code, value)``; None if an option header or value overruns."""
    raw = bytes(data)
    out: list[tuple[int, bytes]] = []
    i, n = 0, len(raw)
    while i < n:
        if i + OPTION.size > n:
            return None
        code, length = OPTION.unpack_from(raw, i)
        i += OPTION.size
        if i + length > n:
            return None
        out.append((code, raw[i : i + length]))
        i += length
    return out


def build_option(code: OptionCode, value: bytes = b"") -> bytes:
    """One option: code, length, value."""
    return OPTION.pack(code, len(value)) + value


def build_status_code(status: StatusCode, message: bytes = b"") -> bytes:
    """A Status Code option."""
    return build_option(OptionCode.STATUS_CODE, status.to_bytes(2, "big") + message)


def build_duid_ll(hardware_type: int, link_layer_address: bytes) -> bytes:
    """A DUID-LL (the value of a Client or Server Identifier option)."""
    return struct.pack("!HH", DuidType.LL, hardware_type) + link_layer_address


def build_ia_na(iaid: int, t1: int, t2: int, sub_options: bytes) -> bytes:
    """An IA_NA option."""
    return build_option(OptionCode.IA_NA, IA_NA_FIXED.pack(iaid, t1, t2) + sub_options)


def build_iaaddr(address: bytes, preferred: int, valid: int, sub_options: bytes) -> bytes:
    """An IA Address option."""
    return build_option(OptionCode.IAADDR, IAADDR_FIXED.pack(address, preferred, valid) + sub_options)


def first_user_class(value: bytes) -> bytes | None:
    """The first ``user-class-data`` entry of a User Class option value (each: length (2), data)."""
    if len(value) < 2:
        return None
    length = int.from_bytes(value[:2], "big")
    return value[2 : 2 + length] if 2 + length <= len(value) else None


def vendor_class_data(value: bytes) -> bytes:
    """The bytes after the enterprise number of a Vendor Class option value (all entries)."""
    return value[4:]
