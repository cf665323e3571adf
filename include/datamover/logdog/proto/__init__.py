"""LogDog's protobuf messages (LUCI's logpb package, Apache-2.0; see LICENSE and the .proto files here).

`log_pb2` and `butler_pb2` are generated from log.proto and butler.proto when the package is built
(hatch_build.py; `make setup` does it for an editable install). Message names are those of LUCI's
`logpb` package, so what this package writes and reads is LUCI's wire format.
"""

from __future__ import annotations

try:
    from datamover.logdog.proto import butler_pb2, log_pb2
except ImportError as exc:  # pragma: no cover - a source checkout that was never built
    raise ImportError(
        "The LogDog protobuf bindings are missing (datamover/logdog/proto/*_pb2.py are generated at build "
        "time). Fix: `make setup` (or `python hatch_build.py` with grpcio-tools installed)."
    ) from exc

PROTO_VERSION = "1"  # logpb.Version: the Butler protocol version this package reads and writes

__all__ = ["PROTO_VERSION", "butler_pb2", "log_pb2"]
