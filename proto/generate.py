"""Regenerate the committed Python stubs of the agent API from its .proto files.

    python proto/generate.py [--out DIR]

Runs the protoc bundled with grpcio-tools over every .proto under proto/dpdkironcore with
`proto/` as the only include root, so the generated imports read
`from dpdkironcore.v1 import dpdk_pb2` and work with `proto/` as a source root. Output goes next
to the .proto files unless --out names another root (tests/contracts/test_proto_drift.py uses
that to compare a fresh run with the committed files). protoc's output depends only on the input
files and the grpcio-tools version, so the committed files change only when one of those does.

grpc.health.v1 is not generated here: the agent uses the stubs shipped in grpcio-health-checking.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "dpdkironcore"


def find_protos() -> list[str]:
    """Return the .proto files to compile, in a stable order (protoc names them relative to PROTO_ROOT)."""
    return sorted(str(path) for path in PACKAGE_DIR.rglob("*.proto"))


def generate(out: Path) -> None:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py for every proto under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    well_known_types = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",  # argv[0], ignored by protoc
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known_types}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *find_protos(),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args[1:])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=PROTO_ROOT,
        help="root directory for the generated package tree (default: %(default)s)",
    )
    generate(parser.parse_args(argv).out)


if __name__ == "__main__":
    main(sys.argv[1:])
