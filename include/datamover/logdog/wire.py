"""The few protobuf wire encodings the archive writer emits itself, exactly as Go's protobuf does.

The archive writer needs these for the index's own fields and to rewrite an entry's time offset;
tests check every encoder against the generated bindings. Proto3 rules: fields in field-number
order, scalars equal to 0 omitted, a set message field written even when empty, negative int32/int64
as 10-byte two's-complement varints.
"""

from __future__ import annotations

from datamover.logdog.recordio import uvarint

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NANOS_PER_SECOND = 1_000_000_000

# A LogEntry's time_offset as stored: (seconds, nanos) of the Duration, or None when unset.
TimeOffset = tuple[int, int] | None


def varint(value: int) -> bytes:
    """int32/int64/uint64 varint (negative values as their 64-bit two's complement)."""
    return uvarint(value & 0xFFFFFFFFFFFFFFFF if value < 0 else value)


def tag(field: int, wire_type: int) -> bytes:
    return uvarint((field << 3) | wire_type)


def varint_field(field: int, value: int) -> bytes:
    """A proto3 scalar varint field; empty when `value` is 0 (the default is not written)."""
    return tag(field, 0) + varint(value) if value else b""


def bytes_field(field: int, payload: bytes) -> bytes:
    """A length-delimited field, always written (a set message field or a non-empty string/bytes)."""
    return tag(field, 2) + uvarint(len(payload)) + payload


def duration(offset: tuple[int, int]) -> bytes:
    """google.protobuf.Duration {seconds = 1, nanos = 2}."""
    seconds, nanos = offset
    return varint_field(1, seconds) + varint_field(2, nanos)


def _div_trunc(a: int, b: int) -> int:
    """Go's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _wrap64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= (1 << 63) else value


def as_nanoseconds(offset: TimeOffset) -> int:
    """durationpb's AsDuration() as a Go time.Duration (int64 ns, saturated on overflow); unset = 0."""
    return 0 if offset is None else duration_ns(*offset)


def duration_ns(seconds: int, nanos: int) -> int:
    """`as_nanoseconds` of a set Duration, from its two fields (as intermediate storage keeps them)."""
    if -9_000_000_000 < seconds < 9_000_000_000 and -(2**31) <= nanos < 2**31:
        return seconds * NANOS_PER_SECOND + nanos  # far from int64 overflow: no wrapping to model
    d = _wrap64(seconds * NANOS_PER_SECOND)
    overflow = _div_trunc(d, NANOS_PER_SECOND) != seconds
    d = _wrap64(d + nanos)
    overflow = overflow or (seconds < 0 and nanos < 0 and d > 0) or (seconds > 0 and nanos > 0 and d < 0)
    if overflow:
        if seconds < 0:
            return INT64_MIN
        if seconds > 0:
            return INT64_MAX
    return d


def from_nanoseconds(ns: int) -> tuple[int, int]:
    """durationpb.New(d): seconds and nanos of the same sign, truncated toward zero."""
    seconds = _div_trunc(ns, NANOS_PER_SECOND)
    return seconds, ns - seconds * NANOS_PER_SECOND


def strip_time_offset(entry: bytes) -> bytes:
    """A canonically encoded LogEntry without its time_offset (field 1, always first when present)."""
    if entry[:1] != b"\x0a":
        return entry
    length = shift = 0
    pos = 1
    while True:
        byte = entry[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return entry[pos + length :]


def with_time_offset(entry: bytes, offset: tuple[int, int]) -> bytes:
    """`entry` (canonical LogEntry bytes) with its time_offset replaced by `offset`."""
    return bytes_field(1, duration(offset)) + strip_time_offset(entry)
