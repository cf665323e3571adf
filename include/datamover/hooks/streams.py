"""Typed stream events on Kafka through a connection: one never-blocking side channel that carries a
stream's events and, on the compacted definitions topic, the definitions they need (see
datamover/streams/registry.py)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, Producer

from datamover.hooks.kafka import KafkaHook, SideChannel
from datamover.streams.definition import Event, StreamDefinition, definitions_topic, stream
from datamover.streams.logs import LOGS_STREAM, LineFormat, LogEvents, LogIdentity, Record
from datamover.streams.registry import DEFINITIONS_TOPIC_CONFIG, EventPublisher, channel_send
from datamover.streams.settings import LogFileConfig, LogPublishingConfig
from datamover.streams.tail import DEFAULT_PARTITIONER, FileTailer, KafkaTransactions, TailOptions, tailer_key

log = logging.getLogger(__name__)


class StreamChannel:
    """`publish(event, key)` validates, announces the definition once, sends; never blocks or raises."""

    def __init__(
        self,
        kafka_conn_id: str,
        events_topic: str,
        *,
        definitions: str | None = None,
        create_topics: bool = True,
        partitions: int = 1,
        logger: logging.Logger | None = None,
        **options: Any,
    ) -> None:
        self.log = logger or log
        self.hook = KafkaHook(kafka_conn_id)
        self.definitions_topic = definitions or definitions_topic()
        self.events_topic = events_topic
        if create_topics:
            self.create_topics(events_topic, partitions)
        self.channel: SideChannel = self.hook.side_channel(events_topic, logger=self.log, **options)
        self.publisher = EventPublisher(
            channel_send(self.channel), events_topic, self.definitions_topic, logger=self.log
        )

    def create_topics(self, events_topic: str, partitions: int) -> None:
        """Create the events and definitions topics if missing (a warning, never an error, if Kafka is
        down: the events then wait in the channel's buffer)."""
        try:
            self.hook.ensure_topics([events_topic], partitions=partitions, timeout=5)
            self.hook.ensure_topics([self.definitions_topic], timeout=5, config=DEFINITIONS_TOPIC_CONFIG)
        except Exception as exc:
            self.log.warning(
                "Could not check/create topics %s and %s via connection %r: %s",
                events_topic,
                self.definitions_topic,
                self.hook.conn_label,
                exc,
            )

    def create_topics_in_background(self, partitions: int = 1) -> threading.Thread:
        """`create_topics` without waiting for it (messages for a topic that appears meanwhile wait in
        the buffer and are delivered once it exists)."""
        args = (self.events_topic, partitions)
        thread = threading.Thread(target=self.create_topics, args=args, name="datamover-topics", daemon=True)
        thread.start()
        return thread

    def publish(self, event: Event, key: bytes | str | None = None) -> bool:
        return self.publisher.publish(event, key)

    def publish_log(self, events: LogEvents, record: Record, key: bytes | None) -> bool:
        """`record` as an event of its day's log stream: validated and encoded in one step
        (`LogEvents.encode`), then sent like `publish`. Raises ValueError for a record that fits no event."""
        definition, value = events.encode(record)
        return self.publisher.publish_encoded(definition, key, value)

    def announce(self, definitions: Iterable[StreamDefinition]) -> None:
        for definition in definitions:
            self.publisher.announce(definition)

    @property
    def dropped(self) -> int:
        return self.channel.dropped

    @property
    def sent(self) -> int:
        return self.channel.sent

    def close(self, timeout: float = 5) -> int:
        return self.channel.close(timeout)

    def __enter__(self) -> StreamChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log_identity(config: LogPublishingConfig, member_id: str, alias: str | None = None) -> LogIdentity:
    hostname = socket.gethostname()
    return LogIdentity(
        tenant_id=config.tenant_id,
        alias=alias or config.alias,
        member_id=member_id,
        server_name=hostname,
        ip=host_ip(),
    )


def host_ip() -> str:
    """This host's address as other hosts see it (the one a route to the outside leaves from)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent (UDP connect only picks a route)
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


# compacted: the last position per tailer is all that matters; hourly segments so compaction keeps up
POSITIONS_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": "3600000",
    "min.cleanable.dirty.ratio": "0.1",
}


def ensure_log_topics(config: LogPublishingConfig, definitions: str | None = None) -> None:
    """The topics file tailers write: events, positions (one partition), definitions (compacted)."""
    hook = KafkaHook(config.kafka_conn_id)
    hook.ensure_topics([config.topic], timeout=10)
    hook.ensure_topics([config.positions_topic], partitions=1, timeout=10, config=POSITIONS_TOPIC_CONFIG)
    hook.ensure_topics([definitions or definitions_topic()], timeout=10, config=DEFINITIONS_TOPIC_CONFIG)


def file_tailer(
    config: LogPublishingConfig,
    file: LogFileConfig,
    member_id: str,
    *,
    definitions: str | None = None,
    create_topics: bool = True,
    logger: logging.Logger | None = None,
) -> FileTailer:
    """A FileTailer for one configured file: exactly-once through Kafka transactions on the connection."""
    hook = KafkaHook(config.kafka_conn_id)
    topics = definitions or definitions_topic()
    if create_topics:
        ensure_log_topics(config, topics)
    # the connection is looked up once, now (the tailer's thread then builds clients without Airflow)
    client = hook.client_config()
    store = KafkaTransactions(
        # lz4: the JSON events of log lines shrink ~5x, so the broker and the network get a fifth of it
        producer_factory=lambda tid: Producer(
            {
                "linger.ms": 20,
                "compression.type": "lz4",
                **client,
                "transactional.id": tid,
                "enable.idempotence": True,
            }
        ),
        consumer_factory=lambda gid: Consumer(
            {
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **client,
                "group.id": gid,
                "isolation.level": "read_committed",
            }
        ),
        positions_topic=config.positions_topic,
        key=tailer_key(member_id, file.path),
        partitioner=client.get("partitioner", DEFAULT_PARTITIONER),
    )
    identity = log_identity(config, member_id, file.alias)
    tail = config.tail
    return FileTailer(
        file.path,
        LogEvents(stream(LOGS_STREAM), identity, file.app_name, file.path),
        store,
        config.topic,
        topics,
        fmt=LineFormat(file.start, file.pattern, file.default_priority),
        options=TailOptions(
            poll_interval_s=tail.poll_interval_s,
            flush_after_s=tail.flush_after_s,
            rotate_grace_s=tail.rotate_grace_s,
            batch_records=tail.batch_records,
            batch_bytes=tail.batch_bytes,
            start_at_end=file.start_at == "end",
            rotated=tuple(file.rotated),
            **({"lock_dir": tail.lock_dir} if tail.lock_dir else {}),
        ),
        logger=logger,
    )
