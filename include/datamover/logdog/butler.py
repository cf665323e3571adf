"""What the LogDog Butler publishes, and the Collector's checks of it
(go.chromium.org/luci/logdog/client/pubsubprotocol and logdog/server/collector).

A message is two RecordIO frames: a `ButlerMetadata` (type ButlerLogBundle, compression NONE or ZLIB,
proto_version "1"), then the `ButlerLogBundle`, zlib-compressed when the metadata says so. A bundle
carries a project, a prefix, the prefix's 36-byte secret and one `Entry` per stream: the stream's
descriptor, its log entries (consecutive stream indices), and whether the stream ends here
(`terminal`, `terminal_index`).

`parse_message` refuses a malformed message as a whole (MalformedMessage); `check_bundle_entry` refuses
one stream's part of a bundle (RejectedEntry) and keeps the others, as LUCI's collector does per entry.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from isal import isal_zlib

from datamover.errors import DataMoverError
from datamover.logdog.names import validate_project, validate_stream_name, validate_tag
from datamover.logdog.proto import PROTO_VERSION, butler_pb2, log_pb2
from datamover.logdog.recordio import BUTLER_MAX_FRAME, FrameError, frame, split_frames

PREFIX_SECRET_LENGTH = 36  # types.PrefixSecretLength
COMPRESS_THRESHOLD = 860  # pubsubprotocol.DefaultCompressThreshold
INT63 = 2**63  # intermediate storage keeps indices in PostgreSQL bigint


# An entry as a row of PostgreSQL's binary COPY of log_entries (storage.ENTRY_COLUMNS), made while the
# bundle is decoded, without its leading field count and stream id, which intermediate storage assigns:
# the five int fields (length + big-endian value; a NULL time offset is length -1) and the LogEntry's bytes.
# (Bytes, not a tuple per entry: tens of thousands of live tuples would wake the garbage collector's full
# collections, which in an Airflow task walk every object of the process.)
_ROW_TAIL = struct.Struct(">iqiqiqiqiii")  # stream_index, prefix_index, sequence, seconds, nanos, data length
_ROW_TAIL_NO_TIME = struct.Struct(">iqiqiqiii")


def entry_row(
    stream_index: int, prefix_index: int, sequence: int, seconds: int | None, nanos: int | None, data: bytes
) -> bytes:
    """One entry's binary COPY row, from its stream index on (see _ROW_TAIL)."""
    if seconds is None:
        head = _ROW_TAIL_NO_TIME.pack(8, stream_index, 8, prefix_index, 8, sequence, -1, -1, len(data))
    else:
        head = _ROW_TAIL.pack(8, stream_index, 8, prefix_index, 8, sequence, 8, seconds, 4, nanos, len(data))
    return head + data


class MalformedMessage(DataMoverError):
    """A Kafka message that is not a Butler message this collector can read."""


class RejectedEntry(DataMoverError):
    """One stream's part of a bundle that the collector must discard."""


def parse_message(data: bytes, max_size: int = BUTLER_MAX_FRAME) -> butler_pb2.ButlerLogBundle:
    """The bundle of one Butler message, or MalformedMessage saying why not."""
    try:
        frames = split_frames(data, max_size)
    except FrameError as exc:
        raise MalformedMessage(f"not RecordIO frames: {exc}") from None
    if len(frames) != 2:
        raise MalformedMessage(f"expected 2 frames (metadata, bundle), found {len(frames)}")
    try:
        metadata = butler_pb2.ButlerMetadata.FromString(frames[0])
    except DecodeError as exc:
        raise MalformedMessage(f"metadata frame does not decode: {exc}") from None
    if metadata.type != butler_pb2.ButlerMetadata.ButlerLogBundle:
        raise MalformedMessage(f"unknown data type {metadata.type}")
    if metadata.proto_version != PROTO_VERSION:
        raise MalformedMessage(
            f"unknown protobuf version {metadata.proto_version!r} (expected {PROTO_VERSION!r})"
        )
    payload = frames[1]
    if metadata.compression == butler_pb2.ButlerMetadata.ZLIB:
        inflater = isal_zlib.decompressobj()  # ISA-L: zlib's format, inflated ~3x faster
        try:
            payload = inflater.decompress(payload, max_size + 1)
        except isal_zlib.error as exc:
            raise MalformedMessage(f"bundle frame is not zlib data: {exc}") from None
        if len(payload) > max_size or inflater.unconsumed_tail:
            raise MalformedMessage(f"decompressed bundle exceeds {max_size} bytes")
        if not inflater.eof:
            raise MalformedMessage("zlib stream of the bundle is truncated")
    elif metadata.compression != butler_pb2.ButlerMetadata.NONE:
        raise MalformedMessage(f"unknown compression {metadata.compression}")
    try:
        bundle = butler_pb2.ButlerLogBundle.FromString(payload)
    except DecodeError as exc:
        raise MalformedMessage(f"bundle frame does not decode: {exc}") from None
    try:
        validate_project(bundle.project)
    except ValueError as exc:
        raise MalformedMessage(f"invalid bundle project name {bundle.project!r}: {exc}") from None
    try:
        validate_stream_name(bundle.prefix)
    except ValueError as exc:
        raise MalformedMessage(f"invalid bundle prefix {bundle.prefix!r}: {exc}") from None
    return bundle


