"""Reading a LogDog archive back (what LUCI's archive storage does: logdog/common/storage/archive).

An archive is `logstream.entries` (frame 0: the LogStreamDescriptor, then one LogEntry per frame) and
`logstream.index` (a LogIndex). To start at stream index N, the index gives the offset of the last
indexed entry at or below N; reading starts there and skips the entries below N. Without an index (or
from index 0) reading starts at the beginning. Memory stays bounded: frames are read one at a time.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from datamover.errors import DataMoverError
from datamover.logdog.proto import log_pb2
from datamover.logdog.recordio import ARCHIVE_MAX_FRAME, FrameError, FrameReader
from datamover.logdog.render import Renderer

# opens the entries file for reading from a byte offset
OpenEntries = Callable[[int], BinaryIO]


class ArchiveError(DataMoverError):
    """The archive is missing or malformed."""


def start_offset(index: log_pb2.LogIndex | None, stream_index: int) -> int:
    """Byte offset of the last index entry whose stream index is <= `stream_index` (0: no such entry;
    the caller then reads from the start and skips the descriptor)."""
    if index is None or not index.entries:
        return 0
    keys = [e.stream_index for e in index.entries]
    pos = bisect.bisect_right(keys, stream_index) - 1
    return index.entries[pos].offset if pos >= 0 else 0


@dataclass
class Archive:
    """An archive to read: how to open its entries file at an offset, and its index (if any)."""

    open_entries: OpenEntries
    index: log_pb2.LogIndex | None = None

    def descriptor(self) -> log_pb2.LogStreamDescriptor:
        if self.index is not None and self.index.HasField("desc"):
            return self.index.desc
        with self.open_entries(0) as stream:
            first = FrameReader(stream, ARCHIVE_MAX_FRAME).read_frame()
        if first is None:
            raise ArchiveError("the entries file is empty (no descriptor frame)")
        return log_pb2.LogStreamDescriptor.FromString(first[1])

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[log_pb2.LogEntry]:
        """Entries with start <= stream_index (<= end), in archive order."""
        offset = start_offset(self.index, start) if start > 0 else 0
        with self.open_entries(offset) as stream:
            reader = FrameReader(stream, ARCHIVE_MAX_FRAME)
            reader.offset = offset
            try:
                if offset == 0 and reader.read_frame() is None:  # frame 0 is the descriptor
                    raise ArchiveError("the entries file is empty (no descriptor frame)")
                for _, payload in reader:
                    entry = log_pb2.LogEntry.FromString(payload)
                    if entry.stream_index < start:
                        continue
                    if end is not None and entry.stream_index > end:
                        return
                    yield entry
            except FrameError as exc:
                raise ArchiveError(f"the entries file is malformed: {exc}") from None

    def render(
        self, start: int = 0, end: int | None = None, raw: bool = False, timestamps: bool = False
    ) -> Iterator[bytes]:
        """The stream as text for people (see `render.Renderer`), or raw."""
        base = None
        if timestamps:
            desc = self.descriptor()
            base = desc.timestamp.ToDatetime(tzinfo=UTC) if desc.HasField("timestamp") else None
        renderer = Renderer(
            raw=raw, timestamps=timestamps, base_time=base or datetime(1970, 1, 1, tzinfo=UTC)
        )
        return renderer.render_all(self.entries(start, end))


def parse_index(data: bytes | None) -> log_pb2.LogIndex | None:
    """A LogIndex; None for a missing index (LUCI treats that as an empty one)."""
    if data is None:
        return None
    try:
        return log_pb2.LogIndex.FromString(data)
    except Exception as exc:
        raise ArchiveError(f"the index is not a LogIndex: {exc}") from None


def local_archive(entries_path: str, index_path: str | None) -> Archive:
    def open_entries(offset: int) -> BinaryIO:
        f = open(entries_path, "rb")  # noqa: SIM115 - the caller closes it
        f.seek(offset)
        return f

    index = None
    if index_path is not None:
        with open(index_path, "rb") as f:
            index = parse_index(f.read())
    return Archive(open_entries, index)


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw stream, so io.BufferedReader can buffer it."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


def s3_archive(client: Any, bucket: str, folder: str) -> Archive:
    """The archive in `s3://bucket/folder/` (`logstream.entries`, `logstream.index`)."""
    from datamover.s3 import is_not_found

    folder = folder.strip("/")
    try:
        index_data = client.get_object(Bucket=bucket, Key=f"{folder}/logstream.index")["Body"].read()
    except Exception as exc:
        if not is_not_found(exc):
            raise
        index_data = None

    def open_entries(offset: int) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": f"{folder}/logstream.entries"}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            body = client.get_object(**kwargs)["Body"]
        except Exception as exc:
            if is_not_found(exc):
                raise ArchiveError(f"s3://{bucket}/{folder}/logstream.entries does not exist") from None
            raise
        return io.BufferedReader(_BodyReader(body), buffer_size=1 << 20)  # type: ignore[return-value]

    return Archive(open_entries, parse_index(index_data))
