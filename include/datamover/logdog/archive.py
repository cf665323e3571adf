"""The LogDog archive writer: `logstream.entries`, `logstream.index` and the optional data file,
byte-identical to what LUCI's `archive.Archive` writes for the same stream and index rules.

The formats (from go.chromium.org/luci/logdog/common/archive):

* entries: a RecordIO frame holding the LogStreamDescriptor, then one frame per LogEntry;
* index: one bare LogIndex message {desc 1, entries 2, last_prefix_index 3, last_stream_index 4,
  log_entry_count 5}; the writer streams it (desc first, index entries as they are decided, the three
  counters last), so memory stays bounded whatever the number of index entries;
* data (legacy, optional): the raw rendering of the archived entries (see `render.raw`).

Entries come in stream-index order from intermediate storage as `StoredEntry` rows whose `data` is
the canonical encoding of the LogEntry (what the collector stored after re-encoding it). Like LUCI's
`safeLogEntrySource`, an entry whose prefix index, stream index or sequence is lower than the previous
accepted entry's is discarded, and a time offset lower than the previous one is raised to it. Index
rules (`IndexRules`) decide which entries get an index entry; LUCI's indexBuilder rules apply exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from datamover.logdog import wire
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
    """One log entry as intermediate storage holds it."""

    stream_index: int
    prefix_index: int
    sequence: int
    time_offset: wire.TimeOffset  # (seconds, nanos) of the Duration, None when unset
    data: bytes  # canonical LogEntry encoding


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
        self.buf += data
        self.size += len(data)
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
        self._pending: tuple[int, int, int, int, wire.TimeOffset] | None = None
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
        if self._done:
            return False
        stream_index, prefix_index, sequence, time_offset, data = e
        stats = self.stats
        # safeLogEntrySource.normalizeLogEntry
        if (
            prefix_index < self._last_prefix
            or stream_index < self._last_stream
            or sequence < self._last_sequence
        ):
            self._discard(e)
            return True
        self._last_prefix, self._last_stream, self._last_sequence = prefix_index, stream_index, sequence
        ns = wire.as_nanoseconds(time_offset)
        if ns < self._last_time:
            time_offset = wire.from_nanoseconds(self._last_time)
            data = wire.with_time_offset(data, time_offset)
            stats.adjusted += 1
            self.warn(f"Raising the time offset of entry {stream_index} ({ns} < {self._last_time} ns)")
        else:
            self._last_time = ns
        if stream_index > self._next_expected:
            stats.gaps += stream_index - self._next_expected
        self._next_expected = stream_index + 1

        # indexBuilder.addLogEntry
        size = len(data)
        entries = self._entries
        if self._index is not None:
            offset = entries.size
            stream_range, prefix_range, byte_range = self._rules
            if byte_range > 0:
                self._last_bytes += size
            if self._indexed_any and not (
                (stream_range > 0 and stream_index - self._last_indexed_stream >= stream_range)
                or (prefix_range > 0 and prefix_index - self._last_indexed_prefix >= prefix_range)
                or (byte_range > 0 and self._last_bytes >= byte_range)
            ):
                self._pending = (offset, sequence, prefix_index, stream_index, time_offset)
            else:
                if self._indexed_any:
                    self._last_bytes = 0
                self._indexed_any = True
                entry = wire.index_entry(offset, sequence, prefix_index, stream_index, time_offset)
                self._index.write(b"\x12" + uvarint(len(entry)) + entry)
                stats.index_entries += 1
                self._pending = None
                self._last_indexed_stream, self._last_indexed_prefix = stream_index, prefix_index
        stats.log_entry_count += 1
        stats.last_stream_index = stream_index
        stats.last_prefix_index = prefix_index

        entries.write(uvarint(size) + data)
        if self._data is not None:
            self._data.write(raw_entry(data))

        self._content_bytes += size
        if self._content_bytes > self.max_content_size:
            stats.truncated = True
            self._done = True
            self.warn(f"Log stream truncated: it exceeded {self.max_content_size} bytes of log entries")
            return False
        return True

    def _discard(self, e: StoredEntry) -> None:
        if e.prefix_index < self._last_prefix:
            reason = f"prefix index is out of order ({e.prefix_index} < {self._last_prefix})"
        elif e.stream_index < self._last_stream:
            reason = f"stream index is out of order ({e.stream_index} < {self._last_stream})"
        else:
            reason = f"sequence is out of order ({e.sequence} < {self._last_sequence})"
        self.stats.discarded += 1
        self.warn(f"Discarding out-of-order log stream entry {e.stream_index}: {reason}")

    def add_all(self, entries: Iterable[StoredEntry]) -> None:
        for e in entries:
            if not self.add(e):
                break

    def finish(self) -> ArchiveStats:
        """Flush everything; the index ends with the pending last entry and the three counters."""
        self._done = True
        stats = self.stats
        self._entries.flush()
        stats.entries_size = self._entries.size
        if self._index is not None:
            if self._pending is not None:
                self._index.write(wire.bytes_field(2, wire.index_entry(*self._pending)))
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


def data_file_name(binary_file_ext: str) -> str:
    """The legacy archivist's data file: `data.<binary_file_ext or "bin">`."""
    return f"data.{binary_file_ext or 'bin'}"
