"""Tail a log file into the log stream, exactly once: no line lost, none sent twice, across rotation,
truncation, restarts, crashes and Kafka outages.

The file itself is the buffer. Records (a line plus its stack trace lines, see logs.Assembler) are sent
in Kafka transactions, and each transaction also writes the file position after its last record (device,
inode, offset and a hash of the file's first bytes) to the compacted positions topic, keyed by the
tailer (member and path). So the events and the position are committed together or not at all; after
any failure (broker down, producer fenced, process killed) the tailer starts a new producer (which ends
any transaction of its predecessor), reads its last committed position back with read_committed and goes
on from there. Memory is bounded by one batch; while Kafka is down nothing is read ahead. Consumers read
with `isolation.level=read_committed`.

(Not consumer-group offsets through `send_offsets_to_transaction`: librdkafka's call ignores its
timeout when the group coordinator goes away, confluentinc/librdkafka#5456 and #5511, and a broker
restart left the tailer hanging in it for good.)

Rotation (the path now names a new file): the old file is read to its end, and once it stayed unchanged
for `rotate_grace_s` the new file is read from its start. After a restart, a committed position whose file
was rotated meanwhile is found again among the rotated files (`rotated` globs) by inode and head hash.
Truncation (copytruncate: the same file got shorter than the position) restarts at offset 0. A file that
cannot be found any more is reported with a warning (lines rotated away while nobody tailed are lost).

One process per host tails a given file (an flock on a lock file); a second one waits as a stand-by.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, count, repeat
from operator import add, methodcaller
from pathlib import Path
from typing import Any, BinaryIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from datamover.streams.logs import Assembler, EventBatch, LineFormat, LogEvents, UsualLines
from datamover.streams.registry import EventPublisher

log = logging.getLogger(__name__)

SIG_BYTES = 1024  # a file is recognised by its inode and the hash of (up to) its first KiB

# what one transaction produces before the position: (topic, key, values) groups, in order
Messages = list[tuple[str, bytes | None, list[bytes]]]
_STRIP_CR = methodcaller("removesuffix", "\r")
DEFAULT_PARTITIONER = "consistent_random"  # librdkafka's `partitioner` when none is configured
_CRC32_PARTITIONERS = frozenset({"consistent", "consistent_random"})  # a key's partition: CRC-32 mod count


@dataclass(frozen=True)
class Position:
    """Where the next unsent record of a file starts."""

    dev: int
    inode: int
    offset: int
    sig: str = ""  # sha256 of the first sig_len bytes of the file
    sig_len: int = 0

    @classmethod
    def from_json(cls, value: bytes | None) -> Position | None:
        if not value:
            return None
        try:
            doc = json.loads(value)
            return cls(
                int(doc["dev"]), int(doc["inode"]), int(doc["offset"]), str(doc["sig"]), int(doc["sig_len"])
            )
        except (ValueError, KeyError, TypeError):
            return None

    def to_json(self, path: str) -> bytes:
        doc = {"path": path, **{k: getattr(self, k) for k in ("dev", "inode", "offset", "sig", "sig_len")}}
        return json.dumps(doc, separators=(",", ":")).encode()


def head_signature(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest() if length else ""


@dataclass
class TailOptions:
    poll_interval_s: float = 0.25
    flush_after_s: float = 1.0  # an open record is complete once the file was quiet this long
    rotate_grace_s: float = 1.0  # a rotated file is done once it stayed unchanged this long
    # a transaction's bounds, whichever comes first (plus the last chunk read): records, and bytes of the file
    batch_records: int = 20_000
    batch_bytes: int = 8 * 1024 * 1024
    read_chunk: int = 256 * 1024  # one read; its complete lines are parsed and encoded together
    max_line_bytes: int = 64 * 1024  # longer lines are cut (the rest of the line is skipped)
    max_record_chars: int = 256 * 1024  # stack trace bound per record
    start_at_end: bool = False  # first start without a committed position: skip what is there
    rotated: tuple[str, ...] = ("{path}.*", "{path}-*")
    retry_s: float = 2.0
    refresh_position_s: float = 86_400  # recommit an idle position so its group offset never expires
    lock_dir: str = field(default_factory=tempfile.gettempdir)


class KafkaTransactions:
    """Events plus the file position, committed in one Kafka transaction (see the module doc).

    The position is the last record with the tailer's key in partition 0 of the compacted positions
    topic; reading it back waits until every transaction begun before the read has ended (a
    read_committed consumer stops at the first open one), which takes at most the transaction timeout."""

    def __init__(
        self,
        producer_factory: Callable[[str], Producer],
        consumer_factory: Callable[[str], Consumer],
        positions_topic: str,
        key: str,
        timeout_s: float = 30,
        partitioner: str = DEFAULT_PARTITIONER,
    ) -> None:
        self.producer_factory = producer_factory
        self.consumer_factory = consumer_factory
        self.positions_topic = positions_topic
        self.key = key
        self.timeout_s = timeout_s
        self._hash_keys = partitioner in _CRC32_PARTITIONERS  # the producer's; whether _partition_of may pin
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        # pipelined commits: a worker commits one batch while the tailer reads and encodes the next
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._worker: threading.Thread | None = None
        self._pending = 0
        self._idle = threading.Condition()
        self._failure: BaseException | None = None
        self.restarted = 0  # transactions started over because the producer's queue filled up

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            producer = self.producer_factory(self.key)  # transactional.id = the tailer's key
            producer.init_transactions(self.timeout_s)  # fences an older instance, ends its transaction
            self._producer = producer
        return self._producer

    def committed(self, path: str) -> Position | None:
        """The last committed position. Starts the producer first, so no transaction of ours is open."""
        _ = self.producer
        if self._consumer is None:
            self._consumer = self.consumer_factory(f"{self.key}.positions")
        consumer = self._consumer
        tp = TopicPartition(self.positions_topic, 0)
        low, end = consumer.get_watermark_offsets(tp, timeout=self.timeout_s)
        if end <= low:
            return None
        consumer.assign([TopicPartition(self.positions_topic, 0, OFFSET_BEGINNING)])
        key = self.key.encode()
        found: bytes | None = None
        deadline = time.monotonic() + 2 * self.timeout_s
        try:
            while consumer.position([tp])[0].offset < end:  # (OFFSET_INVALID < 0 before the first fetch)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"positions topic {self.positions_topic}: not read to offset {end} in time "
                        "(a transaction stays open?)"
                    )
                for message in consumer.consume(1000, timeout=0.5):
                    if message.error() is None and message.key() == key:
                        found = message.value()
        finally:
            consumer.unassign()
        return Position.from_json(found)

    def commit(self, messages: Messages, position: Position, path: str) -> None:
        """`messages`: (topic, key, values) groups, produced in order, then the position."""
        producer = self.producer
        produce = producer.produce
        try:
            producer.begin_transaction()
            try:  # each group in one C-level loop (positional: the keyword form costs twice as much)
                for topic, key, values in messages:
                    partition = self._partition_of(producer, topic, key)
                    deque(map(produce, repeat(topic), values, repeat(key), repeat(partition)), 0)
            except BufferError:  # the producer's queue filled up: this transaction again, waiting as it fills
                self.restarted += 1
                producer.abort_transaction(self.timeout_s)
                producer.begin_transaction()
                self._produce_waiting(producer, messages)
            _produce_when_room(producer, self.positions_topic, position.to_json(path), self.key.encode(), 0)
            producer.commit_transaction(self.timeout_s)
        except Exception:
            self.reset(abort=True)
            raise

    def _produce_waiting(self, producer: Producer, messages: Messages) -> None:
        """`messages` one by one, each as soon as the queue has room."""
        for topic, key, values in messages:
            partition = self._partition_of(producer, topic, key)
            for value in values:
                _produce_when_room(producer, topic, value, key, partition)

    def _partition_of(self, producer: Producer, topic: str, key: bytes | None) -> int:
        """The partition librdkafka's default partitioner gives `key` (the CRC-32 of the key modulo the
        topic's partition count), worked out once per producer: every message of the group then skips
        the partitioner, a quarter of what a produce call costs. -1 (the partitioner decides) without a
        key, with another partitioner configured, or without the topic's metadata. (A topic that gains
        partitions keeps a tailer's events in the partition it started with, in order, until its
        producer is replaced.)"""
        if key is None or not self._hash_keys:
            return -1
        partition = self._partitions.get((topic, key))
        if partition is None:
            try:
                count = len(producer.list_topics(topic, timeout=self.timeout_s).topics[topic].partitions)
            except (KafkaException, KeyError):
                count = 0
            partition = self._partitions[(topic, key)] = zlib.crc32(key) % count if count else -1
        return partition

    def submit(
        self,
        messages: Messages,
        position: Position,
        path: str,
        done: Callable[[], None],
    ) -> None:
        """`commit` in the worker thread, batches in order; waits while one batch is already queued
        (memory stays bounded). Raises the failure of an earlier batch instead (see `recover`)."""
        self.raise_failure()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name=f"tail-commit-{self.key}", daemon=True)
            self._worker.start()
        with self._idle:
            self._pending += 1
        self._queue.put((messages, position, path, done))

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if self._failure is None:  # after a failure, later batches are dropped: they are re-read
                    messages, position, path, done = item
                    self.commit(messages, position, path)
                    done()
            except BaseException as exc:
                self._failure = exc
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted batch is committed or dropped; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def recover(self) -> None:
        """After a failure: wait for the worker, forget the producer (its transaction is aborted or gets
        fenced by the next one) and the failure; the tailer then reads the committed position back."""
        self.drain(2 * self.timeout_s + 10)
        self.reset(abort=True)
        self._failure = None

    def reset(self, abort: bool = False) -> None:
        """Forget the producer (after a failure); the next one fences it and ends its transaction."""
        producer, self._producer = self._producer, None
        self._partitions.clear()
        if producer is not None and abort:
            with contextlib.suppress(Exception):
                producer.abort_transaction(5)

    def close(self) -> None:
        self.drain(self.timeout_s + 5)
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(5)
        self._worker = None
        self.reset(abort=True)
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close()
            self._consumer = None


def _produce_when_room(
    producer: Producer, topic: str, value: bytes, key: bytes | None, partition: int = -1
) -> None:
    """One message; while the producer's queue is full, waits for deliveries (-1: any partition)."""
    while True:
        try:
            producer.produce(topic, value, key, partition)
            return
        except BufferError:
            producer.poll(0.05)


