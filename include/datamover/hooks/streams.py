"""Typed stream events on Kafka through a connection: one never-blocking side channel that carries a
stream's events and, on the compacted definitions topic, the definitions they need (see
datamover/streams/registry.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from datamover.hooks.kafka import KafkaHook, SideChannel
from datamover.streams.definition import Event, StreamDefinition, definitions_topic
from datamover.streams.registry import DEFINITIONS_TOPIC_CONFIG, EventPublisher, channel_send

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

    def publish(self, event: Event, key: bytes | str | None = None) -> bool:
        return self.publisher.publish(event, key)

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
