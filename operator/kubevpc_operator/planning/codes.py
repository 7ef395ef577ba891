"""The agent's in-band status codes (dpservice's ``include/dp_error.h``) that planning reasons about."""

from enum import IntEnum


class Code(IntEnum):
    NOT_FOUND = 201
    ALREADY_EXISTS = 202
    BAD_IPVER = 204
    NO_VM = 205
    NO_VNI = 206
    ROUTE_EXISTS = 301
    ROUTE_NOT_FOUND = 302
    DNAT_EXISTS = 323
    SNAT_NO_DATA = 341
    SNAT_EXISTS = 343
    VNF_INSERT = 401
    VM_HANDLE = 402
    NO_LB = 422
    BACKIP_ADD = 423
    NO_DROP_SUPPORT = 441
