"""The LogDog Collector's job: drain Butler messages from a Kafka topic into intermediate storage.

Messages are consumed in batches; each batch's rows are written in one PostgreSQL transaction and
only then are the batch's Kafka offsets committed, so a crash anywhere redelivers messages whose rows
may already be stored: entries are keyed by (stream, stream index) and a redelivered one is skipped,
registration and termination are idempotent. A malformed message is counted, logged with its
partition and offset, and skipped; a bad bundle entry (one stream's part of a message) likewise,
without dropping the message's other streams.

`drain` stops when every assigned partition has been read to its end (as of the moment it got
there), after `max_runtime`, or after `idle_timeout` without a message.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from datamover.logdog.butler import (
    MalformedMessage,
    RejectedEntry,
    StreamPart,
    check_bundle_entry,
    parse_message,
)
from datamover.logdog.storage import Collector

log = logging.getLogger(__name__)

MAX_LOGGED_PROBLEMS = 50  # individual log lines per run; the counts are always complete


@dataclass
class CollectStats:
    messages: int = 0
    bytes: int = 0
    bundles: int = 0
    bundle_entries: int = 0
    entries_written: int = 0
    duplicates: int = 0
    streams_registered: int = 0
    streams_terminated: int = 0
    malformed_messages: int = 0
    rejected_entries: int = 0
    skipped_archived: int = 0
    batches: int = 0
    seconds: float = 0.0  # the whole run, group join and final idle wait included
    ingest_seconds: float = 0.0  # from the first message received to the last offsets committed
    decode_seconds: float = 0.0  # parsing and checking messages (overlaps the writes)
    write_seconds: float = 0.0  # PostgreSQL transactions and offset commits
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = self.problems[:MAX_LOGGED_PROBLEMS]
        return out


@dataclass(frozen=True)
class DrainLimits:
    batch_messages: int = 500
    batch_bytes: int = 32 * 1024 * 1024
    poll_timeout: float = 1.0
    idle_timeout: float = 10.0  # stop after this long without a message
    max_runtime: float = 300.0  # stop after this long in any case (the next run goes on)
    assignment_timeout: float = 30.0  # how long to wait for the group to assign partitions


class _Problems:
    def __init__(self, stats: CollectStats, logger: logging.Logger) -> None:
        self.stats = stats
        self.log = logger

    def report(self, where: str, what: str) -> None:
        line = f"{where}: {what}"
        if len(self.stats.problems) < MAX_LOGGED_PROBLEMS:
            self.log.warning("Skipped %s", line)
        self.stats.problems.append(line)


def message_location(msg: Message) -> str:
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


def decode_batch(messages: list[Message], stats: CollectStats, problems: _Problems) -> list[StreamPart]:
    parts: list[StreamPart] = []
    for msg in messages:
        value = msg.value() or b""
        stats.messages += 1
        stats.bytes += len(value)
        where = message_location(msg)
        try:
            bundle = parse_message(value)
        except MalformedMessage as exc:
            stats.malformed_messages += 1
            problems.report(f"malformed message {where}", str(exc))
            continue
        stats.bundles += 1
        for be in bundle.entries:
            stats.bundle_entries += 1
            try:
                part = check_bundle_entry(bundle, be)
            except RejectedEntry as exc:
                stats.rejected_entries += 1
                problems.report(f"bundle entry {be.desc.name!r} of {where}", str(exc))
                continue
            if part is not None:
                parts.append(part)
    return parts


class _Writer(threading.Thread):
    """Writes decoded batches to PostgreSQL and then commits their Kafka offsets, while the caller
    consumes and decodes the next batch (two cores: Python decoding here, PostgreSQL's COPY there).
    At most `depth` batches wait, so memory stays bounded."""

    def __init__(
        self, consumer: Consumer, store: Collector, stats: CollectStats, problems: _Problems, depth: int
    ) -> None:
        super().__init__(name="logdog-collector-writer", daemon=True)
        self.consumer = consumer
        self.store = store
        self.stats = stats
        self.problems = problems
        self.queue: queue.Queue[tuple[list[StreamPart], list[TopicPartition]] | None] = queue.Queue(depth)
        self.error: BaseException | None = None
        self.first_message: float | None = None

    def run(self) -> None:
        stats = self.stats
        try:
            while (item := self.queue.get()) is not None:
                parts, offsets = item
                began = time.monotonic()
                if parts:
                    result = self.store.write(parts)
                    stats.entries_written += result.entries_written
                    stats.duplicates += result.duplicates
                    stats.streams_registered += result.registered
                    stats.streams_terminated += result.terminated
                    stats.skipped_archived += result.skipped_archived
                    for reason in result.rejected:
                        stats.rejected_entries += 1
                        self.problems.report("bundle entry", reason)
                # The rows are committed: now the offsets (synchronously: a crash redelivers, never loses).
                self.consumer.commit(offsets=offsets, asynchronous=False)
                stats.write_seconds += time.monotonic() - began
                stats.batches += 1
                if self.first_message is not None:
                    stats.ingest_seconds = time.monotonic() - self.first_message
        except BaseException as exc:
            self.error = exc
            while self.queue.get() is not None:  # unblock the producer side until it stops
                pass

    def put(self, parts: list[StreamPart], offsets: list[TopicPartition]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((parts, offsets))

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def drain(
    consumer: Consumer,
    conn: psycopg.Connection,
    schema: str,
    topic: str,
    limits: DrainLimits = DrainLimits(),
    logger: logging.Logger | None = None,
) -> CollectStats:
    """Consume `topic` with `consumer` (its group, `enable.auto.commit` off) into storage `schema`."""
    logger = logger or log
    stats = CollectStats()
    problems = _Problems(stats, logger)
    assigned: set[tuple[str, int]] = set()
    at_end: set[tuple[str, int]] = set()

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.update((p.topic, p.partition) for p in partitions)

    def on_revoke(c: Consumer, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            assigned.discard((p.topic, p.partition))
            at_end.discard((p.topic, p.partition))

    metadata = consumer.list_topics(topic, timeout=15).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        logger.warning("Topic %r does not exist (yet): nothing to collect.", topic)
        return stats
    writer = _Writer(consumer, Collector(conn, schema), stats, problems, depth=2)
    # The writer thread hands COPY data to libpq in 128 KiB pieces, taking the GIL back for each; with
    # the default 5 ms switch interval it would wait behind the decoding thread every time.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.0005))
    writer.start()
    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    start = time.monotonic()
    last_message = start
    try:
        while True:
            now = time.monotonic()
            if now - start >= limits.max_runtime:
                logger.info("Stopping after max_runtime (%.0f s); the next run goes on.", limits.max_runtime)
                break
            if assigned and at_end >= assigned:
                break
            if not assigned and now - start >= limits.assignment_timeout:
                logger.warning(
                    "No partition of %r was assigned within %.0f s (the group's other consumers hold them): "
                    "nothing to collect in this run.",
                    topic,
                    limits.assignment_timeout,
                )
                break
            if assigned and now - last_message >= limits.idle_timeout:
                break
            batch: list[Message] = []
            size = 0
            # Wait up to poll_timeout for a first message, then take what is queued locally, without waiting
            # for a full batch (consume(n, timeout) would wait for n messages or the timeout).
            wait = limits.poll_timeout
            while len(batch) < limits.batch_messages and size < limits.batch_bytes:
                if wait:
                    first = consumer.poll(wait)
                    got = [first] if first is not None else []
                else:
                    got = consumer.consume(num_messages=limits.batch_messages - len(batch), timeout=0)
                if not got:
                    break
                wait = 0
                for msg in got:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            at_end.add((msg.topic(), msg.partition()))
                            continue
                        raise KafkaException(err)
                    if writer.first_message is None:
                        writer.first_message = time.monotonic()
                    at_end.discard((msg.topic(), msg.partition()))
                    batch.append(msg)
                    size += len(msg.value() or b"")
                if at_end and at_end >= assigned:
                    break
            if not batch:
                continue
            last_message = time.monotonic()
            offsets: dict[tuple[str, int], int] = {}
            for msg in batch:
                key = (msg.topic(), msg.partition())
                offsets[key] = max(offsets.get(key, -1), msg.offset())
            began = time.monotonic()
            parts = decode_batch(batch, stats, problems)
            stats.decode_seconds += time.monotonic() - began
            writer.put(
                parts,
                [TopicPartition(t, p, o + 1) for (t, p), o in offsets.items()],
            )
        writer.finish()
    finally:
        if writer.is_alive():
            writer.queue.put(None)
            writer.join(timeout=60)
        sys.setswitchinterval(switch_interval)
        stats.seconds = time.monotonic() - start
    return stats
