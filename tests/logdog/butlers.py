"""Butler messages for tests and benchmarks: streams cut into bundles as a Butler publishes them."""

from __future__ import annotations

import random
from collections.abc import Iterator

from datamover.logdog.butler import PREFIX_SECRET_LENGTH, encode_message
from datamover.logdog.proto import butler_pb2, log_pb2
from tests.logdog.streams import Stream

SECRET = b"s" * PREFIX_SECRET_LENGTH


def bundle(
    project: str,
    prefix: str,
    parts: list[tuple[log_pb2.LogStreamDescriptor, list[log_pb2.LogEntry], int | None]],
    secret: bytes = SECRET,
) -> butler_pb2.ButlerLogBundle:
    """One bundle: per stream (descriptor, contiguous entries, terminal index or None)."""
    b = butler_pb2.ButlerLogBundle(project=project, prefix=prefix, secret=secret)
    b.timestamp.GetCurrentTime()
    for desc, logs, terminal_index in parts:
        be = b.entries.add()
        be.desc.CopyFrom(desc)
        be.desc.prefix = ""  # the Butler leaves it to the bundle's prefix
        be.logs.extend(logs)
        if terminal_index is not None:
            be.terminal = True
            be.terminal_index = terminal_index
    return b


def contiguous_blocks(entries: list[log_pb2.LogEntry], size: int) -> Iterator[list[log_pb2.LogEntry]]:
    """Runs of consecutive stream indices, at most `size` entries each (a bundle entry's rule)."""
    block: list[log_pb2.LogEntry] = []
    for e in entries:
        if block and (len(block) >= size or e.stream_index != block[-1].stream_index + 1):
            yield block
            block = []
        block.append(e)
    if block:
        yield block


def butler_messages(
    stream: Stream,
    per_bundle: int = 5,
    terminate: bool = True,
    compress: bool = False,
    terminal_index: int | None = None,
    secret: bytes = SECRET,
) -> list[bytes]:
    """The messages a Butler would publish for `stream`; the last one carries the terminal index
    (the last entry's stream index unless given, e.g. above a gap at the end)."""
    blocks = list(contiguous_blocks(stream.entries, per_bundle))
    if terminate and terminal_index is None:
        terminal_index = stream.entries[-1].stream_index if stream.entries else 0
    out = []
    for i, block in enumerate(blocks):
        last = i == len(blocks) - 1
        t = terminal_index if (terminate and last) else None
        b = bundle(stream.project, stream.desc.prefix, [(stream.desc, block, t)], secret)
        out.append(encode_message(b, compress=compress))
    if terminate and not blocks:  # an empty stream: only its terminal index
        b = bundle(stream.project, stream.desc.prefix, [(stream.desc, [], terminal_index)], secret)
        out.append(encode_message(b, compress=compress))
    return out


def shuffled_with_duplicates(messages: list[bytes], rng: random.Random, duplicates: int = 2) -> list[bytes]:
    out = list(messages) + [rng.choice(messages) for _ in range(duplicates if messages else 0)]
    rng.shuffle(out)
    return out
