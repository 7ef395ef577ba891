"""The VPC: one isolated overlay network, identified on the wire by its 24-bit VNI.

``spec.vni`` pins the VNI; without it the operator allocates one and records it in ``status.vni``,
which then never changes. ``spec.peerings`` lists other VPCs (this namespace unless one is named)
and the prefixes of theirs this VPC may reach; a peering is active once both VPCs list each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubevpc_operator.models.common import BodyReader, IPNetwork, ObjectKey, Resource

MAX_VNI = 0xFFFFFF  # 24 bits on the wire (dpservice: "VNI exceeds 24-bit range")

FIELDS = (
    "spec.vni",
    "spec.peerings[].vpcRef.name",
    "spec.peerings[].vpcRef.namespace",
    "spec.peerings[].prefixes[]",
    "status.vni",
)


@dataclass(frozen=True)
class Peering:
    """This VPC may reach ``prefixes`` of ``vpc`` (empty: all of its addresses)."""

    vpc: ObjectKey
    prefixes: tuple[IPNetwork, ...] = ()

    def allows(self, prefix: IPNetwork) -> bool:
        """Whether a route to ``prefix`` in the peer VPC is within what this peering may reach."""
        if not self.prefixes:
            return True
        return any(prefix.version == p.version and prefix.subnet_of(p) for p in self.prefixes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class VPC(Resource):
    vni: int | None  # spec.vni: pinned by the user
    status_vni: int | None  # status.vni: allocated earlier and recorded
    peerings: tuple[Peering, ...] = ()

    @property
    def effective_vni(self) -> int | None:
        """The VNI in force: pinned, else recorded; None until allocated."""
        return self.vni if self.vni is not None else self.status_vni

    def peering_with(self, other: ObjectKey) -> Peering | None:
        return next((p for p in self.peerings if p.vpc == other), None)

    @classmethod
    def read(cls, reader: BodyReader) -> VPC:
        meta = reader.meta()
        vni = reader.integer("spec.vni", minimum=1, maximum=MAX_VNI)
        status_vni = reader.integer("status.vni")
        if status_vni is not None and not 1 <= status_vni <= MAX_VNI:
            status_vni = None  # a corrupt record is re-allocated, not trusted
        peerings: list[Peering] = []
        seen: set[ObjectKey] = set()
        for _, item in reader.items("spec.peerings"):
            name = reader.string(f"{item}.vpcRef.name", required=True)
            peer = ObjectKey(reader.string(f"{item}.vpcRef.namespace", default=meta.namespace), name)
            if peer == meta.key:
                reader.fail(f"{item}.vpcRef.name", "a VPC cannot peer with itself")
            elif peer in seen:
                reader.fail(f"{item}.vpcRef.name", f"VPC {peer} is listed twice")
            seen.add(peer)
            prefixes = []
            for _, prefix_path in reader.items(f"{item}.prefixes"):
                prefix = reader.prefix(prefix_path, required=True)
                if prefix is not None:
                    prefixes.append(prefix)
            peerings.append(Peering(peer, tuple(prefixes)))
        reader.raise_if_failed()
        return cls(meta=meta, vni=vni, status_vni=status_vni, peerings=tuple(peerings))
