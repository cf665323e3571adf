"""Log streams for tests and benchmarks: protobuf descriptors and entries, the reference tool's
`stream.json` for the same stream, and the rows intermediate storage would hold for it."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format

from datamover.logdog.archive import StoredEntry
from datamover.logdog.proto import log_pb2

TEXT, BINARY, DATAGRAM = log_pb2.TEXT, log_pb2.BINARY, log_pb2.DATAGRAM
BASE_TIME = datetime(2026, 3, 5, 10, 20, 30, 123456, tzinfo=UTC)


def descriptor(
    name: str = "steps/compile/stdout",
    prefix: str = "bb/8812/1",
    stream_type: int = TEXT,
    content_type: str | None = None,
    tags: dict[str, str] | None = None,
    binary_file_ext: str = "",
) -> log_pb2.LogStreamDescriptor:
    desc = log_pb2.LogStreamDescriptor(
        prefix=prefix,
        name=name,
        stream_type=stream_type,
        content_type=content_type
        or {TEXT: "text/plain", BINARY: "application/octet-stream", DATAGRAM: "application/x-datagram"}[
            stream_type
        ],
        tags=tags or {},
        binary_file_ext=binary_file_ext,
    )
    desc.timestamp.FromDatetime(BASE_TIME)
    return desc


def entry(
    stream_index: int,
    prefix_index: int | None = None,
    sequence: int = 0,
    time_offset: tuple[int, int] | None = (0, 0),
    *,
    lines: list[tuple[bytes, str]] | None = None,
    binary: bytes | None = None,
    datagram: bytes | None = None,
    partial: tuple[int, int, bool] | None = None,
) -> log_pb2.LogEntry:
    e = log_pb2.LogEntry(
        stream_index=stream_index,
        prefix_index=stream_index if prefix_index is None else prefix_index,
        sequence=sequence,
    )
    if time_offset is not None:
        e.time_offset.seconds, e.time_offset.nanos = time_offset
        e.time_offset.SetInParent()
    if lines is not None:
        e.text.SetInParent()
        for value, delimiter in lines:
            e.text.lines.add(value=value, delimiter=delimiter)
    elif binary is not None:
        e.binary.data = binary
        e.binary.SetInParent()
    elif datagram is not None:
        e.datagram.data = datagram
        e.datagram.SetInParent()
        if partial is not None:
            e.datagram.partial.index, e.datagram.partial.size, e.datagram.partial.last = partial
            e.datagram.partial.SetInParent()
    return e


def time_offset(e: log_pb2.LogEntry) -> tuple[int, int] | None:
    return (e.time_offset.seconds, e.time_offset.nanos) if e.HasField("time_offset") else None


def stored_entry(e: log_pb2.LogEntry) -> StoredEntry:
    seconds, nanos = time_offset(e) or (None, None)
    return StoredEntry(e.stream_index, e.prefix_index, e.sequence, seconds, nanos, e.SerializeToString())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tool_entry(e: log_pb2.LogEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prefix_index": e.prefix_index,
        "stream_index": e.stream_index,
        "sequence": e.sequence,
    }
    if e.HasField("time_offset"):
        out["time_offset"] = e.time_offset.ToJsonString()
    content = e.WhichOneof("content")
    if content == "text":
        out["text"] = {
            "lines": [{"value_b64": _b64(ln.value), "delimiter": ln.delimiter} for ln in e.text.lines]
        }
    elif content == "binary":
        out["binary"] = {"data_b64": _b64(e.binary.data)}
    elif content == "datagram":
        dg: dict[str, Any] = {"data_b64": _b64(e.datagram.data)}
        if e.datagram.HasField("partial"):
            p = e.datagram.partial
            dg["partial"] = {"index": p.index, "size": p.size, "last": p.last}
        out["datagram"] = dg
    return out


@dataclass
class Stream:
    """A stream as intermediate storage returns it: entries in stream-index order, no duplicates."""

    desc: log_pb2.LogStreamDescriptor
    entries: list[log_pb2.LogEntry] = field(default_factory=list)
    project: str = "chromium"

    @property
    def descriptor_bytes(self) -> bytes:
        return self.desc.SerializeToString(deterministic=True)

    def stored(self) -> list[StoredEntry]:
        return [stored_entry(e) for e in self.entries]

    def tool_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "descriptor": json_format.MessageToDict(self.desc, preserving_proto_field_name=True),
            "entries": [tool_entry(e) for e in self.entries],
        }


def text_lines_stream(
    lines: list[bytes], per_entry: int = 3, desc: log_pb2.LogStreamDescriptor | None = None
) -> Stream:
    """Complete lines, `per_entry` to an entry, sequence = index of the entry's first line."""
    s = Stream(desc or descriptor())
    for i in range(0, len(lines), per_entry):
        chunk = lines[i : i + per_entry]
        n = len(s.entries)
        s.entries.append(
            entry(
                n, sequence=i, time_offset=(n // 4, (n % 4) * 250_000_000), lines=[(v, "\n") for v in chunk]
            )
        )
    return s


def random_stream(rng: random.Random, stream_type: int | None = None, n: int | None = None) -> Stream:
    """A stream with the oddities real Butlers and storage produce: partial lines, CRLF, empty lines,
    binary bytes, partial datagrams, gaps, prefix indices shared with other streams, unset or
    decreasing time offsets, out-of-order prefix indices and sequences, 0-2 tags."""
    stream_type = rng.choice([TEXT, BINARY, DATAGRAM]) if stream_type is None else stream_type
    tags = {f"k{i}": rng.choice(["", "v", "ünï"]) for i in range(rng.choice([0, 0, 1, 1, 2]))}
    desc = descriptor(
        name=f"steps/s{rng.randrange(1000)}/out",
        stream_type=stream_type,
        tags=tags,
        binary_file_ext=rng.choice(["", "", "txt", "bin"]),
    )
    s = Stream(desc)
    n = rng.randrange(0, 60) if n is None else n
    stream_index = prefix_index = sequence = 0
    ms = 0
    for _ in range(n):
        stream_index += 1 if rng.random() > 0.1 else rng.randrange(2, 5)  # gaps
        prefix_index += rng.randrange(1, 4)
        ms += rng.randrange(0, 700)
        to: tuple[int, int] | None = (ms // 1000, (ms % 1000) * 1_000_000)
        odd = rng.random()
        if odd < 0.05:
            to = None
        elif odd < 0.10:
            to = (max(0, ms // 1000 - 2), 5)  # goes back in time: LUCI raises it
        pi, sq = prefix_index, sequence
        odd = rng.random()
        if odd < 0.05:
            pi = max(0, prefix_index - rng.randrange(1, 6))  # out of order: LUCI drops the entry
        elif odd < 0.08:
            sq = max(0, sequence - rng.randrange(1, 4))
        if stream_type == TEXT:
            lines = []
            for _ in range(rng.randrange(1, 5)):
                value = bytes(rng.choice(b"abc xyz\t\xc3\xa9\xff") for _ in range(rng.randrange(0, 40)))
                lines.append((value, rng.choice(["\n", "\n", "\r\n", ""])))
            e = entry(stream_index, pi, sq, to, lines=lines)
            sequence += sum(1 for _, d in lines if d)
        elif stream_type == BINARY:
            data = rng.randbytes(rng.choice([1, 7, 100, 300, 2000]))
            e = entry(stream_index, pi, sq, to, binary=data)
            sequence += len(data)
        else:
            data = rng.randbytes(rng.randrange(0, 200))
            partial = None
            if rng.random() < 0.3:
                partial = (rng.randrange(0, 3), len(data) * 3, rng.random() < 0.4)
            e = entry(stream_index, pi, sq, to, datagram=data, partial=partial)
            sequence += 1
        s.entries.append(e)
    return s


TEXT_LINES = [f"line {i}: {'x' * (i % 7)}".encode() for i in range(40)]


def multiline_partial() -> Stream:
    s = Stream(descriptor(tags={"luci.step": "compile"}))
    s.entries = [
        entry(0, 0, 0, (0, 0), lines=[(b"hello world", "\n"), (b"second", "\r\n"), (b"partial ", "")]),
        entry(1, 2, 2, (0, 250_000_000), lines=[(b"continued", "\n"), (b"", "\n")]),
        entry(2, 5, 4, (1, 0), lines=[(b"\xff\xfe not utf-8", "\n")]),
        entry(3, 6, 5, None, lines=[(b"no time offset", "\n")]),
        entry(4, 9, 6, (0, 500), lines=[(b"time went back", "\n")]),
        entry(5, 8, 7, (2, 0), lines=[(b"prefix went back: dropped", "\n")]),
        entry(6, 10, 3, (2, 0), lines=[(b"sequence went back: dropped", "\n")]),
        entry(7, 11, 7, (3, 0), lines=[(b"last", "")]),
    ]
    return s


def binary_stream() -> Stream:
    s = Stream(descriptor(name="out/blob", stream_type=BINARY, binary_file_ext="bin"))
    offset = 0
    for i, size in enumerate([1, 127, 128, 16383, 16384, 70_000]):  # 1-, 2- and 3-byte frame headers
        s.entries.append(entry(i, i * 2, offset, (i, 0), binary=bytes((i + j) % 256 for j in range(size))))
        offset += size
    return s


def datagram_stream() -> Stream:
    s = Stream(descriptor(name="events", stream_type=DATAGRAM))
    s.entries = [
        entry(0, 0, 0, (0, 1), datagram=b"whole"),
        entry(1, 1, 1, (0, 2), datagram=b"part-a", partial=(0, 12, False)),
        entry(2, 2, 1, (0, 3), datagram=b"part-b", partial=(1, 12, True)),
        entry(3, 3, 2, (0, 4), datagram=b""),
        entry(4, 4, 3, (0, 5), datagram=b"\x00\x01", partial=(0, 0, False)),
    ]
    return s


def gap_stream() -> Stream:
    s = text_lines_stream(TEXT_LINES, per_entry=2)
    del s.entries[5:8]  # indices 5, 6, 7 missing: best-effort archival skips them
    return s


SAMPLES = {
    "text-multiline-partial-outoforder": multiline_partial,
    "text-plain": lambda: text_lines_stream(TEXT_LINES),
    "binary-frame-headers": binary_stream,
    "datagram-partials": datagram_stream,
    "text-gap": gap_stream,
    "empty": lambda: Stream(descriptor(name="nothing")),
    "two-tags": lambda: text_lines_stream(TEXT_LINES[:5], desc=descriptor(tags={"a": "1", "b": ""})),
    "negative-time": lambda: Stream(
        descriptor(), [entry(0, time_offset=(-2, -5), lines=[(b"before the start", "\n")])]
    ),
    "big-indices": lambda: Stream(
        descriptor(),
        [
            entry(2**40 + i, 2**50 + i, 2**33 + i, (10**6, 999_999_999), lines=[(b"x", "\n")])
            for i in range(3)
        ],
    ),
}