@dataclass
class _OpenFile:
    fh: BinaryIO
    dev: int
    inode: int
    path: str  # the name it had when opened
    rotated: bool = False  # the configured path names another file now: read this one to its end
    sig: str = ""
    sig_len: int = 0


class FileTailer:
    """Tails one file into `events` (a logs.LogEvents) through `store` (KafkaTransactions)."""

    def __init__(
        self,
        path: str | Path,
        events: LogEvents,
        store: KafkaTransactions,
        events_topic: str,
        definitions_topic: str,
        fmt: LineFormat | None = None,
        options: TailOptions | None = None,
        key: str | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.path = str(Path(path).absolute())
        self.events = events
        self.store = store
        self.events_topic = events_topic
        self.definitions_topic = definitions_topic
        self.fmt = fmt or LineFormat()
        self.options = options or TailOptions()
        self.key = (key or f"{events.identity.member_id}:{self.path}").encode()
        self.log = logger or log
        self.sent_records = 0
        self.transactions = 0
        self.failures = 0
        self.cut_lines = 0
        self._file: _OpenFile | None = None
        self._offset = 0  # of the next byte to read
        self._buf = b""  # bytes of an unfinished line
        self._skip_rest = False  # inside a line longer than max_line_bytes
        self._assembler = Assembler(self.fmt, self.options.max_record_chars)
        self._usual = UsualLines(events) if self.fmt.is_default else None
        self._pending: EventBatch
        self._batch_bytes: int  # of the file read since the last commit
        self._new_batch()
        self._committed: Position | None = None
        self._ready = False
        self._last_growth = time.monotonic()
        self._last_commit = time.monotonic()
        self._announced: set[str] = set()
        self._lock_fh: Any = None
        self._warned_at = 0.0

    # ---------------------------------------------------------------- lifecycle

    def run(self, stop: threading.Event) -> None:
        """Tail until `stop` is set (what is committed stays committed; the rest is read again later)."""
        try:
            while not stop.is_set():
                if not self._lock():
                    stop.wait(max(self.options.retry_s, 5))
                    continue
                try:
                    if not self._ready:
                        self._start()
                    if not self.step():
                        stop.wait(self.options.poll_interval_s)
                except Exception as exc:
                    self._failed(exc)
                    stop.wait(self.options.retry_s)
        finally:
            self.close()

    def close(self) -> None:
        self._close_file()
        self.store.close()
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def _lock(self) -> bool:
        """One tailer per file per host: hold an exclusive flock while tailing."""
        if self._lock_fh is not None:
            return True
        digest = hashlib.sha256(self.path.encode()).hexdigest()[:16]
        fh = open(Path(self.options.lock_dir) / f"datamover-tail-{digest}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        self._lock_fh = fh
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            self.log.warning(
                "Tailing %s: %s: %s. Nothing is lost: it goes on from the last committed position.",
                self.path,
                type(exc).__name__,
                exc,
            )
        self.store.recover()
        self._ready = False  # re-read the committed position, reopen the file there

    # ------------------------------------------------------------- positioning

    def _start(self) -> None:
        self._close_file()
        self._buf, self._skip_rest = b"", False
        self._new_batch()
        self._assembler.reset()
        self._announced.clear()
        position = self.store.committed(self.path)
        self._committed = position
        if position is None:
            self._open_current(at_end=self.options.start_at_end)
        elif not self._open_position(position):
            self.log.warning(
                "Tailing %s: the file of the committed position (inode %d, offset %d) is gone; lines written "
                "to it after that offset while nobody tailed are lost. Going on with the current file.",
                self.path,
                position.inode,
                position.offset,
            )
            self._open_current(at_end=False)
        self._ready = True
        self._last_growth = self._last_commit = time.monotonic()

    def _open(self, name: str) -> _OpenFile | None:
        try:
            fh = open(name, "rb")  # noqa: SIM115 (kept open across steps)
        except FileNotFoundError:
            return None
        st = os.fstat(fh.fileno())
        return _OpenFile(fh, st.st_dev, st.st_ino, name)

    def _open_current(self, at_end: bool) -> None:
        opened = self._open(self.path)
        self._file = opened
        self._offset = os.fstat(opened.fh.fileno()).st_size if opened and at_end else 0
        if opened:
            opened.fh.seek(self._offset)

    def _matches(self, opened: _OpenFile, position: Position) -> bool:
        if (opened.dev, opened.inode) != (position.dev, position.inode):
            return False
        return head_signature(opened.fh.fileno(), position.sig_len) == position.sig

    def _open_position(self, position: Position) -> bool:
        current = self._open(self.path)
        if current is not None and self._matches(current, position):
            self._file = current
        else:
            if current is not None:
                current.fh.close()
            found = None
            for name in self._rotated_names():
                candidate = self._open(name)
                if candidate is None:
                    continue
                if self._matches(candidate, position):
                    found = candidate
                    break
                candidate.fh.close()
            if found is None:
                return False
            found.rotated = True
            self._file = found
            self.log.info("Tailing %s: finishing rotated file %s first", self.path, found.path)
        size = os.fstat(self._file.fh.fileno()).st_size
        self._offset = position.offset if size >= position.offset else 0
        if size < position.offset:
            self.log.warning("Tailing %s: truncated while nobody tailed; reading from the start", self.path)
        self._file.fh.seek(self._offset)
        return True

    def _rotated_names(self) -> list[str]:
        names: list[str] = []
        for pattern in self.options.rotated:
            names.extend(sorted(glob.glob(pattern.format(path=glob.escape(self.path)))))
        return [n for n in dict.fromkeys(names) if n != self.path]

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.fh.close()
            self._file = None

    # ------------------------------------------------------------------- reading

    def step(self) -> bool:
        """Read, assemble, commit what is complete; False when there was nothing to do."""
        self.store.raise_failure()  # a batch that failed to commit: start over from the committed position
        now_ms = int(time.time() * 1000)
        read_any = self._read(now_ms)
        if not read_any:
            self._idle(now_ms)
        if self._pending and (not read_any or self._batch_full() or self._commit_due()):
            self._commit()
            return True
        if not read_any and time.monotonic() - self._last_commit >= self.options.refresh_position_s:
            self._commit()
        return read_any

    def _commit_due(self) -> bool:
        return time.monotonic() - self._last_commit >= 0.2

    def _new_batch(self) -> None:
        """Nothing pending (committed, or dropped to be read again)."""
        self._pending = EventBatch(self.events)
        self._batch_bytes = 0

    def _batch_full(self) -> bool:
        options = self.options
        return len(self._pending) >= options.batch_records or self._batch_bytes >= options.batch_bytes

    def _read(self, now_ms: int) -> bool:
        if self._file is None:
            self._file = self._open(self.path)
            self._offset = 0
            if self._file is None:
                return False
        got = False
        max_line = self.options.max_line_bytes
        while not (self._pending and self._batch_full()):  # (with nothing pending, nothing to bound)
            chunk = self._file.fh.read(self.options.read_chunk)
            if not chunk:
                break
            got = True
            self._batch_bytes += len(chunk)
            start = self._offset - len(self._buf)
            self._offset += len(chunk)
            data = self._buf + chunk
            last = data.rfind(b"\n")
            pos = 0
            if self._skip_rest and last >= 0:  # the end of a cut line: skipped
                nl = data.find(b"\n")
                self._skip_rest = False
                self._assembler_extend_end(start + nl + 1)
                pos = nl + 1
            if last >= pos:
                self._feed_block(data[pos : last + 1], start + pos, now_ms)
            rest = data[last + 1 :]
            if len(rest) > max_line and not self._skip_rest:
                self._feed(rest[:max_line], start + len(data), now_ms)
                self.cut_lines += 1
                self._skip_rest, rest = True, b""
            elif self._skip_rest:
                rest = b""
            self._buf = rest
        if got:
            self._last_growth = time.monotonic()
        return got

    def _feed_block(self, block: bytes, base: int, now_ms: int) -> None:
        """Complete lines (`block` ends with a newline; `base`: its file offset), as `_feed` of each."""
        if not block.isascii():  # offsets count bytes: UTF-8 beyond ASCII goes line by line
            pos = 0
            while (nl := block.find(b"\n", pos)) >= 0:
                self._feed(block[pos:nl], base + nl + 1, now_ms)
                pos = nl + 1
            return
        if self._usual is not None and self._usual.feed(block, base, now_ms, self._assembler, self._pending):
            return  # the records of the usual layout's lines encoded at once, the others as below
        text = block.decode("ascii")
        lines = text.split("\n")
        lines.pop()  # after the last newline
        ends = list(map(add, accumulate(map(len, lines)), count(base + 1)))
        if "\r" in text:
            lines = list(map(_STRIP_CR, lines))
        self._pending.extend(self._assembler.feed_lines(lines, ends, now_ms))

    def _assembler_extend_end(self, end: int) -> None:
        """The skipped tail of a cut line belongs to the record it was cut in."""
        if not self._assembler.extend(end) and self._pending:
            self._pending.end = end

    def _feed(self, raw: bytes, end: int, now_ms: int) -> int:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        done = self._assembler.feed(raw.decode("utf-8", errors="replace"), end, now_ms)
        if done is None:
            return 0
        self._pending.append(*done)
        return 1

    def _idle(self, now_ms: int) -> None:
        quiet = time.monotonic() - self._last_growth
        if quiet >= self.options.flush_after_s and (done := self._assembler.flush(now_ms)) is not None:
            self._pending.append(*done)
        if self._file is None:
            return
        st_size = os.fstat(self._file.fh.fileno()).st_size
        if not self._file.rotated and st_size < self._offset:
            self.log.warning(
                "Tailing %s: truncated (size %d < position %d); reading it from the start",
                self.path,
                st_size,
                self._offset,
            )
            self._drop_unsent_and_seek(0)
            return
        if not self._file.rotated:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if st is None or (st.st_dev, st.st_ino) != (self._file.dev, self._file.inode):
                self._file.rotated = True
                self._last_growth = time.monotonic()
                return
        if self._file.rotated and quiet >= self.options.rotate_grace_s and st_size <= self._offset:
            self._finish_rotated(now_ms)

    def _drop_unsent_and_seek(self, offset: int) -> None:
        """Truncation: what was read but not committed is gone from the file; start over at `offset`."""
        self._assembler.reset()
        self._new_batch()
        self._buf, self._skip_rest = b"", False
        assert self._file is not None
        self._file.fh.seek(offset)
        self._offset = offset
        self._file.sig, self._file.sig_len = "", 0
        # the next commit records the new start; until then the old position stays committed

    def _finish_rotated(self, now_ms: int) -> None:
        """The rotated file is read to its end: close its last record, move to the new file."""
        assert self._file is not None
        if self._buf and not self._skip_rest:
            self._feed(self._buf, self._offset, now_ms)
        self._buf, self._skip_rest = b"", False
        if (done := self._assembler.flush(now_ms)) is not None:
            self._pending.append(*done)
        new = self._open(self.path)
        if new is None:
            return  # not recreated yet: stay on the old file and look again later
        if self._pending:
            self._commit()  # the old file's last records, with the old file's position
        old = self._file
        self._file, self._offset = new, 0
        old.fh.close()
        self.log.info("Tailing %s: rotated, reading the new file", self.path)
        self._commit()  # the new file's start is the position now (an empty transaction otherwise)

    # ----------------------------------------------------------------- committing

    def _position(self, end: int) -> Position:
        assert self._file is not None
        f = self._file
        if f.sig_len < SIG_BYTES:
            length = min(SIG_BYTES, end)
            if length != f.sig_len:
                f.sig, f.sig_len = head_signature(f.fh.fileno(), length), length
        return Position(f.dev, f.inode, end, f.sig, f.sig_len)

    def _commit(self) -> None:
        if self._file is None:
            return
        messages: Messages = []

        def collect(topic: str, key: bytes | None, value: bytes) -> bool:
            messages.append((topic, key, [value]))
            return True

        publisher = EventPublisher(
            collect, self.events_topic, self.definitions_topic, logger=self.log, announced=self._announced
        )
        runs, problems = self._pending.encoded()
        for definition, values in runs:
            publisher.announce(definition)  # its definition first, the first time it is used
            messages.append((self.events_topic, self.key, values))
        if problems:  # a record that fits no event (a bug): skipped, said once per batch
            self.log.warning("Tailing %s: %d record(s) not sent: %s", self.path, len(problems), problems[0])
        end = self._pending.end if self._pending else self._committed_offset_in_current_file()
        position = self._position(end)
        records = len(self._pending)

        def committed() -> None:
            self.sent_records += records
            self.transactions += 1

        self.store.submit(messages, position, self.path, committed)
        # (a batch that fails makes the tailer start over from what Kafka has, so these may run ahead)
        self._announced = set(publisher.announced)
        self._new_batch()
        self._committed = position
        self._last_commit = time.monotonic()

    def _committed_offset_in_current_file(self) -> int:
        """With nothing pending: where the next unsent record starts in the current file."""
        assert self._file is not None
        committed = self._committed
        if committed is not None and (committed.dev, committed.inode) == (self._file.dev, self._file.inode):
            return committed.offset if committed.offset <= self._offset else 0
        return 0


def tailer_key(member_id: str, path: str) -> str:
    """One file's tailer on one member: its transactional id and its key on the positions topic."""
    digest = hashlib.sha256(str(Path(path).absolute()).encode()).hexdigest()[:16]
    return f"datamover.tail.{member_id}.{digest}"


def is_retriable(exc: BaseException) -> bool:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return bool(exc.args[0].retriable())
    return False
