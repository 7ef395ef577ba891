"""Firewall rules compiled into arrays, and their vectorized evaluation over new flows (DPSERVICE.md §4.11).

The control plane keeps each interface's rules as :class:`~kubevpc_agent.tables.model.FirewallRule`
objects in insertion order (``AgentState.firewall``). The ``firewall`` node never walks them: this
module compiles them, once per change (``AgentState.firewall_version``), into one set of column
arrays over all rules, grouped into *rule sets* (one per port and direction) and ordered inside a
set as they are evaluated. Evaluating a batch of new flows is then column arithmetic: for the rows
of one rule set, an ``(rows, rules)`` match matrix and the first ``True`` per row.

Semantics (docs/network-functions.md, "Firewall"):

* Order: ascending ``priority``, ties in insertion order; the first matching rule decides.
  dpservice ignores priority (pure insertion order); every rule its CLI creates has priority
  1000, so clients that never set one see exactly dpservice's order.
* Default of a rule set that matches nothing: ACCEPT when the set is empty (an interface without
  egress rules may send anything, one without ingress rules may receive anything), DROP otherwise.
* Protocol: a rule without protocol matches TCP, UDP, ICMP and ICMPv6; an ICMP rule matches ICMP
  and ICMPv6 (dpservice has no ICMPv6 rule type).
* Addresses: source and destination must lie in the rule's prefixes, which must be of the
  packet's family; a ``/0`` prefix of an ICMP rule matches either family (so the default
  ``0.0.0.0/0`` ICMP rule covers ICMPv6 as in dpservice, while a narrower prefix means what it
  says; dpservice ignores the prefixes of ICMP rules altogether).
* Ports: TCP/UDP rules match inclusive source and destination port ranges (``-1`` = any);
  ICMP rules match ICMP type and code (``-1`` = any).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv6Network

import numpy as np
import numpy.typing as npt

from kubevpc_agent.tables.model import Action, Direction, FirewallRule, IPNetwork, Protocol
from kubevpc_agent.tables.state import AgentState

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
BOOL = npt.NDArray[np.bool_]

ANY_PROTOCOL = 0  # compiled protocol of a rule without one
MATCH_CELLS = 1 << 18  # rows x rules per matrix: uint64 temporaries of 2 MiB at most
RULE_BLOCK = 32  # rules in the first block; each next block is 4x wider
M64 = (1 << 64) - 1


class Verdict(IntEnum):
    """A flow's cached firewall decision (the flow table stores it; 0 = not evaluated yet)."""

    NONE = 0
    ACCEPT = 1
    DROP = 2


def sorted_rules(rules: Iterable[FirewallRule]) -> list[FirewallRule]:
    """Rules in evaluation order: ascending priority, ties in insertion order (a stable sort)."""
    return sorted(rules, key=lambda r: r.priority)


def _prefix_halves(net: IPNetwork) -> tuple[int, int, int, int]:
    """(address hi, lo, mask hi, lo) of a prefix in the batch's column form (IPv4 in ``lo``)."""
    if isinstance(net, IPv6Network):
        addr, mask = int(net.network_address), int(net.netmask)
        return addr >> 64, addr & M64, mask >> 64, mask & M64
    return 0, int(net.network_address), 0, int(net.netmask)


def _port_bounds(lower: int, upper: int) -> tuple[int, int]:
    """An inclusive range from dpservice's encoding: lower -1 = any; upper compared as uint32."""
    if lower == -1:
        return 0, 0xFFFF
    return lower, min(upper & 0xFFFFFFFF, 0xFFFF)


@dataclass(frozen=True)
class FlowView:
    """The fields of each flow a rule looks at, as columns (one row per flow)."""

    is_v6: BOOL
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    proto: U8
    sport: U16  # TCP/UDP source port
    dport: U16  # TCP/UDP destination port
    icmp_type: U8  # ICMP/ICMPv6 type (rows of other protocols: ignored)
    icmp_code: U8

    def __len__(self) -> int:
        return len(self.proto)

    def take(self, rows: npt.NDArray[np.intp]) -> FlowView:
        return FlowView(*(getattr(self, f)[rows] for f in _VIEW_FIELDS))


_VIEW_FIELDS = (
    "is_v6",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "proto",
    "sport",
    "dport",
    "icmp_type",
    "icmp_code",
)


