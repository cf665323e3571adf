"""Archive writer pieces without the reference tool: framing, hand-written encoders against the
generated protobuf bindings, LUCI's ordering guard and index rules."""

from __future__ import annotations

import io
import random

import pytest

from datamover.logdog import wire
from datamover.logdog.archive import ArchiveWriter, IndexRules, StoredEntry
from datamover.logdog.proto import log_pb2
from datamover.logdog.recordio import FrameError, FrameReader, frame, read_uvarint, split_frames, uvarint
from tests.logdog.streams import entry as log_entry
from tests.logdog.streams import stored_entry


@pytest.mark.parametrize("n", [0, 1, 127, 128, 16383, 16384, 2**32, 2**64 - 1])
def test_uvarint_is_minimal_leb128(n: int) -> None:
    encoded = uvarint(n)
    assert len(encoded) == max(1, (n.bit_length() + 6) // 7)
    assert read_uvarint(encoded + b"tail") == (n, len(encoded))


def test_frames_round_trip_and_reject_garbage() -> None:
    payloads = [b"", b"a", b"x" * 200, b"y" * 20000]
    data = b"".join(frame(p) for p in payloads)
    assert split_frames(data, 1 << 20) == payloads
    assert [p for _, p in FrameReader(io.BytesIO(data))] == payloads
    with pytest.raises(FrameError, match="incomplete"):
        split_frames(data[:-1], 1 << 20)
    with pytest.raises(FrameError, match="limit"):
        split_frames(data, 1000)
    with pytest.raises(FrameError, match="truncated"):
        split_frames(b"\x80", 100)


def test_index_matches_protobuf_for_any_values_and_time_offsets() -> None:
    """Every entry indexed: the index is the LogIndex protobuf builds from the same values, whatever
    they are (zeros omitted, huge values, a zero time offset still present, negative durations), fed
    in batches of every size."""
    rng = random.Random(7)
    desc = log_pb2.LogStreamDescriptor(prefix="p", name="n")
    rows, expected = [], log_pb2.LogIndex(desc=desc)
    seq = prefix = 0
    for i in range(3000):
        seq += rng.choice([0, 1, 2**40])
        prefix += rng.choice([0, 1, 2**50])
        to = rng.choice([None, (0, 0), (5, 0), (0, 7), (rng.randrange(2**33), rng.randrange(10**9))])
        if i % 500 == 7:
            to = (-(2**20), -5)  # raised to the previous time offset by the ordering guard
        e = log_entry(i, prefix, seq, to, binary=bytes(rng.randrange(300)))
        rows.append(stored_entry(e))
    entries, index = io.BytesIO(), io.BytesIO()
    writer = ArchiveWriter(desc.SerializeToString(), entries, index)
    fed = 0
    while fed < len(rows):
        size = rng.choice([1, 2, 100, 1000])
        writer.add_batch(rows[fed : fed + size])
        fed += size
    stats = writer.finish()
    frames = list(FrameReader(io.BytesIO(entries.getvalue())))[1:]
    assert len(frames) == len(rows) == stats.index_entries
    for (frame_offset, payload), row in zip(frames, rows, strict=True):
        e = expected.entries.add(
            offset=frame_offset, sequence=row.sequence, prefix_index=row.prefix_index, stream_index=row[0]
        )
        entry = log_pb2.LogEntry.FromString(payload)
        if entry.HasField("time_offset"):
            e.time_offset.CopyFrom(entry.time_offset)
    expected.last_prefix_index, expected.last_stream_index = rows[-1].prefix_index, len(rows) - 1
    expected.log_entry_count = len(rows)
    assert index.getvalue() == expected.SerializeToString()
    raised, latest = 0, 0  # entries whose time offset (unset = 0) is below an earlier one's
    for row in rows:
        ns = wire.as_nanoseconds(row.time_offset)
        raised, latest = (raised + 1, latest) if ns < latest else (raised, ns)
    assert stats.adjusted == raised > 0


def test_time_offset_rewrite_keeps_the_rest_of_the_entry() -> None:
    e = log_pb2.LogEntry(prefix_index=3, stream_index=2, sequence=9)
    e.text.lines.add(value=b"x", delimiter="\n")
    e.time_offset.seconds = 1
    without = log_pb2.LogEntry()
    without.CopyFrom(e)
    without.ClearField("time_offset")
    assert wire.strip_time_offset(e.SerializeToString()) == without.SerializeToString()
    e.time_offset.seconds, e.time_offset.nanos = 5, 7
    assert wire.with_time_offset(without.SerializeToString(), (5, 7)) == e.SerializeToString()


@pytest.mark.parametrize(
    ("offset", "ns"),
    [
        (None, 0),
        ((1, 5), 1_000_000_005),
        ((-1, -5), -1_000_000_005),
        ((1, -5), 999_999_995),
        ((2**62, 0), 2**63 - 1),  # saturates like Go's AsDuration
        ((-(2**62), 0), -(2**63)),
    ],
)
def test_as_nanoseconds_follows_durationpb(offset: tuple[int, int] | None, ns: int) -> None:
    assert wire.as_nanoseconds(offset) == ns


def test_from_nanoseconds_is_durationpb_new() -> None:
    assert wire.from_nanoseconds(1_500_000_000) == (1, 500_000_000)
    assert wire.from_nanoseconds(-1_500_000_000) == (-1, -500_000_000)


def fake(stream_index: int, prefix_index: int, size: int) -> StoredEntry:
    return StoredEntry(stream_index, prefix_index, 0, None, None, b"\x20" + bytes(size - 1))


def indexed_positions(index: bytes, entries: bytes) -> list[int]:
    offsets = [e.offset for e in log_pb2.LogIndex.FromString(index).entries]
    frame_offsets = [off for off, _ in FrameReader(io.BytesIO(entries))][1:]
    return [frame_offsets.index(o) for o in offsets]


def test_index_rules_worked_example() -> None:
    """The logdog-ref README's example: byte range 64 and prefix range 4 index entries 0, 1, 3, 5, 7."""
    prefixes = [0, 2, 5, 6, 9, 10, 11, 12]
    sizes = [52, 61, 37, 115, 20, 20, 25, 41]
    entries, index = io.BytesIO(), io.BytesIO()
    writer = ArchiveWriter(b"\x0a\x01p", entries, index, IndexRules(prefix_index_range=4, byte_range=64))
    writer.add_all(fake(i, p, s) for i, (p, s) in enumerate(zip(prefixes, sizes, strict=True)))
    stats = writer.finish()
    assert indexed_positions(index.getvalue(), entries.getvalue()) == [0, 1, 3, 5, 7]
    parsed = log_pb2.LogIndex.FromString(index.getvalue())
    assert (parsed.last_prefix_index, parsed.last_stream_index, parsed.log_entry_count) == (12, 7, 8)
    assert stats.index_entries == 5


def test_default_rules_index_every_entry_and_the_last_one_always() -> None:
    entries, index = io.BytesIO(), io.BytesIO()
    writer = ArchiveWriter(b"", entries, index, IndexRules(stream_index_range=10))
    writer.add_all(fake(i, i, 10) for i in range(25))
    writer.finish()
    assert indexed_positions(index.getvalue(), entries.getvalue()) == [0, 10, 20, 24]
    entries, index = io.BytesIO(), io.BytesIO()
    writer = ArchiveWriter(b"", entries, index)
    writer.add_all(fake(i, i, 10) for i in range(5))
    writer.finish()
    assert indexed_positions(index.getvalue(), entries.getvalue()) == [0, 1, 2, 3, 4]


def test_ordering_guard_drops_and_raises_like_luci() -> None:
    entries, index = io.BytesIO(), io.BytesIO()
    writer = ArchiveWriter(b"", entries, index)
    rows = [
        StoredEntry(0, 5, 0, 2, 0, b"\x0a\x02\x08\x02"),
        StoredEntry(1, 4, 1, 3, 0, b"\x0a\x02\x08\x03"),  # prefix went back: dropped
        StoredEntry(2, 6, 1, 1, 0, b"\x0a\x02\x08\x01\x10\x06"),  # time went back: raised to 2 s
        StoredEntry(4, 7, 0, 5, 0, b"\x0a\x02\x08\x05"),  # sequence went back: dropped
    ]
    writer.add_all(rows)
    stats = writer.finish()
    assert (stats.log_entry_count, stats.discarded, stats.adjusted, stats.gaps) == (2, 2, 1, 1)
    frames = split_frames(entries.getvalue(), 1 << 20)
    assert frames[2] == b"\x0a\x02\x08\x02\x10\x06"
