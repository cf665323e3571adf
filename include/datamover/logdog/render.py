"""Rendering log entries as LUCI's `renderer.Renderer` does (go.chromium.org/luci/logdog/common/renderer).

* raw (the legacy archive data file, `logdog cat -raw`): text lines as `value + delimiter`, binary and
  datagram data concatenated as they are;
* for people (the default): each text line followed by "\\n"; binary data in hex; datagrams
  reassembled from their partials, each as `Datagram #<sequence> (<n> bytes)` and a hex dump in the
  format of Go's `encoding/hex.Dumper`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from datamover.logdog.proto import log_pb2


def raw_entry(data: bytes) -> bytes:
    """Raw rendering of one encoded LogEntry."""
    return raw(log_pb2.LogEntry.FromString(data))


def raw(entry: log_pb2.LogEntry) -> bytes:
    content = entry.WhichOneof("content")
    if content == "text":
        return b"".join(line.value + line.delimiter.encode() for line in entry.text.lines)
    if content == "binary":
        return entry.binary.data
    if content == "datagram":
        return entry.datagram.data
    return b""


def hex_dump(data: bytes) -> bytes:
    """Go's hex.Dump: `00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a              |hello world.|`."""
    out = []
    for start in range(0, len(data), 16):
        chunk = data[start : start + 16]
        out.append(f"{start & 0xFFFFFFFF:08x}  ")
        for i in range(16):
            cell = f"{chunk[i]:02x} " if i < len(chunk) else "   "
            out.append(cell + (" " if i == 7 else " |" if i == 15 else ""))
        out.append("".join(chr(b) if 32 <= b <= 126 else "." for b in chunk) + "|\n")
    return "".join(out).encode()


class Renderer:
    """Renders a stream's entries for people (or raw); feed entries in order with `render()`."""

    def __init__(
        self, raw: bool = False, timestamps: bool = False, base_time: datetime | None = None
    ) -> None:
        self.raw = raw
        self.timestamps = timestamps
        self.base_time = base_time or datetime(1970, 1, 1, tzinfo=UTC)
        self._datagram = bytearray()

    def _prefix(self, entry: log_pb2.LogEntry) -> bytes:
        if not self.timestamps:
            return b""
        offset = entry.time_offset
        when = self.base_time + timedelta(seconds=offset.seconds, microseconds=offset.nanos / 1000)
        return when.isoformat(timespec="microseconds").replace("+00:00", "Z").encode() + b" "

    def render(self, entry: log_pb2.LogEntry) -> bytes:
        if self.raw and not self.timestamps:
            return raw(entry)
        content = entry.WhichOneof("content")
        if content == "text":
            prefix = self._prefix(entry)
            end = None if self.raw else b"\n"
            return b"".join(
                prefix + line.value + (end if end is not None else line.delimiter.encode())
                for line in entry.text.lines
            )
        if content == "binary":
            return entry.binary.data if self.raw else entry.binary.data.hex().encode()
        if content == "datagram":
            dg = entry.datagram
            if self.raw:
                return dg.data
            self._datagram += dg.data
            if dg.HasField("partial") and not dg.partial.last:
                return b""
            size = len(self._datagram)
            out = f"Datagram #{entry.sequence} ({size} {'byte' if size == 1 else 'bytes'})\n".encode()
            out += hex_dump(bytes(self._datagram)) + b"\n"
            self._datagram.clear()
            return out
        return b""

    def render_all(self, entries: Iterable[log_pb2.LogEntry]) -> Iterator[bytes]:
        for entry in entries:
            if chunk := self.render(entry):
                yield chunk
