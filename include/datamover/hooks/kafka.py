"""Apache Kafka through the apache-kafka provider's hook: its `kafka` connection (extra = librdkafka
config, `bootstrap.servers` required), callbacks and Amazon MSK IAM / Google managed Kafka auth.

`KafkaHook.side_channel(topic)` is for status, health and log events: a producer that never blocks
and never raises into the work it describes (see `SideChannel`).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.errors import ConfigError
from datamover.hooks.base import CheckedConnection

log = logging.getLogger(__name__)


# librdkafka's own log lines of a side channel go to loggers under this prefix (rate-limited).
RDKAFKA_LOGGER_PREFIX = "datamover.kafka."


class KafkaHook(CheckedConnection, KafkaBaseHook):
    def __init__(self, kafka_config_id: str = KafkaBaseHook.default_conn_name) -> None:
        super().__init__(kafka_config_id=kafka_config_id)

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """The task SDK's lookup, and outside a task the metadata DB too.

        Airflow's own server components (scheduler, triggerer, dag-processor, api-server), where the
        health and log publishers run, are not task processes: there the SDK asks the environment and
        external secrets backends only (until the component marks itself a server, which the
        dag-processor never does), so a connection defined in the UI would not be found."""
        try:
            return super().get_connection(conn_id)
        except Exception:
            runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
            if getattr(runner, "SUPERVISOR_COMMS", None) is not None:
                raise  # a task process: the SDK's answer is the answer
            try:
                from airflow.models.connection import Connection
            except ImportError:  # a worker without airflow-core
                raise
            return Connection.get_connection_from_secrets(conn_id)

    def client_config(self) -> dict[str, Any]:
        """The connection's librdkafka config (the provider resolves callbacks and managed auth). Looked
        up once per hook: clients built later, e.g. in a background thread, need no second lookup."""
        cached: dict[str, Any] | None = getattr(self, "_client_config", None)
        if cached is not None:
            return dict(cached)
        self.require_connection()
        try:
            self._client_config = self._build_config()
            return dict(self._client_config)
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
        # librdkafka repeats a refused connect every few ms: through a rate-limited logger, not stderr.
        admin_overrides.setdefault("logger", _admin_log())
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


@functools.cache
def _admin_log() -> logging.Logger:
    logger = logging.getLogger(f"{RDKAFKA_LOGGER_PREFIX}admin")
    logger.addFilter(_RateLimited(60))
    return logger


class SideChannel:
    """Best-effort events on one topic: `send()` never blocks and never raises.

    While Kafka is unreachable, events wait in librdkafka's queue, bounded in memory (`max_buffered`
    messages and `max_buffered_kib`), and are delivered once the broker is back; an event that finds the
    buffer full, or is still undelivered after `delivery_timeout_s`, is dropped and counted. The first
    drop of an outage logs one warning naming the connection and the servers, later drops are summed up
    at most once per `log_interval_s`, and the recovery says how many were lost; `close()` logs the total.
    librdkafka's own log is rate-limited to a line per `log_interval_s`. A connection that is missing or
    malformed disables the channel with a warning instead of failing the caller.

    `send(..., topic=other)` puts an event on another topic through the same producer (the definitions
    of a stream go next to its events). With `ensure`, the topic is created if missing (a few seconds at
    most; a failure is one more warning, not an error).
    """

    def __init__(
        self,
        hook: KafkaHook,
        topic: str,
        *,
        ensure: bool = False,
        max_buffered: int = 100_000,
        max_buffered_kib: int = 32 * 1024,
        delivery_timeout_s: float = 300,
        log_interval_s: float = 60,
        logger: Any = None,
        **producer_config: Any,
    ) -> None:
        self.topic = topic
        self.log = logger or log
        self.sent = 0
        self.dropped = 0
        self.max_buffered = max_buffered
        self.delivery_timeout_s = delivery_timeout_s
        self.log_interval_s = log_interval_s
        self._lock = threading.Lock()
        self._serving = threading.local()  # this thread is inside a poll/flush of this producer
        self._outage = False  # a warning was logged and no delivery succeeded since
        self._reported_drops = 0  # drops already counted in a warning
        self._last_report = 0.0
        self._where = f"connection {hook.conn_label!r}"
        rdkafka_log = logging.getLogger(f"{RDKAFKA_LOGGER_PREFIX}{topic}")
        self._rate = _RateLimited(log_interval_s)
        rdkafka_log.addFilter(self._rate)
        try:
            self._where += f" ({hook.servers})"
            if ensure:
                self._ensure(hook, rdkafka_log)
            self._producer: Producer | None = hook.producer(
                **{
                    "queue.buffering.max.messages": max_buffered,
                    "queue.buffering.max.kbytes": max_buffered_kib,
                    "message.timeout.ms": int(delivery_timeout_s * 1000),
                    "enable.idempotence": False,  # idempotence needs the broker up before the first send
                    "logger": rdkafka_log,
                    "error_cb": self._on_error,
                    **producer_config,
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
            self._warn(f"could not check or create the topic ({exc})")

    @property
    def enabled(self) -> bool:
        return self._producer is not None

    @property
    def buffered(self) -> int:
        """Events queued in memory, not delivered yet."""
        return len(self._producer) if self._producer is not None else 0

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self._warn(
                f"Kafka unreachable ({error.str()}); events wait in memory (at most {self.max_buffered} "
                f"or the KiB bound, {self.delivery_timeout_s:g} s each) and are dropped beyond that"
            )

    def _warn(self, why: str) -> None:
        """The first warning of an outage at once; later ones (with the drop count) rate-limited."""
        now = time.monotonic()
        with self._lock:
            new_drops = self.dropped - self._reported_drops
            if self._outage and (now - self._last_report < self.log_interval_s or not new_drops):
                return
            first = not self._outage
            self._outage = True
            self._last_report = now
            self._reported_drops = self.dropped
            dropped = self.dropped
        if first:
            self.log.warning(
                "Events on topic %r via %s are not getting through: %s. The work goes on; %d dropped so far.",
                self.topic,
                self._where,
                why,
                dropped,
            )
        else:
            self.log.warning(
                "Events on topic %r via %s: %d more dropped (%d in all): %s.",
                self.topic,
                self._where,
                new_drops,
                dropped,
                why,
            )

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        recovered = False
        with self._lock:
            if error is None:
                self.sent += 1
                if self._outage:
                    self._outage, recovered = False, True
                    dropped = self.dropped
                    self._reported_drops = dropped
            else:
                self.dropped += 1
        if recovered:
            self.log.warning(
                "Events on topic %r via %s are delivered again (%d dropped during the outage so far).",
                self.topic,
                self._where,
                dropped,
            )
        elif error is not None:
            self._warn(error.str())

    def send(self, key: bytes | str | None, value: bytes | str, *, topic: str | None = None) -> bool:
        """Queue one event; False if it was dropped at once (channel disabled or buffer full)."""
        if self._producer is None:
            with self._lock:
                self.dropped += 1
            return False
        try:
            self._producer.produce(topic or self.topic, key=key, value=value, on_delivery=self._delivered)
        except (BufferError, KafkaException) as exc:
            with self._lock:
                self.dropped += 1
            self._warn(f"{type(exc).__name__}: {exc}")
            return False
        self.poll()  # serve delivery callbacks, never wait
        return True

    def poll(self) -> None:
        """Serve delivery callbacks now (a publisher that sends rarely calls this between sends)."""
        self._serve(lambda producer: producer.poll(0))

    def flush(self, timeout: float) -> int:
        """Wait at most `timeout` seconds for queued events; returns how many are still queued."""
        left = self._serve(lambda producer: producer.flush(timeout))
        return self.buffered if left is None else left

    def _serve(self, call: Callable[[Producer], int]) -> int | None:
        """Run a call that serves this producer's callbacks, unless this thread is already inside one: a
        callback (librdkafka's log line, handled by a logging handler that publishes through this very
        channel) must not poll again, or confluent-kafka loses the outer call's thread state and aborts
        the process (CallState_get: Assertion `cs != NULL')."""
        producer = self._producer
        if producer is None or getattr(self._serving, "active", False):
            return None
        self._serving.active = True
        try:
            return call(producer)
        finally:
            self._serving.active = False

    def close(self, timeout: float = 5) -> int:
        """Flush for at most `timeout` seconds; whatever is still queued then is dropped. Returns the
        number of dropped events."""
        if self._producer is not None:
            if self.flush(timeout):
                self._producer.purge()  # what is left fails its delivery callback: counted as dropped
                self.flush(0)
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
