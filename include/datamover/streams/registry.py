"""Stream definitions travel with the streams: publishers put every definition they use on a compacted
Kafka topic keyed by stream id (`name:version`), and a consumer decodes any event it meets from what that
topic holds alone, without the package's streams.yaml (DataBridge receivers look a stream id up the same
way).

    publisher = EventPublisher(send, events_topic="datamover.health", definitions_topic=...)
    publisher.publish(Event(definition, payload=...), key=member_id)    # validated, then sent

    registry = DefinitionRegistry(consumer, definitions_topic)            # any confluent-kafka Consumer
    definition, doc = registry.decode(message.value())

A concrete stream of a family (`logs.t1.app.2026.11.24:1.0.0`) is published with its family
(`logs:1.0.0`, carrying the `name_template`), so a consumer can still decode it if the concrete
definition was lost on the way. Kafka keys and values are UTF-8 JSON; the value is
`StreamDefinition.to_mapping()` plus `stream_id`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from datamover.errors import ConfigError
from datamover.streams.definition import Event, StreamDefinition, decode

log = logging.getLogger(__name__)

# Topic settings for the definitions topic: compacted (the last definition per stream id is kept forever).
DEFINITIONS_TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}


class Send(Protocol):
    """How a publisher hands one message to Kafka: never blocks, never raises, False if dropped."""

    def __call__(self, topic: str, key: bytes | None, value: bytes) -> bool: ...


class UnknownStreamError(ValueError):
    """An event names a stream id that no published definition describes."""


def definition_message(definition: StreamDefinition) -> tuple[bytes, bytes]:
    """(key, value) of a definition on the definitions topic."""
    doc = {"stream_id": definition.stream_id, **definition.to_mapping()}
    return definition.stream_id.encode(), json.dumps(doc, separators=(",", ":")).encode()


def split_stream_id(stream_id: str) -> tuple[str, str]:
    name, sep, version = stream_id.rpartition(":")
    if not sep or not name or not version:
        raise UnknownStreamError(f"{stream_id!r} is not a stream id (name:version)")
    return name, version


class EventPublisher:
    """Validates each event against its definition, puts the definition on the definitions topic the
    first time this publisher uses a stream, then the event on `events_topic`. Never raises: an event
    that does not fit its definition is a bug, logged once per stream and counted in `invalid`."""

    def __init__(
        self,
        send: Send,
        events_topic: str,
        definitions_topic: str,
        logger: logging.Logger | None = None,
        announced: Iterable[str] = (),
    ) -> None:
        self._send = send
        self.events_topic = events_topic
        self.definitions_topic = definitions_topic
        self.log = logger or log
        self.invalid = 0
        self._published: set[str] = set(announced)
        self._invalid_streams: set[str] = set()
        self._lock = threading.Lock()

    @property
    def announced(self) -> frozenset[str]:
        """Stream ids whose definitions this publisher sent."""
        return frozenset(self._published)

    def announce(self, definition: StreamDefinition) -> None:
        """Publish `definition` (and its family) unless this publisher already did."""
        if definition.stream_id in self._published:
            return
        family = definition.family_definition()
        for d in (family, definition) if family is not None else (definition,):
            with self._lock:
                if d.stream_id in self._published:
                    continue
                self._published.add(d.stream_id)
            key, value = definition_message(d)
            self._send(self.definitions_topic, key, value)

    def publish_encoded(self, definition: StreamDefinition, key: bytes | None, value: bytes) -> bool:
        """Send an event already validated and encoded against `definition` (e.g. `LogEvents.encode`)."""
        if definition.stream_id not in self._published:
            self.announce(definition)
        return self._send(self.events_topic, key, value)

    def publish(self, event: Event, key: bytes | str | None = None) -> bool:
        """Validate and send one event; False if it was invalid or dropped."""
        try:
            value = event.encode()
        except ValueError as exc:
            self.invalid += 1
            stream_id = event.definition.stream_id
            if stream_id not in self._invalid_streams:
                self._invalid_streams.add(stream_id)
                self.log.warning("Event not sent, it does not fit its definition: %s", exc)
            return False
        self.announce(event.definition)
        return self._send(self.events_topic, key.encode() if isinstance(key, str) else key, value)


class DefinitionRegistry:
    """Every definition published on the definitions topic, read with `consumer` (assigned manually, no
    group offsets). An event naming a stream not seen yet makes it read on (definitions and events
    travel on different partitions, so an event may arrive first), for at most `wait_s` seconds."""

    def __init__(self, consumer: Consumer, topic: str, wait_s: float = 10) -> None:
        self.consumer = consumer
        self.topic = topic
        self.wait_s = wait_s
        self.definitions: dict[str, StreamDefinition] = {}
        self._assigned = False

    def _assign(self) -> None:
        metadata = self.consumer.list_topics(self.topic, timeout=10)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            why = topic.error.str() if topic is not None and topic.error is not None else "no such topic"
            raise ConfigError(f"Definitions topic {self.topic!r}: {why}. Fix: start a publisher first.")
        self.consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in topic.partitions])
        self._assigned = True

    def refresh(self, timeout: float = 10) -> int:
        """Read the topic up to its current end; returns how many definitions were read."""
        if not self._assigned:
            self._assign()
        ends = {}
        for tp in self.consumer.assignment():
            low, high = self.consumer.get_watermark_offsets(tp, timeout=timeout)
            if high > low:
                ends[tp.partition] = high
        read = 0
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in self.consumer.consume(500, timeout=0.5):
                if message.error() is not None:
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(message.error())
                    continue
                read += 1
                self._take(message.key(), message.value())
            # the position, not the last message: transaction markers take offsets no message has
            for tp in self.consumer.position([TopicPartition(self.topic, p) for p in ends]):
                if tp.offset >= ends[tp.partition]:
                    ends.pop(tp.partition)
        return read

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        stream_id = key.decode() if key else ""
        if value is None:  # a tombstone retires a stream id
            self.definitions.pop(stream_id, None)
            return
        try:
            definition = StreamDefinition.from_published(json.loads(value), f"{self.topic}[{stream_id}]")
        except (ValueError, ConfigError) as exc:
            log.warning("Skipping an unreadable definition on %s: %s", self.topic, exc)
            return
        self.definitions[definition.stream_id] = definition

    def _lookup(self, stream_id: str) -> StreamDefinition | None:
        if (definition := self.definitions.get(stream_id)) is not None:
            return definition
        name, version = split_stream_id(stream_id)
        families = (d for d in self.definitions.values() if d.version == version and d.is_template)
        for family in families:
            if (concrete := family.named(name)) is not None:
                return concrete
        return None

    def definition(self, stream_id: str) -> StreamDefinition:
        """The definition of `stream_id`, reading on for it if needed."""
        deadline = time.monotonic() + self.wait_s
        while True:
            if (definition := self._lookup(stream_id)) is not None:
                return definition
            if time.monotonic() >= deadline:
                raise UnknownStreamError(
                    f"no definition of stream {stream_id!r} on {self.topic} "
                    f"({len(self.definitions)} known: {', '.join(sorted(self.definitions)) or 'none'})"
                )
            if not self.refresh(timeout=max(0.5, deadline - time.monotonic())):
                time.sleep(0.2)

    def decode(self, data: bytes | str) -> tuple[StreamDefinition, dict[str, Any]]:
        """Decode and validate one event with the published definition of its stream."""
        doc = json.loads(data)
        stream_id = doc.get("stream") if isinstance(doc, dict) else None
        if not isinstance(stream_id, str):
            raise UnknownStreamError("the message is not a stream event (no 'stream' id)")
        definition = self.definition(stream_id)
        return definition, decode(data, definition)


def publish_definitions(send: Send, topic: str, definitions: Iterable[StreamDefinition]) -> int:
    """Put `definitions` on the definitions topic (e.g. every stream of streams.yaml at once)."""
    count = 0
    for definition in definitions:
        key, value = definition_message(definition)
        count += bool(send(topic, key, value))
    return count


def channel_send(channel: Any) -> Send:
    """A `Send` over a `datamover.hooks.kafka.SideChannel` (kept untyped: no Airflow import here)."""
    send: Callable[..., bool] = channel.send
    return lambda topic, key, value: send(key, value, topic=topic)
