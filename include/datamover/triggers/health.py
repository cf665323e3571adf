"""The health watch trigger: consumes the health stream on the triggerer and fires a TriggerEvent per
alert (datamover.streams.watch). An event-driven trigger: an `AssetWatcher` on an asset runs it for as
long as a DAG scheduled on that asset is active, and every alert becomes an asset event (see
dags/health_watch.py). It holds no worker slot, and never blocks the triggerer's event loop: the
package's modules, the config, Kafka and decoding are all handled in a thread (`_Source`); this module
imports nothing heavy, so DAG files that build the watcher parse fast.

The watch settings come from include/config/health.yaml (section `watch`), read in the triggerer, with
`overrides` (dotted keys, e.g. {"watch.silence_timeout_s": 30}) for a watcher of its own. What was
alerted is kept in the watched asset's state store when the triggerer offers one (Airflow 3.3), so a
restarted triggerer does not alert again.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

RAISED_KEY = "health_watch_raised"


class _Source:
    """The blocking side, used from a thread: config, the Kafka consumer, decoding."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        from datamover.streams.definition import stream
        from datamover.streams.health import HEALTH_STREAM
        from datamover.streams.settings import health_config

        self.config = health_config(overrides)
        self.definition = stream(HEALTH_STREAM)
        self.consumer: Any = None

    def connect(self) -> None:
        from confluent_kafka import TopicPartition

        from datamover.hooks.kafka import KafkaHook

        topic = self.config.watch_topic
        consumer = KafkaHook(self.config.watch_conn_id).consumer(
            f"datamover.health-watch.{uuid.uuid4().hex[:12]}"
        )
        metadata = consumer.list_topics(topic, timeout=15)
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        if not partitions or metadata.topics[topic].error is not None:
            consumer.close()
            raise RuntimeError(f"health topic {topic!r} does not exist (yet): no publisher has started")
        since_ms = int((time.time() - self.config.watch.lookback_s) * 1000)
        consumer.assign(
            consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], 15)
        )
        self.consumer = consumer

    def poll(self, timeout: float) -> tuple[list[tuple[dict[str, Any], int]], bool | None, list[str]]:
        """(readings as (payload, timestamp ms), whether the broker answered (None: no news), problems)."""
        from confluent_kafka import KafkaError

        from datamover.streams.definition import decode

        readings: list[tuple[dict[str, Any], int]] = []
        problems: list[str] = []
        answered: bool | None = None
        for message in self.consumer.consume(500, timeout):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    answered = True
                else:
                    answered, _ = False, problems.append(error.str())
                continue
            answered = True if answered is None else answered
            try:
                doc = decode(message.value(), self.definition)
            except ValueError as exc:
                problems.append(f"skipped a message: {exc}")
                continue
            readings.append((doc["payload"], int(doc["timestamp"])))
        return readings, answered, problems

    def broker_answers(self) -> bool:
        try:
            topic = self.config.watch_topic
            return topic in self.consumer.list_topics(topic, timeout=5).topics
        except Exception:
            return False

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        source = await asyncio.to_thread(_Source, self.overrides)
        from datamover.streams.watch import HealthWatch  # imported by _Source already: no cost here

        config = source.config
        watch = HealthWatch(config.watch, await self._load_raised())
        self.log.info(
            "Health watch on topic %s: members %s, silence timeout %g s, thresholds %s",
            config.watch_topic,
            config.watch.members,
            config.watch.silence_timeout_s,
            {k: v.model_dump() for k, v in config.watch.thresholds.items()},
        )
        last_probe = 0.0
        try:
            while True:
                if source.consumer is None:
                    try:
                        await asyncio.to_thread(source.connect)
                    except Exception as exc:
                        self.log.warning("Health watch cannot read %s yet: %s", config.watch_topic, exc)
                        await asyncio.sleep(5)
                        continue
                readings, answered, problems = await asyncio.to_thread(source.poll, self.poll_s)
                for problem in problems[:3]:
                    self.log.warning("Health watch: %s", problem)
                for payload, timestamp_ms in readings:
                    watch.observe(payload, timestamp_ms)
                if answered is None and time.monotonic() - last_probe >= 5:
                    # an idle poll says nothing about the broker: ask it, now and then
                    last_probe = time.monotonic()
                    answered = await asyncio.to_thread(source.broker_answers)
                now_ms = int(time.time() * 1000)
                if answered:
                    watch.contact(now_ms, max_gap_ms=int((self.poll_s + 15) * 1000))
                alerts = watch.check(now_ms)
                if alerts:
                    await self._save_raised(watch.raised)
                for alert in alerts:
                    self.log.warning("Health alert: %s", alert.reason)
                    yield TriggerEvent(alert.to_dict())
        finally:
            await asyncio.to_thread(source.close)
