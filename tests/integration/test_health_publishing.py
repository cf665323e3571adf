"""Health statistics on real Kafka, and the health watch trigger reading them (run here in asyncio; the
e2e tier runs it on the real triggerer)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.hooks.streams import StreamChannel
from datamover.streams.definition import stream
from datamover.streams.health import HEALTH_STREAM, HealthPublisher, Member
from datamover.streams.registry import DefinitionRegistry
from datamover.triggers.health import HealthWatchTrigger

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]


@pytest.fixture
def health_topic() -> Iterator[str]:
    topic = f"test.health.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    yield topic
    for future in admin.delete_topics([topic], operation_timeout=10).values():
        future.result()


class Member_:
    """A member publishing every `interval` s in a thread until `silence()`."""

    def __init__(self, channel: StreamChannel, member_id: str, interval: float, load: float = 0.3) -> None:
        self.publisher = HealthPublisher(
            channel.publish,
            stream(HEALTH_STREAM),
            Member("c1", "np1", "p1", member_id),
            interval_s=interval,
            read=lambda: {"memory_consumption": 40.0, "load_average": load},
            poll=channel.channel.poll,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.publisher.run, args=(self.stop,), daemon=True)
        self.thread.start()
        self.silenced_at = 0.0

    def silence(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.silenced_at = time.time()


def test_published_health_decodes_with_the_published_definition(health_topic: str) -> None:
    with StreamChannel("kafka_default", health_topic) as channel:
        member = Member_(channel, "h.scheduler", 0.2)
        time.sleep(0.5)
        member.silence()
        assert channel.channel.flush(10) == 0
    assert channel.dropped == 0
    sent = member.publisher.sent
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(health_topic, 0, OFFSET_BEGINNING)])
    registry_consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}"})
    registry = DefinitionRegistry(registry_consumer, channel.definitions_topic)
    docs = []
    while len(docs) < sent:
        message = consumer.poll(10)
        assert message is not None, f"{len(docs)} of {sent}"
        docs.append(registry.decode(message.value())[1])
    assert sent >= 4 and len(docs) == sent
    assert [d["payload"]["health_description"] for d in docs[:2]] == ["memory_consumption", "load_average"]
    assert {d["payload"]["member_id"] for d in docs} == {"h.scheduler"}


async def first_alerts(trigger: HealthWatchTrigger, timeout: float) -> list[dict]:
    alerts: list[dict] = []

    async def collect() -> None:
        async for event in trigger.run():
            alerts.append(event.payload)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), timeout)
    return alerts


def test_the_watch_fires_on_a_silenced_member_within_its_timeout_and_not_on_a_healthy_one(
    health_topic: str,
) -> None:
    timeout_s = 6
    trigger = HealthWatchTrigger(
        overrides={
            "publisher.topic": health_topic,
            "watch.silence_timeout_s": timeout_s,
            "watch.thresholds": {"load_average": {"above": 5.0, "for_s": 2}},
        },
        poll_s=0.5,
    )
    with StreamChannel("kafka_default", health_topic) as channel:
        healthy = Member_(channel, "a.scheduler", 0.5)
        doomed = Member_(channel, "b.triggerer", 0.5)
        busy = Member_(channel, "c.dag-processor", 0.5, load=7.5)
        worker = Member_(channel, "d.worker", 0.5)

        async def scenario() -> list[dict]:
            watching = asyncio.ensure_future(first_alerts(trigger, timeout_s * 3 + 8))
            await asyncio.sleep(timeout_s + 1)  # the watch is in touch for a full timeout
            await asyncio.to_thread(doomed.silence)
            await asyncio.to_thread(worker.silence)  # a worker's task ended: not an alert
            return await watching

        alerts = asyncio.run(scenario())
        healthy.silence()
        busy.silence()
    by_member = {(a["member_id"], a["kind"]): a for a in alerts}
    assert set(by_member) == {("b.triggerer", "silent"), ("c.dag-processor", "high_load")}, alerts
    silent = by_member[("b.triggerer", "silent")]
    assert silent["at_ms"] / 1000 - doomed.silenced_at <= timeout_s + 3  # within its timeout (+ a poll)
    assert silent["at_ms"] / 1000 - doomed.silenced_at >= timeout_s - 1
    assert "b.triggerer stopped publishing" in silent["reason"]
    assert by_member[("c.dag-processor", "high_load")]["value"] == 7.5
