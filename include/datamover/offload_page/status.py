"""The latest Offload Stage status per run, read from the 0.5 Hz status stream on Kafka.

The API server keeps one `StatusBoard` per process: a daemon thread reads the status topic and keeps
the newest event of each run (the events are whole snapshots, so the newest one is all a page needs),
so every user of the page sees the same progress without asking Kafka themselves. Memory is bounded
(`max_runs`). The thread assigns itself every partition (no consumer group, no commits), starting
`lookback_s` back in time, so a restarted API server shows a running offload at once. Kafka being
down never breaks the page: it falls back on the run's task states, and the board retries.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from datamover.offload_page.view import DAG_ID, status_payload
from datamover.streams.definition import StreamDefinition, decode

log = logging.getLogger(__name__)


class StatusBoard:
    def __init__(
        self,
        consumer_factory: Callable[[], Consumer],
        topic: str,
        definition: StreamDefinition,
        *,
        max_runs: int = 64,
        lookback_s: float = 900.0,
        retry_s: float = 5.0,
    ) -> None:
        """`consumer_factory` builds an unsubscribed consumer (any group id: nothing is committed)."""
        self.consumer_factory = consumer_factory
        self.topic = topic
        self.definition = definition
        self.max_runs = max_runs
        self.lookback_s = lookback_s
        self.retry_s = retry_s
        self.received = 0
        self.rejected = 0
        self.last_error: str | None = None
        self._latest: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------------------
    def latest(self, run_id: str) -> dict[str, Any] | None:
        """The newest status payload of `run_id` (logs/errors decoded), or None."""
        with self._lock:
            status = self._latest.get(run_id)
            return dict(status) if status is not None else None

    def runs(self) -> list[str]:
        with self._lock:
            return list(self._latest)

    # -- feeding ----------------------------------------------------------------------------------
    def offer(self, raw: bytes | str) -> bool:
        """Take one message off the topic; False (and counted) when it is not a valid status event."""
        try:
            event = decode(raw, self.definition)
            if (event.get("meta") or {}).get("dag_id", DAG_ID) != DAG_ID:
                return False
            run_id = str(event["correlation"]["offload_id"])
            payload = status_payload(event)
        except (ValueError, KeyError, TypeError) as exc:
            self.rejected += 1
            self.last_error = f"invalid status event: {exc}"
            return False
        with self._lock:
            old = self._latest.get(run_id)
            if old is not None and (old.get("timestamp") or 0) > (payload.get("timestamp") or 0):
                return True  # an older event arriving late (another partition) never wins
            self._latest[run_id] = payload
            self._latest.move_to_end(run_id)
            while len(self._latest) > self.max_runs:
                self._latest.popitem(last=False)
            self.received += 1
        return True

    # -- the consumer thread ----------------------------------------------------------------------
    def ensure_started(self) -> None:
        """Start the reader thread on first use (in the API server process that serves the page)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="offload-status-board", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            consumer: Consumer | None = None
            try:
                consumer = self.consumer_factory()
                if self._assign(consumer):
                    self.last_error = None
                    self._consume(consumer)
            except Exception as exc:  # the page falls back on task states; try again shortly
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("Offload page: status stream %r unavailable: %s", self.topic, self.last_error)
            finally:
                if consumer is not None:
                    with contextlib.suppress(Exception):  # a broken consumer must not kill the thread
                        consumer.close()
            self._stop.wait(self.retry_s)

    def _assign(self, consumer: Consumer) -> bool:
        metadata = consumer.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            self.last_error = f"topic {self.topic!r} does not exist yet (the first offload creates it)"
            return False
        since_ms = int((time.time() - self.lookback_s) * 1000)
        wanted = [TopicPartition(self.topic, p, since_ms) for p in sorted(topic.partitions)]
        offsets = consumer.offsets_for_times(wanted, timeout=10)
        # A partition with nothing newer than since_ms answers -1. Start at its end as of now, as a number:
        # the symbolic end is resolved only at the first fetch, and a message sent in between was skipped.
        consumer.assign(
            [
                TopicPartition(
                    self.topic,
                    tp.partition,
                    tp.offset if tp.offset >= 0 else consumer.get_watermark_offsets(tp, timeout=10)[1],
                )
                for tp in offsets
            ]
        )
        return True

    def _consume(self, consumer: Consumer) -> None:
        while not self._stop.is_set():
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.fatal() or error.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError._UNKNOWN_TOPIC,
                ):
                    raise RuntimeError(error.str())
                self.last_error = error.str()
                continue
            value = msg.value()
            if value is not None:
                self.offer(value)
