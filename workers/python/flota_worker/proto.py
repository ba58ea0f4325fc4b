"""
The gRPC messages and stub, generated from proto/flota/v1/master.proto (the
only place the contract is written) on first use, into a git-ignored cache
keyed by the file's SHA-256: an edited .proto is picked up on the next start,
and no generated code is checked in to drift from it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_ROOT = Path(os.environ.get("FLOTA_PROTO_DIR") or PACKAGE_DIR.parents[2] / "proto")
PROTO_FILE = "flota/v1/master.proto"
CACHE_DIR = PACKAGE_DIR.parent / ".generated"


class ProtoUnavailable(RuntimeError):
    """The .proto or the code generator is missing: the message says what to install."""


def _generate(proto: Path, target: Path) -> None:
    try:
        from grpc_tools import protoc  # type: ignore[import-not-found]
    except ImportError as error:
        raise ProtoUnavailable(
            "python3-grpc-tools is needed once to generate the gRPC code "
            "(apt-get install python3-grpc-tools)"
        ) from error
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="gen-", dir=CACHE_DIR))
    try:
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"--python_out={staging}",
                f"--grpc_python_out={staging}",
                str(proto),
            ]
        )
        if code != 0:
            raise ProtoUnavailable(f"protoc could not compile {proto} (exit {code})")
        for package in (staging / "flota", staging / "flota" / "v1"):
            (package / "__init__.py").touch()
        # mkdtemp makes the directory private (0700): the code is shared by every user that
        # runs the worker from this tree (an image builds it as root and runs as another).
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            # Another process generated the same version first; its copy is as good.
            if not target.exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load() -> tuple[ModuleType, ModuleType]:
    """(master_pb2, master_pb2_grpc) for the .proto as it is now."""
    proto = PROTO_ROOT / PROTO_FILE
    try:
        digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:16]
    except OSError as error:
        raise ProtoUnavailable(f"cannot read {proto} (set FLOTA_PROTO_DIR to the proto/ folder)") from error
    target = CACHE_DIR / digest
    if not (target / "flota" / "v1" / "master_pb2.py").exists():
        _generate(proto, target)
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return (
        importlib.import_module("flota.v1.master_pb2"),
        importlib.import_module("flota.v1.master_pb2_grpc"),
    )
