"""Kafka -> PostgreSQL: file notifications and End Readout events, in batches, exactly once.

Each batch (at most `ingest.batch_max_messages` per topic, or what arrived within
`ingest.batch_max_seconds`) becomes one PostgreSQL transaction holding everything it produced and the
next offset of every partition it read. The consumer starts from the offsets in PostgreSQL, so a crash
at any point replays at most the batch that was not committed, and that replay writes nothing twice.
(The offsets are also committed to Kafka afterwards, for lag tools only.) Where the store has no offset
yet the consumer starts at the beginning of the topic: a backlog is read, never skipped.

Per batch:
  * notifications: records of ObjectCreated events in the configured bucket are counted per observing day
    of their eventTime (duplicates counted), and reduced to one row per key with its first and last
    notification time (the first arrival times the transfer; a resent file's duplicate does not move it);
  * a new expected-sensors file is read from the object store and its expected keys stored;
  * End Readouts become exposure rows (the first one per obsId wins: a replay changes nothing);
  * when a consumer has read all its partitions to the end, the time it asked the broker is recorded as
    `caught_up_at`: every notification produced before it is stored.

Malformed messages are logged with their coordinates and skipped (counted in the stats).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import psycopg
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from datamover.errors import DataMoverError
from datamover.monitoring.config import TransferMonitoringConfig
from datamover.monitoring.expected import parse_expected_sensors
from datamover.monitoring.keys import exposure_prefix, split_key
from datamover.monitoring.messages import MessageError, parse_end_readout, parse_notification
from datamover.monitoring.store import (
    END_READOUTS,
    FILE_NOTIFICATIONS,
    ExpectedRow,
    ExposureRow,
    ObjectRow,
    Store,
)
from datamover.monitoring.timescale import observing_day_tai, observing_day_utc, tai_to_utc, utc_datetime

log = logging.getLogger(__name__)

GetObject = Callable[[str], bytes | None]  # key -> body (None: no such key)


class TopicUnavailable(DataMoverError):
    """A topic has no partitions (not created yet, or the broker is unreachable): worth a retry."""


class Consumer(Protocol):
    """What the ingest needs of confluent_kafka.Consumer."""

    def list_topics(self, topic: str | None = ..., timeout: float = ...) -> Any: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def consume(self, num_messages: int = ..., timeout: float = ...) -> list[Message]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = ..., cached: bool = ...
    ) -> tuple[int, int]: ...
    def commit(self, *args: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...


@dataclass
class IngestStats:
    batches: int = 0
    messages: int = 0
    notifications: int = 0  # ObjectCreated records of the bucket, duplicates included
    keys: int = 0  # distinct keys per batch, summed
    end_readouts: int = 0
    new_exposures: int = 0
    expected_files: int = 0
    ignored: int = 0  # other buckets, other event types, unknown imageSource
    malformed: int = 0
    caught_up_at: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Source:
    name: str
    topic: str
    consumer: Consumer
    positions: dict[int, int] = field(default_factory=dict)  # partition -> next offset to read
    # (when, partition -> high watermark then): once every position reaches its mark, every message
    # produced before `when` has been read.
    checkpoint: tuple[float, dict[int, int]] | None = None


@dataclass
class _Batch:
    objects: dict[str, list[Any]] = field(default_factory=dict)  # key -> [prefix, first, last, n, size, etag]
    day_counts: Counter[date] = field(default_factory=Counter)
    exposures: dict[str, ExposureRow] = field(default_factory=dict)
    offsets: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    messages: int = 0


class Ingestor:
    def __init__(
        self,
        cfg: TransferMonitoringConfig,
        store: Store,
        consumers: Mapping[str, Consumer],
        get_object: GetObject,
        *,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        malformed_log_limit: int = 20,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.get_object = get_object
        self.clock = clock
        self.log = logger or log
        self.stats = IngestStats()
        self._malformed_logged = 0
        self._malformed_log_limit = malformed_log_limit
        self.sources = [
            _Source(FILE_NOTIFICATIONS, cfg.file_notifications.topic, consumers[FILE_NOTIFICATIONS]),
            _Source(END_READOUTS, cfg.end_readouts.topic, consumers[END_READOUTS]),
        ]

    # ---- set-up --------------------------------------------------------------------------------

    def assign(self) -> None:
        """Assign every partition of both topics at the offsets stored in PostgreSQL (else the earliest)."""
        for src in self.sources:
            metadata = src.consumer.list_topics(src.topic, timeout=15)
            topic = metadata.topics.get(src.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                why = topic.error if topic is not None and topic.error is not None else "no partitions"
                raise TopicUnavailable(
                    f"Kafka topic {src.topic!r} ({src.name}) is not available: {why}. Fix: create the topic "
                    "or correct the topic / connection in include/config/transfer_monitoring.yaml."
                )
            stored = self.store.offsets(src.topic)
            assignment = []
            for partition in sorted(topic.partitions):
                low, _high = src.consumer.get_watermark_offsets(
                    TopicPartition(src.topic, partition), timeout=15, cached=False
                )
                start = max(stored.get(partition, low), low)  # retention may have removed older offsets
                if partition in stored and stored[partition] < low:
                    self.log.warning(
                        "%s partition %d: stored offset %d was deleted by retention; resuming at %d",
                        src.topic,
                        partition,
                        stored[partition],
                        low,
                    )
                src.positions[partition] = start
                assignment.append(TopicPartition(src.topic, partition, start))
            src.consumer.assign(assignment)
            self.log.info(
                "Consuming %s from %s",
                src.topic,
                ", ".join(f"partition {tp.partition} @ {tp.offset}" for tp in assignment),
            )

    # ---- the loop ------------------------------------------------------------------------------

    def run(
        self,
        until: float,
        *,
        idle_exit_s: float | None = None,
        after_batch: Callable[[IngestStats], None] | None = None,
    ) -> IngestStats:
        """Ingest until the clock reaches `until` (or, with `idle_exit_s`, until every topic has been read
        to its end and nothing new came for that long)."""
        self.assign()
        idle_since: float | None = None
        with ThreadPoolExecutor(self.cfg.ingest.fetch_workers, thread_name_prefix="expected") as pool:
            while self.clock() < until:
                batch, caught_up = self._poll()
                if batch.messages or caught_up:
                    self._write(batch, caught_up, pool)
                if after_batch is not None:
                    after_batch(self.stats)
                if batch.messages or len(caught_up) < len(self.sources):
                    idle_since = None
                elif idle_since is None:
                    idle_since = self.clock()
                if (
                    idle_exit_s is not None
                    and idle_since is not None
                    and self.clock() - idle_since >= idle_exit_s
                ):
                    break
        return self.stats

    def _poll(self) -> tuple[_Batch, dict[str, datetime]]:
        batch = _Batch()
        caught_up: dict[str, datetime] = {}
        cfg = self.cfg.ingest
        for src in self.sources:
            timeout = cfg.batch_max_seconds if src.name == FILE_NOTIFICATIONS else 0.05
            messages = src.consumer.consume(num_messages=cfg.batch_max_messages, timeout=timeout)
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(error)
                batch.messages += 1
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None and offset is not None
                if src.name == FILE_NOTIFICATIONS:
                    self._notification(msg, batch)
                else:
                    self._end_readout(msg, batch)
                src.positions[partition] = offset + 1
                batch.offsets[(src.topic, partition)] = (src.name, offset + 1)
            if (when := self._caught_up(src)) is not None:
                caught_up[src.name] = when
        return batch, caught_up

    def _caught_up(self, src: _Source) -> datetime | None:
        """A time T such that every message produced on `src` before T has now been read, or None.

        The broker's high watermarks are asked at T; once every partition's position has reached its
        mark, T is proven. Under a steady stream the positions pass the marks of a batch or two before,
        so the proven time trails real time by about a batch, never by the length of the stream."""
        if src.checkpoint is None:
            asked = self.clock()
            marks = {
                partition: src.consumer.get_watermark_offsets(
                    TopicPartition(src.topic, partition), timeout=10, cached=False
                )[1]
                for partition in src.positions
            }
            src.checkpoint = (asked, marks)
        asked, marks = src.checkpoint
        if all(src.positions[p] >= mark for p, mark in marks.items()):
            src.checkpoint = None
            return utc_datetime(asked)
        return None

    def _malformed(self, msg: Message, what: str, error: Exception) -> None:
        self.stats.malformed += 1
        if self._malformed_logged < self._malformed_log_limit:
            self._malformed_logged += 1
            self.log.warning(
                "Skipping malformed %s at %s[%s]@%s: %s",
                what,
                msg.topic(),
                msg.partition(),
                msg.offset(),
                error,
            )

    def _notification(self, msg: Message, batch: _Batch) -> None:
        try:
            events = parse_notification(msg.value() or b"")
        except MessageError as exc:
            self._malformed(msg, "file notification", exc)
            return
        offset_s = self.cfg.timing.tai_minus_utc_s
        for event in events:
            if not event.is_created or event.bucket != self.cfg.object_store.bucket:
                self.stats.ignored += 1
                continue
            self.stats.notifications += 1
            batch.day_counts[observing_day_utc(event.event_time, offset_s)] += 1
            row = batch.objects.get(event.key)
            if row is None:
                parts = split_key(event.key)
                batch.objects[event.key] = [
                    parts.prefix if parts else None,
                    event.event_time,
                    event.event_time,
                    1,
                    event.size,
                    event.etag,
                ]
            else:
                row[1] = min(row[1], event.event_time)
                row[2] = max(row[2], event.event_time)
                row[3] += 1

    def _end_readout(self, msg: Message, batch: _Batch) -> None:
        try:
            eor = parse_end_readout(msg.value() or b"")
        except MessageError as exc:
            self._malformed(msg, "End Readout", exc)
            return
        self.stats.end_readouts += 1
        instrument = self.cfg.object_store.instruments.get(eor.image_source)
        if instrument is None:
            self.stats.ignored += 1
            self.log.warning(
                "End Readout of %s: imageSource %r is not in object_store.instruments (%s); not monitored",
                eor.obs_id,
                eor.image_source,
                ", ".join(sorted(self.cfg.object_store.instruments)),
            )
            return
        stamp = eor.timestamp_end_of_readout
        batch.exposures.setdefault(
            eor.obs_id,
            ExposureRow(
                obs_id=eor.obs_id,
                prefix=exposure_prefix(instrument, eor.image_date, eor.obs_id),
                day=observing_day_tai(stamp),
                end_of_readout_tai=stamp,
                end_of_readout=utc_datetime(tai_to_utc(stamp, self.cfg.timing.tai_minus_utc_s)),
                end_readout=eor.raw,
            ),
        )

    # ---- writing -------------------------------------------------------------------------------

    def _expected_rows(self, batch: _Batch, pool: ThreadPoolExecutor) -> list[ExpectedRow]:
        wanted = {}
        for key in batch.objects:
            parts = split_key(key)
            if parts is not None and parts.is_expected_sensors:
                wanted[parts.prefix] = (key, parts.obs_id)
        if not wanted:
            return []
        known = self.store.known_expected_prefixes(wanted)
        new = {p: v for p, v in wanted.items() if p not in known}
        rows = list(pool.map(lambda item: read_expected(self.get_object, item[0], *item[1]), new.items()))
        self.stats.expected_files += len(rows)
        return rows

    def _write(self, batch: _Batch, caught_up: Mapping[str, datetime], pool: ThreadPoolExecutor) -> None:
        expected = self._expected_rows(batch, pool)
        objects = [ObjectRow(k, *v) for k, v in sorted(batch.objects.items())]
        for attempt in range(5):
            try:
                with self.store.transaction() as cur:
                    new = self.store.write_batch(
                        cur,
                        objects=objects,
                        day_counts=batch.day_counts,
                        exposures=list(batch.exposures.values()),
                        expected=expected,
                        offsets=batch.offsets,
                        caught_up=caught_up,
                    )
                break
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        self.stats.batches += 1
        self.stats.messages += batch.messages
        self.stats.keys += len(objects)
        self.stats.new_exposures += len(new)
        for name, when in caught_up.items():
            self.stats.caught_up_at[name] = when.isoformat()
        self._commit_to_kafka(batch)

    def _commit_to_kafka(self, batch: _Batch) -> None:
        """A copy of the offsets for Kafka's lag tools (PostgreSQL holds the ones that count)."""
        for src in self.sources:
            tps = [TopicPartition(t, p, o) for (t, p), (name, o) in batch.offsets.items() if name == src.name]
            if not tps:
                continue
            try:
                src.consumer.commit(offsets=tps, asynchronous=True)
            except KafkaException as exc:  # informational only
                self.log.debug("Kafka offset commit for %s failed: %s", src.topic, exc)


def read_expected(get_object: GetObject, prefix: str, key: str, obs_id: str) -> ExpectedRow:
    """The expected-sensors row of one exposure; a missing or malformed file is recorded as an error
    (its exposure is then evaluated without expectations, and the log line says so)."""
    body = get_object(key)
    if body is None:
        return ExpectedRow(prefix, obs_id, key, None, error="the file is not in the bucket")
    try:
        expected = parse_expected_sensors(body, prefix, obs_id)
    except MessageError as exc:
        log.warning("Expected-sensors file %s is unusable: %s", key, exc)
        return ExpectedRow(prefix, obs_id, key, None, error=str(exc))
    if expected.ignored:
        log.warning(
            "Expected-sensors file %s: sensor types without objects to expect: %s", key, expected.ignored
        )
    return ExpectedRow(prefix, obs_id, key, expected.keys, expected.sensors, expected.ignored)
