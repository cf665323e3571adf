"""The health watch trigger: consumes the health stream on the triggerer and fires a TriggerEvent per
alert (datamover.streams.watch). An event-driven trigger: an `AssetWatcher` on an asset runs it for as
long as a DAG scheduled on that asset is active, and every alert becomes an asset event (see
dags/health_watch.py). It holds no worker slot: Kafka is polled in a thread of the triggerer's runner.

The watch settings come from include/config/health.yaml (section `watch`), read in the triggerer, with
`overrides` (dotted keys, e.g. {"watch.silence_timeout_s": 30}) for a watcher of its own. What was
alerted is kept in the watched asset's state store, so a restarted triggerer does not alert again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from confluent_kafka import Consumer, KafkaError, TopicPartition

from datamover.hooks.kafka import KafkaHook
from datamover.streams.definition import decode, stream
from datamover.streams.health import HEALTH_STREAM
from datamover.streams.settings import health_config
from datamover.streams.watch import HealthWatch

RAISED_KEY = "health_watch_raised"


class HealthWatchTrigger(BaseEventTrigger):
    def __init__(self, overrides: dict[str, Any] | None = None, poll_s: float = 1.0) -> None:
        super().__init__()
        self.overrides = dict(overrides or {})
        self.poll_s = poll_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"overrides": self.overrides, "poll_s": self.poll_s},
        )

    async def _load_raised(self) -> dict[str, int]:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return {}
        try:
            value = await store.aget(RAISED_KEY)
        except Exception as exc:
            self.log.warning("Health watch: no saved alerts (%s); alerts may repeat once", exc)
            return {}
        return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}

    async def _save_raised(self, raised: dict[str, int]) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(RAISED_KEY, raised)
        except Exception as exc:
            self.log.warning("Health watch: alerts not saved (%s)", exc)

    def _consumer(self, conn_id: str, topic: str, lookback_s: float) -> Consumer:
        consumer = KafkaHook(conn_id).consumer(f"datamover.health-watch.{uuid.uuid4().hex[:12]}")
        metadata = consumer.list_topics(topic, timeout=15)
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        if not partitions or metadata.topics[topic].error is not None:
            consumer.close()
            raise RuntimeError(f"health topic {topic!r} does not exist (yet): no publisher has started")
        since_ms = int((time.time() - lookback_s) * 1000)
        offsets = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], 15)
        consumer.assign(offsets)
        return consumer

    async def run(self) -> AsyncIterator[TriggerEvent]:
        config = health_config(self.overrides)
        watch_config = config.watch
        definition = stream(HEALTH_STREAM)
        watch = HealthWatch(watch_config, await self._load_raised())
        consumer: Consumer | None = None
        last_probe = 0.0
        self.log.info(
            "Health watch on topic %s: members %s, silence timeout %g s, thresholds %s",
            config.watch_topic,
            watch_config.members,
            watch_config.silence_timeout_s,
            {k: v.model_dump() for k, v in watch_config.thresholds.items()},
        )
        try:
            while True:
                if consumer is None:
                    try:
                        consumer = await asyncio.to_thread(
                            self._consumer, config.watch_conn_id, config.watch_topic, watch_config.lookback_s
                        )
                    except Exception as exc:
                        self.log.warning("Health watch cannot read %s yet: %s", config.watch_topic, exc)
                        await asyncio.sleep(5)
                        continue
                messages = await asyncio.to_thread(consumer.consume, 500, self.poll_s)
                answered = True
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            answered = False
                        continue
                    try:
                        doc = decode(message.value(), definition)
                    except ValueError as exc:
                        self.log.warning("Health watch skips a message: %s", exc)
                        continue
                    watch.observe(doc["payload"], int(doc["timestamp"]))
                now_ms = int(time.time() * 1000)
                if answered and not messages:
                    # an idle poll says nothing about the broker: ask it, now and then
                    if time.monotonic() - last_probe < 5:
                        answered = False  # no news either way; contact() keeps its last answer
                    else:
                        last_probe = time.monotonic()
                        answered = await asyncio.to_thread(self._broker_answers, consumer, config.watch_topic)
                if answered:
                    watch.contact(now_ms, max_gap_ms=int((self.poll_s + 15) * 1000))
                alerts = watch.check(now_ms)
                if alerts:
                    await self._save_raised(watch.raised)
                for alert in alerts:
                    self.log.warning("Health alert: %s", alert.reason)
                    yield TriggerEvent(alert.to_dict())
        finally:
            if consumer is not None:
                await asyncio.to_thread(consumer.close)

    @staticmethod
    def _broker_answers(consumer: Consumer, topic: str) -> bool:
        try:
            return topic in consumer.list_topics(topic, timeout=5).topics
        except Exception:
            return False
