"""Apache Kafka through the apache-kafka provider's hook: its `kafka` connection (extra = librdkafka
config, `bootstrap.servers` required), callbacks and Amazon MSK IAM / Google managed Kafka auth.

`KafkaHook.side_channel(topic)` is for status, health and log events: a producer that never blocks
and never raises into the work it describes (see `SideChannel`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.errors import ConfigError
from datamover.hooks.base import CheckedConnection

log = logging.getLogger(__name__)


class KafkaHook(CheckedConnection, KafkaBaseHook):
    def __init__(self, kafka_config_id: str = KafkaBaseHook.default_conn_name) -> None:
        super().__init__(kafka_config_id=kafka_config_id)

    def client_config(self) -> dict[str, Any]:
        """The connection's librdkafka config (the provider resolves callbacks and managed auth)."""
        self.require_connection()
        try:
            return self._build_config()
        except ValueError as exc:
            raise ConfigError(
                f"Connection {self.conn_label!r}: {exc}. Fix the extra, e.g. "
                '{"bootstrap.servers": "host:9092"}.'
            ) from None

    @property
    def servers(self) -> str:
        return str(self.client_config().get("bootstrap.servers"))

    def admin(self, **overrides: Any) -> AdminClient:
        return AdminClient({**self.client_config(), **overrides})

    def producer(self, **overrides: Any) -> Producer:
        return Producer({"linger.ms": 5, "enable.idempotence": True, **self.client_config(), **overrides})

    def consumer(self, group_id: str, **overrides: Any) -> Consumer:
        return Consumer(
            {
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **self.client_config(),
                "group.id": group_id,
                **overrides,
            }
        )

    def ensure_topics(
        self,
        topics: Iterable[str],
        partitions: int = 1,
        timeout: float = 15,
        config: dict[str, str] | None = None,
        **admin_overrides: Any,
    ) -> list[str]:
        """Create the topics that do not exist yet; return the ones created."""
        admin = self.admin(**admin_overrides)
        existing = set(admin.list_topics(timeout=timeout).topics)
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if not wanted:
            return []
        futures = admin.create_topics(
            [
                NewTopic(t, num_partitions=partitions, replication_factor=-1, config=config or {})
                for t in wanted
            ],
            operation_timeout=timeout,
        )
        for future in futures.values():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another worker won the race
                    raise
        return wanted

    def side_channel(self, topic: str, **options: Any) -> SideChannel:
        return SideChannel(self, topic, **options)

    def check(self) -> str:
        try:
            servers = self.servers
            metadata = self.admin(**{"socket.timeout.ms": 10000}).list_topics(timeout=10)
        except KafkaException as exc:
            raise self.failure(
                f"no Kafka metadata from {self.servers}: {exc}",
                "check bootstrap.servers and the security settings in the extra",
            ) from None
        return f"Kafka at {servers}: {len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"


class _RateLimited(logging.Filter):
    """Lets one record through per `interval` seconds (librdkafka repeats a connect failure per retry)."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self._last = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        self.suppressed += 1
        return False


class SideChannel:
    """Best-effort events on one topic: `send()` never blocks and never raises. With `ensure`, the topic
    is created if missing (a few seconds at most; a failure is one more warning, not an error).

    The buffer is bounded (`max_buffered` messages in librdkafka's queue); a message that cannot be
    delivered within `delivery_timeout_s` (broker down) or finds the buffer full is dropped and counted.
    The first drop logs one warning naming the connection and the servers; `close()` logs how many were
    dropped. librdkafka's own log is rate-limited to a line per `log_interval_s`. A connection that is
    missing or malformed disables the channel with a warning instead of failing the caller.
    """

    def __init__(
        self,
        hook: KafkaHook,
        topic: str,
        *,
        ensure: bool = False,
        max_buffered: int = 10_000,
        delivery_timeout_s: float = 30,
        log_interval_s: float = 60,
        logger: Any = None,
    ) -> None:
        self.topic = topic
        self.log = logger or log
        self.sent = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._warned = False
        self._where = f"connection {hook.conn_label!r}"
        rdkafka_log = logging.getLogger(f"datamover.kafka.{topic}")
        self._rate = _RateLimited(log_interval_s)
        rdkafka_log.addFilter(self._rate)
        try:
            self._where += f" ({hook.servers})"
            if ensure:
                self._ensure(hook, rdkafka_log)
            self._producer: Producer | None = hook.producer(
                **{
                    "queue.buffering.max.messages": max_buffered,
                    "message.timeout.ms": int(delivery_timeout_s * 1000),
                    "enable.idempotence": False,  # idempotence needs the broker up before the first send
                    "logger": rdkafka_log,
                    "error_cb": self._on_error,
                }
            )
        except Exception as exc:  # a side channel must never stop the work it reports on
            self._producer = None
            self.log.warning("Side channel %s on %s disabled: %s", topic, self._where, exc)

    def _ensure(self, hook: KafkaHook, rdkafka_log: logging.Logger) -> None:
        try:
            if hook.ensure_topics([self.topic], timeout=5, logger=rdkafka_log, **{"socket.timeout.ms": 5000}):
                self.log.info("Created topic %r via %s", self.topic, self._where)
        except Exception as exc:  # the broker may be down: the producer then buffers, then drops
            self._warn_once(f"could not check or create the topic ({exc})")

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._warn_once(f"Kafka unreachable ({error.str()})")

    def _warn_once(self, why: str) -> None:
        with self._lock:
            if self._warned:
                return
            self._warned = True
        self.log.warning(
            "Events on topic %r via %s are being dropped: %s. The work goes on; the count follows at the end",
            self.topic,
            self._where,
            why,
        )

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        with self._lock:
            if error is None:
                self.sent += 1
            else:
                self.dropped += 1
        if error is not None:
            self._warn_once(error.str())

    def send(self, key: bytes | str | None, value: bytes | str) -> bool:
        """Queue one event; False if it was dropped at once (channel disabled or buffer full)."""
        if self._producer is None:
            with self._lock:
                self.dropped += 1
            return False
        try:
            self._producer.produce(self.topic, key=key, value=value, on_delivery=self._delivered)
        except (BufferError, KafkaException) as exc:
            with self._lock:
                self.dropped += 1
            self._warn_once(f"{type(exc).__name__}: {exc}")
            return False
        self._producer.poll(0)  # serve delivery callbacks, never wait
        return True

    def close(self, timeout: float = 5) -> int:
        """Flush for at most `timeout` seconds; whatever is still queued then is dropped. Returns the
        number of dropped events."""
        if self._producer is not None:
            if self._producer.flush(timeout):
                self._producer.purge()  # what is left fails its delivery callback: counted as dropped
                self._producer.flush(0)
            self._producer = None
        if self.dropped:
            self.log.warning(
                "%d event(s) for topic %r via %s were dropped (%d delivered; %d librdkafka log line(s) "
                "suppressed).",
                self.dropped,
                self.topic,
                self._where,
                self.sent,
                self._rate.suppressed,
            )
        return self.dropped

    def __enter__(self) -> SideChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
