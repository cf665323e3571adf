"""The LogDog archive writer: `logstream.entries`, `logstream.index` and the optional data file,
byte-identical to what LUCI's `archive.Archive` writes for the same stream and index rules.

The formats (from go.chromium.org/luci/logdog/common/archive):

* entries: a RecordIO frame holding the LogStreamDescriptor, then one frame per LogEntry;
* index: one bare LogIndex message {desc 1, entries 2, last_prefix_index 3, last_stream_index 4,
  log_entry_count 5}; the writer streams it (desc first, index entries as they are decided, the three
  counters last), so memory stays bounded whatever the number of index entries;
* data (legacy, optional): the raw rendering of the archived entries (see `render.raw`).

Entries come in stream-index order from intermediate storage as `StoredEntry` rows (the table's
columns, so the rows PostgreSQL sends need no conversion) whose `data` is the canonical encoding of the
LogEntry (what the collector stored after re-encoding it). Like LUCI's `safeLogEntrySource`, an entry
whose prefix index, stream index or sequence is lower than the previous accepted entry's is discarded,
and a time offset lower than the previous one is raised to it. Index rules (`IndexRules`) decide which
entries get an index entry; LUCI's indexBuilder rules apply exactly.

The writer takes entries a batch at a time (`add_batch`): the per-entry work is a few comparisons in
one loop over local variables, the frames of a batch are joined once, and the batch's index entries
are built by the protobuf runtime as one LogIndex holding only them, whose encoding is exactly the
run of `entries` fields (field 2) the index needs at that point.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple, Protocol

from datamover.logdog import wire
from datamover.logdog.proto import log_pb2
from datamover.logdog.recordio import uvarint
from datamover.logdog.render import raw_entry
from datamover.units import MIB

MAX_LOG_CONTENT_SIZE = 5 * 1024 * MIB  # archive.MaxLogContentSize: a stream is cut after 5 GiB of entries
ENTRIES_FILE = "logstream.entries"
INDEX_FILE = "logstream.index"


class Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class IndexRules:
    """archive.Manifest's StreamIndexRange / PrefixIndexRange / ByteRange (the archivist's
    -archive-index-{stream,prefix,byte}-range). All <= 0 means: index every entry."""

    stream_index_range: int = 0
    prefix_index_range: int = 0
    byte_range: int = 0

    def effective(self) -> IndexRules:
        if self.stream_index_range <= 0 and self.prefix_index_range <= 0 and self.byte_range <= 0:
            return IndexRules(stream_index_range=1)
        return self

    def flags(self) -> list[str]:
        """The same rules as `logdogref` command-line flags."""
        return [
            f"--stream-index-range={self.stream_index_range}",
            f"--prefix-index-range={self.prefix_index_range}",
            f"--byte-range={self.byte_range}",
        ]


class StoredEntry(NamedTuple):
    """One log entry as intermediate storage holds it (the columns of `log_entries`, in order)."""

    stream_index: int
    prefix_index: int
    sequence: int
    to_seconds: int | None  # the time_offset Duration's seconds and nanos; None when it is unset
    to_nanos: int | None
    data: bytes  # canonical LogEntry encoding

    @property
    def time_offset(self) -> wire.TimeOffset:
        return None if self.to_seconds is None else (self.to_seconds, self.to_nanos or 0)


# Entries per batch when `add_all` is fed one entry at a time.
_BATCH = 4096


@dataclass
class ArchiveStats:
    entries_size: int = 0
    index_size: int = 0
    data_size: int = 0
    log_entry_count: int = 0  # entries archived
    last_stream_index: int = -1  # of the last archived entry (-1: none)
    last_prefix_index: int = 0
    index_entries: int = 0
    discarded: int = 0  # out-of-order entries dropped
    adjusted: int = 0  # time offsets raised
    truncated: bool = False  # stopped after MAX_LOG_CONTENT_SIZE
    gaps: int = 0  # stream indices missing between archived entries (or before the first)
    warnings: list[str] = field(default_factory=list)


class _Buffered:
    """Collects small writes and hands `flush_at`-sized chunks to a sink."""

    __slots__ = ("buf", "flush_at", "sink", "size")

    def __init__(self, sink: Sink, flush_at: int) -> None:
        self.sink = sink
        self.flush_at = flush_at
        self.buf = bytearray()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if not self.buf and len(data) >= self.flush_at:
            self.sink.write(data)  # a whole batch's frames: no need to copy them into the buffer
            return
        self.buf += data
        if len(self.buf) >= self.flush_at:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.sink.write(bytes(self.buf))
            self.buf.clear()


class ArchiveWriter:
    """Feed entries with `add()` in stream-index order, then `finish()`.

    `entries`, `index` and `data` receive the three files' bytes in chunks of about `chunk_size`.
    `add()` returns False once the stream is cut at `max_content_size` (stop feeding then).
    """

    MAX_WARNINGS = 20

    def __init__(
        self,
        descriptor: bytes,
        entries: Sink,
        index: Sink | None = None,
        rules: IndexRules | None = None,
        *,
        data: Sink | None = None,
        max_content_size: int = MAX_LOG_CONTENT_SIZE,
        chunk_size: int = MIB,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.rules = (rules or IndexRules()).effective()
        self.stats = ArchiveStats()
        self.max_content_size = max_content_size
        self._warn = warn
        self._entries = _Buffered(entries, chunk_size)
        self._index = _Buffered(index, chunk_size) if index is not None else None
        self._data = _Buffered(data, chunk_size) if data is not None else None
        self._entries.write(uvarint(len(descriptor)) + descriptor)
        if self._index is not None:
            self._index.write(wire.bytes_field(1, descriptor))
        # safeLogEntrySource state
        self._last_prefix = self._last_stream = self._last_sequence = 0
        self._last_time = 0
        # indexBuilder state
        self._indexed_any = False
        self._last_indexed_stream = self._last_indexed_prefix = 0
        self._last_bytes = 0
        # the last entry not indexed yet: (offset, sequence, prefix, stream index, seconds, nanos)
        self._pending: tuple[int, int, int, int, int | None, int | None] | None = None
        r = self.rules
        self._rules = (r.stream_index_range, r.prefix_index_range, r.byte_range)
        self._content_bytes = 0
        self._done = False
        self._next_expected = 0

    def warn(self, message: str) -> None:
        if len(self.stats.warnings) < self.MAX_WARNINGS:
            self.stats.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def add(self, e: StoredEntry) -> bool:
        """One entry; False once the stream is cut (`add_batch` is the fast way)."""
        return self.add_batch((e,))

    def add_all(self, entries: Iterable[StoredEntry]) -> None:
        it = iter(entries)
        while batch := list(islice(it, _BATCH)):
            if not self.add_batch(batch):
                break

    def add_batch(self, rows: Sequence[StoredEntry]) -> bool:
        """Entries in stream-index order (tuples shaped like `StoredEntry`); False once the stream is
        cut at `max_content_size` (stop feeding then)."""
        if self._done:
            return False
        stats = self.stats
        last_prefix, last_stream, last_sequence = self._last_prefix, self._last_stream, self._last_sequence
        last_time = self._last_time
        next_expected = self._next_expected
        content, limit = self._content_bytes, self.max_content_size
        offset = self._entries.size  # where the next frame starts in the entries file
        frames: list[bytes] = []
        push = frames.append
        data_file = self._data
        rendered: list[bytes] = []

        index = self._index is not None
        batch_index = log_pb2.LogIndex()
        add_index = batch_index.entries.add
        stream_range, prefix_range, byte_range = self._rules
        indexed_any, pending = self._indexed_any, self._pending
        last_indexed_stream, last_indexed_prefix = self._last_indexed_stream, self._last_indexed_prefix
        last_bytes = self._last_bytes

        count = gaps = 0
        for row in rows:
            stream_index, prefix_index, sequence, seconds, nanos, data = row
            # safeLogEntrySource.normalizeLogEntry
            if prefix_index < last_prefix or stream_index < last_stream or sequence < last_sequence:
                self._discard(row, last_prefix, last_stream, last_sequence)
                continue
            last_prefix, last_stream, last_sequence = prefix_index, stream_index, sequence
            ns = 0 if seconds is None else wire.duration_ns(seconds, nanos or 0)
            if ns < last_time:
                seconds, nanos = wire.from_nanoseconds(last_time)
                data = wire.with_time_offset(data, (seconds, nanos))
                stats.adjusted += 1
                self.warn(f"Raising the time offset of entry {stream_index} ({ns} < {last_time} ns)")
            else:
                last_time = ns
            if stream_index > next_expected:
                gaps += stream_index - next_expected
            next_expected = stream_index + 1

            # indexBuilder.addLogEntry
            size = len(data)
            if index:
                if byte_range > 0:
                    last_bytes += size
                if indexed_any and not (
                    (stream_range > 0 and stream_index - last_indexed_stream >= stream_range)
                    or (prefix_range > 0 and prefix_index - last_indexed_prefix >= prefix_range)
                    or (byte_range > 0 and last_bytes >= byte_range)
                ):
                    pending = (offset, sequence, prefix_index, stream_index, seconds, nanos)
                else:
                    if indexed_any:
                        last_bytes = 0
                    indexed_any = True
                    _index_entry(add_index, offset, sequence, prefix_index, stream_index, seconds, nanos)
                    pending = None
                    last_indexed_stream, last_indexed_prefix = stream_index, prefix_index
            count += 1
            head = uvarint(size)
            push(head)
            push(data)
            offset += len(head) + size
            if data_file is not None:
                rendered.append(raw_entry(data))
            content += size
            if content > limit:
                stats.truncated = True
                self._done = True
                self.warn(f"Log stream truncated: it exceeded {limit} bytes of log entries")
                break

        if count:
            stats.log_entry_count += count
            stats.last_stream_index, stats.last_prefix_index = last_stream, last_prefix
            self._entries.write(b"".join(frames))
            if index and batch_index.entries:
                stats.index_entries += len(batch_index.entries)
                self._index.write(batch_index.SerializeToString())
            if data_file is not None:
                data_file.write(b"".join(rendered))
        stats.gaps += gaps
        self._last_prefix, self._last_stream, self._last_sequence = last_prefix, last_stream, last_sequence
        self._last_time, self._next_expected, self._content_bytes = last_time, next_expected, content
        self._indexed_any, self._pending, self._last_bytes = indexed_any, pending, last_bytes
        self._last_indexed_stream, self._last_indexed_prefix = last_indexed_stream, last_indexed_prefix
        return not self._done

    def _discard(self, e: StoredEntry, last_prefix: int, last_stream: int, last_sequence: int) -> None:
        stream_index, prefix_index, sequence = e[0], e[1], e[2]
        if prefix_index < last_prefix:
            reason = f"prefix index is out of order ({prefix_index} < {last_prefix})"
        elif stream_index < last_stream:
            reason = f"stream index is out of order ({stream_index} < {last_stream})"
        else:
            reason = f"sequence is out of order ({sequence} < {last_sequence})"
        self.stats.discarded += 1
        self.warn(f"Discarding out-of-order log stream entry {stream_index}: {reason}")

    def finish(self) -> ArchiveStats:
        """Flush everything; the index ends with the pending last entry and the three counters."""
        self._done = True
        stats = self.stats
        self._entries.flush()
        stats.entries_size = self._entries.size
        if self._index is not None:
            if self._pending is not None:
                last = log_pb2.LogIndex()
                _index_entry(last.entries.add, *self._pending)
                self._index.write(last.SerializeToString())
                stats.index_entries += 1
                self._pending = None
            if stats.log_entry_count:
                self._index.write(
                    wire.varint_field(3, stats.last_prefix_index)
                    + wire.varint_field(4, stats.last_stream_index)
                    + wire.varint_field(5, stats.log_entry_count)
                )
            self._index.flush()
            stats.index_size = self._index.size
        if self._data is not None:
            self._data.flush()
            stats.data_size = self._data.size
        return stats


def _index_entry(
    add: Callable[..., object],
    offset: int,
    sequence: int,
    prefix_index: int,
    stream_index: int,
    seconds: int | None,
    nanos: int | None,
) -> None:
    """Append a LogIndex.Entry; its time_offset is set (even to zero) exactly when the entry has one."""
    if seconds is None:
        add(offset=offset, sequence=sequence, prefix_index=prefix_index, stream_index=stream_index)
    else:
        add(
            offset=offset,
            sequence=sequence,
            prefix_index=prefix_index,
            stream_index=stream_index,
            time_offset={"seconds": seconds, "nanos": nanos or 0},
        )


def data_file_name(binary_file_ext: str) -> str:
    """The legacy archivist's data file: `data.<binary_file_ext or "bin">`."""
    return f"data.{binary_file_ext or 'bin'}"