def encode_message(
    bundle: butler_pb2.ButlerLogBundle, compress: bool = False, threshold: int = COMPRESS_THRESHOLD
) -> bytes:
    """A Butler message as pubsubprotocol.Writer writes it (compressed when asked and large enough)."""
    data = bundle.SerializeToString()
    metadata = butler_pb2.ButlerMetadata(
        type=butler_pb2.ButlerMetadata.ButlerLogBundle, proto_version=PROTO_VERSION
    )
    if compress and len(data) >= threshold:
        data = zlib.compress(data)
        metadata.compression = butler_pb2.ButlerMetadata.ZLIB
    return frame(metadata.SerializeToString()) + frame(data)


@dataclass
class StreamPart:
    """One validated bundle entry, ready for intermediate storage."""

    project: str
    prefix: str
    name: str
    stream_type: int
    descriptor: bytes  # canonical LogStreamDescriptor (prefix filled in), as the coordinator keeps it
    secret_sha256: bytes
    terminal_index: int | None  # set when the entry terminates the stream
    rows: list[bytes]  # the entries as binary COPY rows from their stream index on (`entry_row`)
    first_index: int = 0  # the stream index of rows[0] (the rows are consecutive)

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1

    @property
    def path(self) -> str:
        return f"{self.prefix}/+/{self.name}"


def validate_descriptor(desc: log_pb2.LogStreamDescriptor) -> None:
    """logpb.LogStreamDescriptor.Validate(true): ValueError naming the first problem."""
    for what, value in (("prefix", desc.prefix), ("name", desc.name)):
        if (problem := _valid_name(value)) is not None:
            raise ValueError(f"invalid {what}: {problem}")
    if desc.stream_type not in (log_pb2.TEXT, log_pb2.BINARY, log_pb2.DATAGRAM):
        raise ValueError(f"invalid stream type: {desc.stream_type}")
    if not desc.content_type:
        raise ValueError("missing content type")
    if not desc.HasField("timestamp"):
        raise ValueError("missing timestamp")
    for key, value in desc.tags.items():
        validate_tag(key, value)


_CONTENT = {log_pb2.TEXT: "text", log_pb2.BINARY: "binary", log_pb2.DATAGRAM: "datagram"}


@functools.lru_cache(maxsize=4096)
def _valid_name(name: str) -> str | None:
    try:
        validate_stream_name(name)
    except ValueError as exc:
        return str(exc)
    return None


def check_bundle_entry(
    bundle: butler_pb2.ButlerLogBundle, be: butler_pb2.ButlerLogBundle.Entry
) -> StreamPart | None:
    """The collector's checks of one bundle entry (collector.processLogStream): None for an entry
    with neither logs nor a terminal index (junk, discarded quietly), RejectedEntry for an invalid one."""
    if not be.logs and not be.terminal:
        return None
    if len(bundle.secret) != PREFIX_SECRET_LENGTH:
        raise RejectedEntry(f"invalid prefix secret length ({len(bundle.secret)} != {PREFIX_SECRET_LENGTH})")
    desc = log_pb2.LogStreamDescriptor()
    desc.CopyFrom(be.desc)
    if desc.prefix and desc.prefix != bundle.prefix:
        raise RejectedEntry(f"bundle prefix {bundle.prefix!r} does not match entry prefix {desc.prefix!r}")
    desc.prefix = bundle.prefix
    try:
        validate_descriptor(desc)
    except ValueError as exc:
        raise RejectedEntry(f"invalid log stream descriptor: {exc}") from None
    if be.terminal and be.terminal_index >= INT63:
        raise RejectedEntry(f"terminal index {be.terminal_index} is too large")
    rows: list[bytes] = []
    first = 0
    if logs := be.logs:
        stream_type = desc.stream_type
        content = _CONTENT.get(stream_type)
        first = next_index = logs[0].stream_index
        append = rows.append
        for le in logs:
            stream_index, prefix_index, sequence = le.stream_index, le.prefix_index, le.sequence
            kind = le.WhichOneof("content")  # logpb.LogEntry.Validate: content of the stream's type
            if (
                kind != content
                or (kind == "text" and not le.text.lines)
                or (kind == "binary" and not le.binary.data)
            ):
                raise RejectedEntry(f"log entry {stream_index} has no content of the stream's type")
            if stream_index != next_index:
                raise RejectedEntry(
                    f"non-contiguous log entry block: expected index {next_index}, got {stream_index}"
                )
            next_index += 1
            if stream_index >= INT63 or prefix_index >= INT63 or sequence >= INT63:
                raise RejectedEntry(f"log entry {stream_index} has an index beyond 2^63")
            seconds = nanos = None
            if le.HasField("time_offset"):
                to = le.time_offset
                seconds, nanos = to.seconds, to.nanos
            append(entry_row(stream_index, prefix_index, sequence, seconds, nanos, le.SerializeToString()))
    return StreamPart(
        project=bundle.project,
        prefix=desc.prefix,
        name=desc.name,
        stream_type=desc.stream_type,
        descriptor=desc.SerializeToString(deterministic=True),
        secret_sha256=hashlib.sha256(bundle.secret).digest(),
        terminal_index=be.terminal_index if be.terminal else None,
        rows=rows,
        first_index=first,
    )
