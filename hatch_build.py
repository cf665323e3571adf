"""Hatch build hook: generate the Python bindings of the vendored LogDog .proto files.

The .proto files (include/datamover/logdog/proto/*.proto, from LUCI, Apache-2.0) are the source of
truth; their *_pb2.py / *_pb2.pyi are generated here with grpcio-tools' protoc for every build (wheel
and editable install alike), git-ignored, and added to the wheel as artifacts. grpcio-tools is a
build requirement only; the protobuf runtime is a pinned dependency of the package (the gencode of
grpcio-tools' protoc must not be newer than that runtime).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PROTO_PACKAGE = Path("include/datamover/logdog/proto")


def generate(root: Path) -> list[Path]:
    """Run protoc on every .proto of PROTO_PACKAGE; return the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    include = root / "include"
    well_known = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/{timestamp,duration}.proto
    protos = sorted((root / PROTO_PACKAGE).glob("*.proto"))
    args = [
        "protoc",
        f"-I{include}",
        f"-I{well_known}",
        f"--python_out={include}",
        f"--pyi_out={include}",
        *(str(p.relative_to(include)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {', '.join(p.name for p in protos)}")
    return [p.with_name(p.stem + suffix) for p in protos for suffix in ("_pb2.py", "_pb2.pyi")]


class ProtoBindingsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        for path in generate(root):
            build_data["artifacts"].append(str(path.relative_to(root)))


if __name__ == "__main__":  # regenerate in place: python hatch_build.py
    for generated in generate(Path(__file__).resolve().parent):
        print(generated)
