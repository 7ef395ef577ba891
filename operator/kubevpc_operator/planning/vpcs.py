"""VNIs and peerings of VPCs.

A VPC without ``spec.vni`` gets a VNI derived from its uid (a hash, so two operators or two
restarts pick the same one) and probed linearly past VNIs other VPCs hold. Once recorded in
``status.vni`` it never changes. A pinned or recorded VNI that another, older VPC already holds is
a conflict for the younger VPC. A peering is active once both VPCs list each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from kubevpc_operator.models.common import ObjectKey
from kubevpc_operator.models.vpc import MAX_VNI, VPC, Peering

FIRST_VNI = 1  # 0 is dpservice's "no VNI" (neighbor NAT and DNAT entries with VNI 0 are special)


class VniExhaustedError(RuntimeError):
    """Every VNI of the configured range is in use."""


def allocate_vni(uid: str, taken: Collection[int], first: int = FIRST_VNI, last: int = MAX_VNI) -> int:
    """A VNI for the VPC with ``uid``: stable for the uid, never one of ``taken``."""
    size = last - first + 1
    start = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % size
    taken_set = set(taken)
    for step in range(size):
        vni = first + (start + step) % size
        if vni not in taken_set:
            return vni
    raise VniExhaustedError(f"all {size} VNIs from {first} to {last} are in use")


def age_order(vpc: VPC) -> tuple[str, str, str]:
    """Older objects win conflicts; the name breaks ties deterministically."""
    return (vpc.meta.created, vpc.meta.namespace, vpc.meta.name)


@dataclass(frozen=True)
class VniAssignment:
    vnis: Mapping[ObjectKey, int]  # VPCs whose VNI is settled and unique
    conflicts: Mapping[ObjectKey, str]  # VPCs whose VNI another VPC holds: a readable reason


def resolve_vnis(vpcs: Iterable[VPC]) -> VniAssignment:
    """The VNI in force for each VPC (pinned or recorded); younger duplicates lose."""
    holders: dict[int, VPC] = {}
    vnis: dict[ObjectKey, int] = {}
    conflicts: dict[ObjectKey, str] = {}
    for vpc in sorted(vpcs, key=age_order):
        vni = vpc.effective_vni
        if vni is None:
            continue
        holder = holders.get(vni)
        if holder is not None:
            conflicts[vpc.key] = f"VNI {vni} is already used by VPC {holder.key}"
            continue
        holders[vni] = vpc
        vnis[vpc.key] = vni
    return VniAssignment(vnis, conflicts)


def active_peerings(vpcs: Iterable[VPC]) -> dict[ObjectKey, list[tuple[ObjectKey, Peering]]]:
    """For each VPC, the peers both sides agreed on, with this VPC's side (its allowed prefixes)."""
    by_key = {vpc.key: vpc for vpc in vpcs}
    result: dict[ObjectKey, list[tuple[ObjectKey, Peering]]] = {}
    for vpc in by_key.values():
        for peering in vpc.peerings:
            peer = by_key.get(peering.vpc)
            if peer is not None and peer.peering_with(vpc.key) is not None:
                result.setdefault(vpc.key, []).append((peer.key, peering))
    return result
