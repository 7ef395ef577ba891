"""The committed stubs are exactly what proto/generate.py makes from the committed .proto files.

Fails when someone edits a .proto without regenerating, edits a generated file by hand, or
regenerates with another grpcio-tools version (its protoc and plugin versions are written into the
files). The fix is the same in every case: `python proto/generate.py` and commit the result.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generated_files(root: Path) -> dict[str, bytes]:
    """Map each generated file under root/dpdkironcore (relative path) to its content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted((root / "dpdkironcore").rglob("*"))
        if path.is_file() and path.name.endswith(GENERATED_SUFFIXES) and "__pycache__" not in path.parts
    }


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PROTO_ROOT / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = generated_files(tmp_path)
    committed = generated_files(PROTO_ROOT)
    hint = f"run `python proto/generate.py` (grpcio-tools {version('grpcio-tools')}) and commit the result"

    assert sorted(committed) == sorted(fresh), hint
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert stale == [], hint


def test_every_proto_has_its_three_stubs() -> None:
    protos = sorted(PROTO_ROOT.joinpath("dpdkironcore").rglob("*.proto"))
    assert protos, "no .proto files found"
    committed = generated_files(PROTO_ROOT)
    for proto in protos:
        stem = proto.relative_to(PROTO_ROOT).with_suffix("").as_posix()
        assert {stem + suffix for suffix in GENERATED_SUFFIXES} <= committed.keys()
