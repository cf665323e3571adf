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
import time
from collections.abc import Callable
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
    seconds: float = 0.0
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


def drain(
    consumer: Consumer,
    conn: psycopg.Connection,
    schema: str,
    topic: str,
    limits: DrainLimits = DrainLimits(),
    logger: logging.Logger | None = None,
    on_batch: Callable[[CollectStats], None] | None = None,
) -> CollectStats:
    """Consume `topic` with `consumer` (its group, `enable.auto.commit` off) into storage `schema`."""
    logger = logger or log
    stats = CollectStats()
    problems = _Problems(stats, logger)
    store = Collector(conn, schema)
    assigned: set[tuple[str, int]] = set()
    at_end: set[tuple[str, int]] = set()

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.update((p.topic, p.partition) for p in partitions)

    def on_revoke(c: Consumer, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            assigned.discard((p.topic, p.partition))
            at_end.discard((p.topic, p.partition))

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
                raise KafkaException(
                    KafkaError(KafkaError._TIMED_OUT, f"no partition of {topic!r} was assigned in time")
                )
            if assigned and now - last_message >= limits.idle_timeout:
                break
            batch: list[Message] = []
            size = 0
            deadline = time.monotonic() + limits.poll_timeout
            while len(batch) < limits.batch_messages and size < limits.batch_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                got = consumer.consume(num_messages=limits.batch_messages - len(batch), timeout=remaining)
                if not got:
                    break
                for msg in got:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            at_end.add((msg.topic(), msg.partition()))
                            continue
                        raise KafkaException(err)
                    at_end.discard((msg.topic(), msg.partition()))
                    batch.append(msg)
                    size += len(msg.value() or b"")
                if at_end and at_end >= assigned:
                    break
            if not batch:
                continue
            last_message = time.monotonic()
            parts = decode_batch(batch, stats, problems)
            if parts:
                result = store.write(parts)
                stats.entries_written += result.entries_written
                stats.duplicates += result.duplicates
                stats.streams_registered += result.registered
                stats.streams_terminated += result.terminated
                stats.skipped_archived += result.skipped_archived
                for reason in result.rejected:
                    stats.rejected_entries += 1
                    problems.report("bundle entry", reason)
            # The rows are committed: now the offsets (synchronously: a crash redelivers, never loses).
            consumer.commit(asynchronous=False)
            stats.batches += 1
            if on_batch is not None:
                on_batch(stats)
    finally:
        stats.seconds = time.monotonic() - start
    return stats
