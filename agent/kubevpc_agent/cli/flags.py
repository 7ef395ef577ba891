"""Flag parsing with dpservice-cli's (cobra/pflag) syntax and error texts.

``--name=value``, ``--name value``, ``-o json``/``-ojson``; unknown flags, missing values and bad
values fail with pflag's wording (``invalid argument "xxx" for "--vip" flag: ParseAddr("xxx"):
unable to parse IP``), which dpservice's test harness compares verbatim. Addresses and prefixes
follow Go's ``netip`` parsers: prefixes keep their host bits (``1.2.3.4/16`` stays as written).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from kubevpc_agent.tables.model import IPAddress


class ClientError(Exception):
    """A mistake on the command line or in the client (dpservice-cli's "client" errors, #1000)."""


@dataclass(frozen=True)
class Prefix:
    """A prefix as Go's ``netip.Prefix``: address as written plus length."""

    ip: IPAddress
    length: int

    def __str__(self) -> str:
        return f"{go_addr(self.ip)}/{self.length}"


def go_addr(addr: IPAddress) -> str:
    """Go's ``netip.Addr.String()`` (RFC 5952; IPv4-mapped IPv6 keeps its dotted tail)."""
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return f"::ffff:{addr.ipv4_mapped}"
    return str(addr)


def parse_addr(text: str) -> IPAddress:
    """``netip.ParseAddr``; raises ValueError with Go's message."""
    s = text.strip()
    if not s:
        raise ValueError('ParseAddr(""): unable to parse IP')
    if "%" in s:
        raise ValueError(f'ParseAddr("{s}"): zones are not supported here')
    try:
        return ip_address(s)
    except ValueError:
        pass
    if ":" in s:
        raise ValueError(f'ParseAddr("{s}"): invalid IPv6 address') from None
    if "." in s:
        fields = s.split(".")
        if len(fields) < 4:
            reason = "IPv4 address too short"
        elif len(fields) > 4:
            reason = "IPv4 address too long"
        elif any(not f.isdigit() for f in fields):
            reason = "unexpected character"
        elif any(len(f) > 1 and f[0] == "0" for f in fields):
            reason = "IPv4 field has octet with leading zero"
        else:
            reason = "IPv4 field has value >255"
        raise ValueError(f'ParseAddr("{s}"): {reason}') from None
    raise ValueError(f'ParseAddr("{s}"): unable to parse IP') from None


def parse_prefix(text: str) -> Prefix:
    """``netip.ParsePrefix``; raises ValueError with Go's message."""
    s = text.strip()
    addr_text, slash, bits_text = s.partition("/")
    if not slash:
        raise ValueError(f"netip.ParsePrefix(\"{s}\"): no '/'")
    try:
        addr = parse_addr(addr_text)
    except ValueError as exc:
        raise ValueError(f'netip.ParsePrefix("{s}"): {exc}') from None
    if not re.fullmatch(r"\d+", bits_text) or (len(bits_text) > 1 and bits_text[0] == "0"):
        raise ValueError(f'netip.ParsePrefix("{s}"): bad bits after slash: "{bits_text}"')
    bits = int(bits_text)
    if bits > addr.max_prefixlen:
        raise ValueError(f'netip.ParsePrefix("{s}"): prefix length out of range')
    return Prefix(addr, bits)


def _uint(bits: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\d+", text):
            raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
        value = int(text)
        if value >= 1 << bits:
            raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
        return value

    return parse


def _int32(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(1 << 31) <= value < 1 << 31:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def _bool(text: str) -> bool:
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "uint8": _uint(8),
    "uint32": _uint(32),
    "uint64": _uint(64),
    "int32": _int32,
    "bool": _bool,
    "ip": parse_addr,
    "prefix": parse_prefix,
    "strings": lambda text: [p for p in text.split(",") if p],
}


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str  # a key of PARSERS
    default: Any = None
    required: bool = False
    short: str = ""


@dataclass
class ParsedArgs:
    """Positional words and raw flag values (last occurrence wins; ``strings`` accumulate)."""

    words: list[str] = field(default_factory=list)
    raw: dict[str, list[str]] = field(default_factory=dict)


BOOL_FLAGS = {"pretty", "wide", "help", "version"}  # the only flags that take no value
SHORT = {"o": "output", "w": "wide", "h": "help", "v": "version"}


def split_args(argv: Sequence[str]) -> ParsedArgs:
    """Separate words from flags; flags are checked once the command is known."""
    out = ParsedArgs()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.words.extend(argv[i + 1 :])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1:
            short = arg[1]
            if short not in SHORT:
                raise ClientError(f"unknown shorthand flag: '{short}' in {arg}")
            name = SHORT[short]
            rest = arg[2:]
            eq, value = ("=", rest.removeprefix("=")) if rest else ("", "")
        else:
            out.words.append(arg)
            i += 1
            continue
        if not eq:
            if name in BOOL_FLAGS:
                value = "true"
            else:
                i += 1
                if i >= len(argv):
                    raise ClientError(f"flag needs an argument: --{name}")
                value = argv[i]
        out.raw.setdefault(name, []).append(value)
        i += 1
    return out


def bind(flags: Sequence[Flag], raw: dict[str, list[str]]) -> dict[str, Any]:
    """Typed values of ``flags`` from ``raw``: defaults, pflag's errors, cobra's required check."""
    known = {f.name: f for f in flags}
    for name in raw:
        if name not in known:
            raise ClientError(f"unknown flag: --{name}")
    values: dict[str, Any] = {}
    missing = []
    for f in flags:
        texts = raw.get(f.name)
        if not texts:
            if f.required:
                missing.append(f.name)
            values[f.name] = f.default
            continue
        parse = PARSERS[f.kind]
        try:
            if f.kind == "strings":
                values[f.name] = [v for t in texts for v in parse(t)]
            else:
                values[f.name] = parse(texts[-1])
        except ValueError as exc:
            raise ClientError(f'invalid argument "{texts[-1]}" for "--{f.name}" flag: {exc}') from None
    if missing:
        names = ", ".join(f'"{n}"' for n in sorted(missing))
        raise ClientError(f"required flag(s) {names} not set")
    return values


def given(raw: dict[str, list[str]], name: str) -> bool:
    return bool(raw.get(name))


ZERO_V4 = IPv4Address(0)
ZERO_V6 = IPv6Address(0)