@dataclass(frozen=True)
class PrefixColumns:
    """One side (source or destination) of every rule's address match, as columns."""

    hi: U64  # prefix address, masked (IPv4 in ``lo``)
    lo: U64
    mask_hi: U64
    mask_lo: U64
    v6: BOOL  # the prefix is IPv6
    any_family: BOOL  # an ICMP rule's /0 prefix: matches addresses of either family

    @classmethod
    def build(cls, nets: Sequence[IPNetwork], icmp_rule: BOOL) -> PrefixColumns:
        n = len(nets)
        halves = np.array([_prefix_halves(net) for net in nets], dtype=np.uint64).reshape(n, 4)
        v6 = np.array([net.version == 6 for net in nets], dtype=bool).reshape(n)
        zero = np.array([net.prefixlen == 0 for net in nets], dtype=bool).reshape(n)
        return cls(
            halves[:, 0].copy(),
            halves[:, 1].copy(),
            halves[:, 2].copy(),
            halves[:, 3].copy(),
            v6,
            zero & icmp_rule,
        )

    def matches(self, r: slice, is_v6: BOOL, hi: U64, lo: U64) -> BOOL:
        """``(flows, rules)``: each flow address against each rule prefix in ``r``."""
        hi_c, lo_c = hi[:, np.newaxis], lo[:, np.newaxis]
        inside = ((hi_c & self.mask_hi[r]) == self.hi[r]) & ((lo_c & self.mask_lo[r]) == self.lo[r])
        same_family = self.v6[r] == is_v6[:, np.newaxis]
        result: BOOL = self.any_family[r] | (same_family & inside)
        return result


