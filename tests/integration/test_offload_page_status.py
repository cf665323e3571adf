"""The Offload page's status board against the real Kafka: it follows the status stream the offload
publishes, starts a little back in time (a restarted API server shows a running offload at once), and
waits for a topic that does not exist yet."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.ark.progress import Progress, StatusPublisher
from datamover.hooks.kafka import KafkaHook
from datamover.offload_page.status import StatusBoard
from datamover.streams.definition import stream
from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def topic() -> Iterator[str]:
    name = f"ark.offload.status.page-{uuid.uuid4().hex[:8]}"
    yield name
    admin = AdminClient(KafkaHook("kafka_default").client_config())
    for future in admin.delete_topics([name]).values():
        future.exception(timeout=30)  # gone, or never created


def board_for(topic: str, **options: float) -> StatusBoard:
    group = f"offload-page-it-{uuid.uuid4().hex[:6]}"
    return StatusBoard(
        lambda: KafkaHook("kafka_default").consumer(group), topic, stream("ark_offload_status"), **options
    )


def test_board_follows_the_stream_from_a_little_back_in_time(topic: str) -> None:
    config = KafkaHook("kafka_default").client_config()
    admin = AdminClient(config)  # kept referenced until the future is done
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    definition = stream("ark_offload_status")
    producer = Producer(config)
    old, recent, live = (f"run-{uuid.uuid4().hex[:6]}" for _ in range(3))

    def publish(run_id: str, progress: Progress, at_ms: int | None = None) -> None:
        published: list[tuple[bytes, bytes]] = []
        StatusPublisher(progress, definition, lambda k, v: published.append((k, v)), run_id).publish()
        key, value = published[0]
        if at_ms is None:
            producer.produce(topic, key=key, value=value)
        else:
            producer.produce(topic, key=key, value=value, timestamp=at_ms)

    now_ms = int(time.time() * 1000)
    publish(old, Progress(), at_ms=now_ms - 3_600_000)  # an hour ago: outside the lookback
    publish(recent, Progress(), at_ms=now_ms - 60_000)  # a minute ago: a running offload
    producer.flush(30)
    board = board_for(topic, lookback_s=900)
    board.ensure_started()
    try:
        wait_for(
            lambda: board.latest(recent), 60, "the board to read the recent status", lambda: board.last_error
        )
        assert board.latest(old) is None
        progress = Progress(logs={})
        publish(live, progress)
        producer.flush(30)
        status = wait_for(lambda: board.latest(live), 60, "a live status", lambda: board.last_error)
        assert status["state"] == "offloading" and status["percent"] == 100.0  # an empty offload is done
        assert status["logs"] == {} and status["errors"] == [] and status["host"]
        assert board.rejected == 0
    finally:
        board.stop()


def test_board_waits_for_the_topic_and_never_raises(topic: str) -> None:
    board = board_for(topic, retry_s=1.0)
    board.ensure_started()
    try:
        wait_for(lambda: board.last_error, 60, "the board to report the missing topic")
        assert "does not exist yet" in str(board.last_error)
        config = KafkaHook("kafka_default").client_config()
        admin = AdminClient(config)
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
        producer = Producer(config)
        published: list[tuple[bytes, bytes]] = []
        StatusPublisher(
            Progress(), stream("ark_offload_status"), lambda k, v: published.append((k, v)), "late-run"
        ).publish()
        # the board assigns itself from "now minus lookback", so a message sent right after the topic
        # appears is read whether the board found the topic before or after it was sent
        producer.produce(topic, key=published[0][0], value=published[0][1])
        producer.flush(30)
        wait_for(
            lambda: board.latest("late-run"), 60, "the board to find the new topic", lambda: board.last_error
        )
    finally:
        board.stop()
