"""dpservice's service error codes and the one exception type the tables raise.

The numbers and names are dpservice's (``include/dp_error.h``): they travel in-band in every
response's ``Status{code, message=NAME}``. Only ``api/`` turns a :class:`DpError` into that status.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Service error codes, value and name exactly as dpservice reports them."""

    OK = 0
    BAD_REQUEST = 101
    NOT_FOUND = 201
    ALREADY_EXISTS = 202
    WRONG_TYPE = 203
    BAD_IPVER = 204
    NO_VM = 205
    NO_VNI = 206
    ITERATOR = 207
    OUT_OF_MEMORY = 208
    LIMIT_REACHED = 209
    ALREADY_ACTIVE = 210
    NOT_ACTIVE = 211
    ROLLBACK = 212
    RTE_RULE_ADD = 213
    RTE_RULE_DEL = 214
    ROUTE_EXISTS = 301
    ROUTE_NOT_FOUND = 302
    ROUTE_INSERT = 303
    ROUTE_BAD_PORT = 304
    ROUTE_RESET = 305
    DNAT_NO_DATA = 321
    DNAT_CREATE = 322
    DNAT_EXISTS = 323
    SNAT_NO_DATA = 341
    SNAT_CREATE = 342
    SNAT_EXISTS = 343
    VNI_INIT4 = 361
    VNI_INIT6 = 362
    VNI_FREE4 = 363
    VNI_FREE6 = 364
    PORT_START = 381
    PORT_STOP = 382
    PORT_METER = 383
    VNF_INSERT = 401
    VM_HANDLE = 402
    VNF_DELETE = 403
    NO_BACKIP = 421
    NO_LB = 422
    BACKIP_ADD = 423
    BACKIP_DEL = 424
    NO_DROP_SUPPORT = 441

    @property
    def status_message(self) -> str:
        """The in-band message dpservice sends: ``"Success"`` or the bare code name."""
        return "Success" if self is ErrorCode.OK else self.name


class DpError(Exception):
    """A service error: the request was valid but the state does not allow it.

    Raised by table operations *before* they change anything (or after rolling back).
    """

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.name} ({int(code)}){': ' + detail if detail else ''}")
        self.code = code
        self.detail = detail