class CompiledRules:
    """Every interface's rules as arrays; see the module docstring.

    Rule set ``s = port_id * 2 + direction`` holds rules ``start[s] .. start[s] + count[s] - 1``.
    """

    def __init__(self, rules_by_port: Mapping[int, Sequence[FirewallRule]], n_ports: int) -> None:
        ordered: list[FirewallRule] = []
        self.start = np.zeros(2 * n_ports, dtype=np.int32)
        self.count = np.zeros(2 * n_ports, dtype=np.int32)
        for port_id in range(n_ports):
            rules = rules_by_port.get(port_id, ())
            for direction in Direction:
                s = 2 * port_id + direction
                chosen = sorted_rules(r for r in rules if r.direction is direction)
                self.start[s] = len(ordered)
                self.count[s] = len(chosen)
                ordered.extend(chosen)
        self.rules: tuple[FirewallRule, ...] = tuple(ordered)
        n = len(ordered)
        self.action = np.array([r.action for r in ordered], dtype=np.uint8).reshape(n)
        self.proto = np.array(
            [ANY_PROTOCOL if r.protocol is None else int(r.protocol) for r in ordered], dtype=np.uint8
        ).reshape(n)
        icmp_rule = self.proto == Protocol.ICMP
        self.src = PrefixColumns.build([r.source for r in ordered], icmp_rule)
        self.dst = PrefixColumns.build([r.destination for r in ordered], icmp_rule)
        bounds = [_port_bounds(r.src_ports.lower, r.src_ports.upper) for r in ordered]
        bounds += [_port_bounds(r.dst_ports.lower, r.dst_ports.upper) for r in ordered]
        ranges = np.array(bounds, dtype=np.int32).reshape(2, n, 2)
        self.sport_min, self.sport_max = ranges[0, :, 0].copy(), ranges[0, :, 1].copy()
        self.dport_min, self.dport_max = ranges[1, :, 0].copy(), ranges[1, :, 1].copy()
        self.icmp_type = np.array([r.icmp_type for r in ordered], dtype=np.int32).reshape(n)
        self.icmp_code = np.array([r.icmp_code for r in ordered], dtype=np.int32).reshape(n)

    @property
    def n_ports(self) -> int:
        return len(self.start) // 2

    def rule_set(self, port: npt.NDArray[np.integer], direction: Direction) -> I32:
        """The rule-set id of ``port`` in ``direction``, or -1 for ports beyond the table."""
        p = port.astype(np.int64)
        ok = (p >= 0) & (p < self.n_ports)
        return np.where(ok, 2 * p + int(direction), -1).astype(np.int32)

    def has_rules(self, rule_set: npt.NDArray[np.integer]) -> BOOL:
        """Whether each rule set holds at least one rule (-1: no)."""
        s = np.asarray(rule_set, dtype=np.int64)
        return (s >= 0) & (self.count[np.maximum(s, 0)] > 0) if len(self.count) else np.zeros(len(s), bool)

    def evaluate(self, rule_set: npt.NDArray[np.integer], flows: FlowView) -> tuple[U8, I32]:
        """Verdict and matched rule index (-1: none, the set's default applied) of every flow.

        ``rule_set`` -1 (no such port) evaluates as an empty set: ACCEPT.
        """
        n = len(flows)
        verdict = np.full(n, Verdict.ACCEPT, dtype=np.uint8)
        matched = np.full(n, -1, dtype=np.int32)
        sets = np.asarray(rule_set, dtype=np.int32)
        busy = self.has_rules(sets)
        if not busy.any():
            return verdict, matched
        for s in np.unique(sets[busy]).tolist():  # one pass per rule set present, never per flow
            first, size = int(self.start[s]), int(self.count[s])
            pending = np.flatnonzero(sets == s)
            # rules in blocks that grow 4x (32, 128, 512, ...), flows leave once decided: early rules
            # (the usual matches) cost the rest nothing, late ones few passes; rows are chunked so
            # one matrix stays within MATCH_CELLS
            block, width = 0, RULE_BLOCK
            while block < size and len(pending):
                width = min(width, size - block)
                chunk = max(1, MATCH_CELLS // width)
                undecided = []
                for c in range(0, len(pending), chunk):
                    part = pending[c : c + chunk]
                    hit = self._first_match(flows.take(part), first + block, width)
                    found = hit >= 0
                    rule = first + block + hit[found]
                    matched[part[found]] = rule
                    verdict[part[found]] = np.where(
                        self.action[rule] == Action.DROP, Verdict.DROP, Verdict.ACCEPT
                    )
                    undecided.append(part[~found])
                pending = np.concatenate(undecided)
                block += width
                width *= 4
            verdict[pending] = Verdict.DROP  # rules exist, none matched
        return verdict, matched

    def _first_match(self, f: FlowView, first: int, size: int) -> I32:
        """Index inside the set of the first rule each flow matches, -1 if none."""
        r = slice(first, first + size)
        col = np.newaxis
        is_icmp = (f.proto == Protocol.ICMP) | (f.proto == Protocol.ICMPV6)
        rule_proto = self.proto[r]
        ok = (
            (rule_proto == ANY_PROTOCOL)
            | (rule_proto == f.proto[:, col])
            | ((rule_proto == Protocol.ICMP) & is_icmp[:, col])
        )
        ok &= self.src.matches(r, f.is_v6, f.src_hi, f.src_lo)
        ok &= self.dst.matches(r, f.is_v6, f.dst_hi, f.dst_lo)
        sport = f.sport.astype(np.int32)[:, col]
        dport = f.dport.astype(np.int32)[:, col]
        sport_ok = (sport >= self.sport_min[r]) & (sport <= self.sport_max[r])
        ports_ok = sport_ok & (dport >= self.dport_min[r]) & (dport <= self.dport_max[r])
        rt, rc = self.icmp_type[r], self.icmp_code[r]
        icmp_ok = ((rt == -1) | (rt == f.icmp_type.astype(np.int32)[:, col])) & (
            (rc == -1) | (rc == f.icmp_code.astype(np.int32)[:, col])
        )
        ok &= np.where(is_icmp[:, col], icmp_ok, ports_ok)
        hit = ok.argmax(axis=1).astype(np.int32)
        return np.where(ok.any(axis=1), hit, -1).astype(np.int32)


def compile_rules(state: AgentState) -> CompiledRules:
    """Compile every interface's rules in ``state``, indexed by the interface's port."""
    by_port: dict[int, list[FirewallRule]] = {}
    for iface_id, rules in state.firewall.items():
        iface = state.interfaces.get(iface_id)
        if iface is not None and rules:
            by_port[iface.port_id] = list(rules)
    n_ports = max(state.ports, default=-1) + 1
    return CompiledRules(by_port, n_ports)


class FirewallTable:
    """The compiled rules of an :class:`AgentState`, recompiled when its firewall changes."""

    def __init__(self, state: AgentState) -> None:
        self.state = state
        self._version = -1
        self.rules = CompiledRules({}, 0)
        self.refresh()

    def refresh(self) -> bool:
        """Recompile if the rules changed; True if they did."""
        state = self.state
        version = state.firewall_version  # bumps on rule changes and on deleting an interface with rules
        if version == self._version:
            return False
        self._version = version
        self.rules = compile_rules(state)
        return True


def rule_counts(state: AgentState) -> dict[str, int]:
    """Rules per interface id (dpservice's ``fwall_rule_count`` telemetry)."""
    return {iface_id: len(state.firewall.get(iface_id, ())) for iface_id in state.interfaces}
