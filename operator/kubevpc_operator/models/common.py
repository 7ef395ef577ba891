"""Shared pieces of the models: object identity, label selectors, IP parsing, readable spec errors.

Every model is a ``Resource``, built by ``from_body`` through a ``BodyReader``. The reader collects
*all* problems of a body before failing, so a user sees every mistake in one condition message, and
it records every field path it reads, so a contract test can check those paths against the CRD
schemas.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SpecError(ValueError):
    """A custom resource that cannot be programmed as written; ``problems`` are (path, message)."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.problems))


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Namespace and name; references between our objects stay inside one namespace."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Meta:
    """The metadata every model carries."""

    uid: str
    namespace: str
    name: str
    generation: int
    labels: Mapping[str, str]
    created: str  # creationTimestamp (RFC 3339): older objects win conflicts
    deleting: bool  # deletionTimestamp is set

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.namespace, self.name)


_SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        # Kubernetes semantics: NotIn and DoesNotExist also match objects without the key.
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector; the empty selector matches everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels):
            return False
        return all(req.matches(labels) for req in self.match_expressions)


_ID_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")


def is_agent_id(text: str) -> bool:
    """Whether ``text`` is usable as an agent object id: 1..63 characters of [A-Za-z0-9_-]."""
    return 0 < len(text) < 64 and _ID_CHARS.match(text) is not None


@dataclass
class BodyReader:
    """Typed, path-aware access to a custom resource body that collects problems."""

    body: Mapping[str, Any]
    problems: list[tuple[str, str]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)  # every field path read, list indices as "[]"

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def raise_if_failed(self) -> None:
        if self.problems:
            raise SpecError(self.problems)

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path such as ``spec.vpcRef.name``; list items as ``a[2].b``."""
        self.paths.add(re.sub(r"\[\d+\]", "[]", path))
        node: Any = self.body
        for part in _split_path(path):
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return default
                node = node[part]
            else:
                if not isinstance(node, Mapping) or part not in node:
                    return default
                node = node[part]
        return default if node is None else node

    def string(self, path: str, *, required: bool = False, default: str = "") -> str:
        value = self.get(path)
        if value is None or value == "":
            if required:
                self.fail(path, "required")
            return default
        if not isinstance(value, str):
            self.fail(path, f"must be a string, not {type(value).__name__}")
            return default
        return value

    def integer(
        self, path: str, *, default: int | None = None, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, not {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.fail(path, f"{value} is below the minimum {minimum}")
            return default
        if maximum is not None and value > maximum:
            self.fail(path, f"{value} is above the maximum {maximum}")
            return default
        return value

    def items(self, path: str) -> Iterator[tuple[int, str]]:
        """``(index, item path)`` for every element of the list at ``path`` (none when unset)."""
        value = self.get(path)
        if value is None:
            return
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return
        for index in range(len(value)):
            yield index, f"{path}[{index}]"

    def ip(self, path: str, *, required: bool = False) -> IPAddress | None:
        text = self.string(path, required=required)
        if not text:
            return None
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            self.fail(path, f"{text!r} is not an IP address")
            return None

    def prefix(self, path: str, *, required: bool = False) -> IPNetwork | None:
        text = self.string(path, required=required)
        if not text:
            return None
        return parse_prefix(text, path, self)

    def selector(self, path: str) -> LabelSelector | None:
        """The label selector at ``path``; None when the field is absent."""
        if self.get(path) is None:
            return None
        labels: list[tuple[str, str]] = []
        raw_labels = self.get(f"{path}.matchLabels", {})
        if not isinstance(raw_labels, Mapping):
            self.fail(f"{path}.matchLabels", "must be a map of strings")
        else:
            for key, value in sorted(raw_labels.items()):
                labels.append((str(key), str(value)))
        requirements: list[Requirement] = []
        for _, item in self.items(f"{path}.matchExpressions"):
            key = self.string(f"{item}.key", required=True)
            operator = self.string(f"{item}.operator", required=True)
            values = self.get(f"{item}.values", [])
            if operator and operator not in _SELECTOR_OPERATORS:
                self.fail(f"{item}.operator", f"{operator!r} is not one of In, NotIn, Exists, DoesNotExist")
                continue
            if operator in ("In", "NotIn") and not values:
                self.fail(f"{item}.values", f"must not be empty for operator {operator}")
            if operator in ("Exists", "DoesNotExist") and values:
                self.fail(f"{item}.values", f"must be empty for operator {operator}")
            requirements.append(Requirement(key, operator, frozenset(str(v) for v in values)))
        return LabelSelector(tuple(labels), tuple(requirements))

    def meta(self) -> Meta:
        labels = self.body.get("metadata", {}).get("labels") or {}
        return Meta(
            uid=self.string("metadata.uid", required=True),
            namespace=self.string("metadata.namespace", default="default"),
            name=self.string("metadata.name", required=True),
            generation=self.integer("metadata.generation", default=0) or 0,
            labels={str(k): str(v) for k, v in labels.items()},
            created=self.string("metadata.creationTimestamp"),
            deleting=bool(self.get("metadata.deletionTimestamp")),
        )


def parse_prefix(text: str, path: str, reader: BodyReader) -> IPNetwork | None:
    """A CIDR prefix; host bits must be clear, so ``10.0.0.5/24`` is reported, not silently masked."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        reader.fail(path, f"{text!r} is not a CIDR prefix such as 10.0.0.0/24")
        return None
    if "/" not in text:
        reader.fail(path, f"{text!r} has no prefix length; write {network}")
        return None
    if str(network) != text and ipaddress.ip_interface(text).ip != network.network_address:
        reader.fail(path, f"{text!r} has host bits set; did you mean {network}?")
        return None
    return network


@dataclass(frozen=True)
class Resource:
    """What every model of a custom resource shares: its metadata, and reading it from a body."""

    meta: Meta

    @property
    def key(self) -> ObjectKey:
        return self.meta.key

    @property
    def uid(self) -> str:
        return self.meta.uid

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        return cls.read(BodyReader(body))

    @classmethod
    def read(cls, reader: BodyReader) -> Self:
        """The model of the body behind ``reader``; raises SpecError naming every problem."""
        raise NotImplementedError


def host_prefix(address: IPAddress) -> IPNetwork:
    """The /32 or /128 prefix of one address."""
    if isinstance(address, ipaddress.IPv4Address):
        return ipaddress.IPv4Network((address, 32))
    return ipaddress.IPv6Network((address, 128))


def _split_path(path: str) -> Iterator[str | int]:
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            yield name
        while rest:
            index, _, rest = rest.partition("]")
            yield int(index)
            rest = rest.removeprefix("[")
