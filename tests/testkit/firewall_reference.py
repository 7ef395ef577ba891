"""A plain firewall evaluator, written the way docs/network-functions.md states the rules.

The compiled, vectorized evaluation (``tables/firewall_eval.py``) and the ``firewall`` node are
checked against it on random rules and flows: one rule at a time, ``ipaddress`` containment,
no arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevpc_agent.tables.firewall_eval import Verdict
from kubevpc_agent.tables.model import Action, FirewallRule, IPAddress, Protocol

ICMP_PROTOS = (Protocol.ICMP, Protocol.ICMPV6)


@dataclass(frozen=True)
class Flow:
    src: IPAddress
    dst: IPAddress
    proto: int
    sport: int = 0
    dport: int = 0
    icmp_type: int = 0
    icmp_code: int = 0


def reference_match(rule: FirewallRule, flow: Flow) -> bool:
    is_icmp = flow.proto in ICMP_PROTOS
    if rule.protocol is Protocol.ICMP:
        if not is_icmp:
            return False
    elif rule.protocol is not None and rule.protocol != flow.proto:
        return False
    for net, addr in ((rule.source, flow.src), (rule.destination, flow.dst)):
        if rule.protocol is Protocol.ICMP and net.prefixlen == 0:
            continue  # an ICMP rule's /0 matches either family
        if net.version != addr.version or addr not in net:
            return False
    if is_icmp:
        return rule.icmp_type in (-1, flow.icmp_type) and rule.icmp_code in (-1, flow.icmp_code)
    for rng, port in ((rule.src_ports, flow.sport), (rule.dst_ports, flow.dport)):
        if rng.lower != -1 and not rng.lower <= port <= (rng.upper & 0xFFFFFFFF):
            return False
    return True


def reference_verdict(rules: list[FirewallRule], flow: Flow) -> tuple[Verdict, FirewallRule | None]:
    ordered = sorted(enumerate(rules), key=lambda ir: (ir[1].priority, ir[0]))
    for _, rule in ordered:
        if reference_match(rule, flow):
            return (Verdict.DROP if rule.action is Action.DROP else Verdict.ACCEPT), rule
    return (Verdict.ACCEPT if not rules else Verdict.DROP), None
