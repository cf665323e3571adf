"""RecordIO framing as LUCI writes it (go.chromium.org/luci/common/data/recordio).

A frame is `uvarint(len(payload))` followed by the payload: little-endian base-128, 7 bits a byte, the
high bit set on every byte but the last, minimal length. No magic, checksum, trailer or padding.
Readers refuse a frame larger than their `max_size` (LUCI's archive reader uses 20 MiB).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from datamover.errors import DataMoverError
from datamover.units import MIB

# logdog/common/storage/archive/storage.go: recordio.NewReader(r, 2*types.MaxLogEntryDataSize)
ARCHIVE_MAX_FRAME = 2 * 10 * MIB
# types.MaxButlerLogBundleSize: the largest Butler message frame (and decompressed bundle)
BUTLER_MAX_FRAME = 10 * MIB


class FrameError(DataMoverError):
    """The bytes are not a well-formed sequence of RecordIO frames."""


_ONE_BYTE = [bytes((i,)) for i in range(0x80)]


def uvarint(value: int) -> bytes:
    """Minimal unsigned LEB128 encoding of `value` (0 <= value < 2**64)."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x200000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    if value < 0x10000000:
        return bytes(
            ((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, ((value >> 14) & 0x7F) | 0x80, value >> 21)
        )
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """One frame: header + payload."""
    return uvarint(len(payload)) + payload


def header_size(payload_size: int) -> int:
    """Bytes of the uvarint header of a frame of `payload_size` bytes (recordio.FrameHeaderSize)."""
    return len(uvarint(payload_size))


def read_uvarint(data: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """(value, position after it) of the uvarint at `pos`; FrameError if truncated or over 64 bits."""
    result = shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise FrameError("truncated frame header (uvarint)")
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            raise FrameError("frame header overflows 64 bits")
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def split_frames(data: bytes | bytearray | memoryview, max_size: int) -> list[bytes]:
    """Every frame payload of `data`, which must end exactly at a frame boundary."""
    view = memoryview(data)
    frames = []
    pos = 0
    while pos < len(view):
        size, pos = read_uvarint(view, pos)
        if size > max_size:
            raise FrameError(f"frame of {size} bytes exceeds the {max_size}-byte limit")
        if pos + size > len(view):
            raise FrameError(f"incomplete frame: {size} bytes announced, {len(view) - pos} left")
        frames.append(bytes(view[pos : pos + size]))
        pos += size
    return frames


class FrameReader:
    """Frames from a binary stream, one at a time, holding at most one frame in memory."""

    def __init__(self, stream: BinaryIO, max_size: int = ARCHIVE_MAX_FRAME) -> None:
        self.stream = stream
        self.max_size = max_size
        self.offset = 0  # bytes consumed so far = offset of the next frame's header

    def _read_header(self) -> int | None:
        result = shift = 0
        first = True
        while True:
            byte = self.stream.read(1)
            if not byte:
                if first:
                    return None  # clean end of stream
                raise FrameError(f"truncated frame header at offset {self.offset}")
            first = False
            self.offset += 1
            value = byte[0]
            if shift == 63 and value > 1:
                raise FrameError(f"frame header at offset {self.offset} overflows 64 bits")
            result |= (value & 0x7F) << shift
            if value < 0x80:
                return result
            shift += 7

    def read_frame(self) -> tuple[int, bytes] | None:
        """(offset of the frame's header, payload), or None at the end of the stream."""
        start = self.offset
        size = self._read_header()
        if size is None:
            return None
        if size > self.max_size:
            raise FrameError(f"frame at offset {start} is {size} bytes, over the {self.max_size}-byte limit")
        payload = self.stream.read(size)
        self.offset += len(payload)
        if len(payload) != size:
            raise FrameError(
                f"incomplete frame at offset {start}: {size} bytes announced, {len(payload)} read"
            )
        return start, payload

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while (item := self.read_frame()) is not None:
            yield item
