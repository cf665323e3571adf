"""A Kafka outage while publishing: the work goes on, nothing waits on Kafka, what cannot be kept is
counted.

Stops the SHARED Kafka broker for about a minute (`scripts/services down kafka`) and always starts it
again (`up kafka`, then waits until it answers): run with the same DATAMOVER_SERVICES_DIR as the services.
In that one outage:
- a DAG run (`airflow dags test`, task logs published) succeeds, and its log's warning counts the
  events it dropped;
- a long-lived publisher keeps what it could not send in memory and delivers all of it afterwards;
- one with a tiny buffer drops the excess, counted in its warnings, and says when it recovers;
- the file tailer loses no line and repeats none (the file is its buffer).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.hooks.streams import StreamChannel, file_tailer
from datamover.streams.definition import stream
from datamover.streams.health import HEALTH_STREAM, HealthPublisher, Member
from datamover.streams.settings import LogFileConfig, LogPublishingConfig, TailConfig
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]
PROBE_DAGS = Path(__file__).resolve().parent / "dags_probe"


def kafka_answers(timeout: float = 3) -> bool:
    try:
        AdminClient({"bootstrap.servers": BOOTSTRAP}).list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts/services"), *args], capture_output=True, text=True, timeout=300
    )


@contextmanager
def kafka_stopped() -> Iterator[None]:
    down = services("down", "kafka")
    try:
        deadline = time.monotonic() + 30
        while kafka_answers(1):
            assert time.monotonic() < deadline, (
                "the shared Kafka did not stop: run the tests with the services' DATAMOVER_SERVICES_DIR\n"
                + down.stderr
            )
            time.sleep(1)
        yield
    finally:
        up = services("up", "kafka")
        deadline = time.monotonic() + 180
        while not kafka_answers(3):
            assert time.monotonic() < deadline, f"Kafka did not come back:\n{up.stdout}\n{up.stderr}"
            time.sleep(1)


class Ticker:
    """A health publisher every 0.1 s through its own channel, counting what it published."""

    def __init__(self, topic: str, member_id: str, logger: logging.Logger, **channel_options: object) -> None:
        self.channel = StreamChannel("kafka_default", topic, logger=logger, **channel_options)
        self.publisher = HealthPublisher(
            self.channel.publish,
            stream(HEALTH_STREAM),
            Member("c", "np", "p", member_id),
            interval_s=0.1,
            read=lambda: {"load_average": 0.1},
            poll=self.channel.channel.poll,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.publisher.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)


def count_events(topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}"})
    tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
    _, end = consumer.get_watermark_offsets(tp, timeout=10)
    consumer.close()
    return end


def committed_lines(topic: str, expected: int, timeout: float) -> list[str]:
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}", "isolation.level": "read_committed"}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    lines: list[str] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    while time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is None:
                lines.append(json.loads(message.value())["payload"]["message"])
        if len(lines) >= expected and settle_until is None:
            settle_until = time.monotonic() + 3
        if settle_until is not None and time.monotonic() >= settle_until:
            break
    consumer.close()
    return lines


@pytest.fixture
def topics() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    names = {
        k: f"test.outage.{k}.{suffix}"
        for k in ("roomy", "tiny", "tasklogs", "tail", "positions", "definitions")
    }
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in names.values()]).values():
        future.result()
    yield names
    if kafka_answers():
        for future in admin.delete_topics(list(names.values()), operation_timeout=10).values():
            future.result()


def test_a_kafka_outage_costs_no_work_and_every_drop_is_counted(
    topics: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    tiny_log = logging.getLogger("test.outage.tiny")
    roomy = Ticker(topics["roomy"], "roomy.scheduler", logging.getLogger("test.outage.roomy"))
    tiny = Ticker(topics["tiny"], "tiny.scheduler", tiny_log, max_buffered=5, log_interval_s=2)

    log_file = tmp_path / "app.log"
    config = LogPublishingConfig(
        topic=topics["tail"],
        positions_topic=topics["positions"],
        files=[LogFileConfig(path=str(log_file), app_name="app")],
        tail=TailConfig(poll_interval_s=0.1, flush_after_s=0.3, lock_dir=str(tmp_path)),
    )
    written: list[str] = []

    def write(n: int) -> None:
        with log_file.open("a") as f:
            for _ in range(n):
                written.append(f"line {len(written):05d}")
                f.write(f"2026-11-24 10:00:00,000 INFO app - {written[-1]}\n")

    write(100)
    tailer = file_tailer(config, config.files[0], "outage.scheduler", definitions=topics["definitions"])
    tail_stop = threading.Event()
    tail_thread = threading.Thread(target=tailer.run, args=(tail_stop,), daemon=True)
    tail_thread.start()
    time.sleep(3)  # everyone delivered something before the outage
    assert roomy.channel.sent > 0 and tiny.channel.sent > 0

    # a DAG run whose task waits (its log publisher ready) until the broker is down
    ready, go = tmp_path / "ready", tmp_path / "go"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROBE_DAGS),
        "DATAMOVER_LOG_PUBLISHING__TOPIC": topics["tasklogs"],
        "LOG_PROBE_READY": str(ready),
        "LOG_PROBE_GO": str(go),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    run = subprocess.Popen(
        [airflow, "dags", "test", "log_probe"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert run.poll() is None and time.monotonic() < deadline, "the DAG run's task did not start"
            time.sleep(0.2)
        with kafka_stopped():
            go.touch()
            write(200)
            output, _ = run.communicate(timeout=300)
            time.sleep(5)  # the tickers publish into the outage a little longer
    finally:
        if run.poll() is None:
            run.kill()
    try:
        # the DAG run succeeded, and its task log counts every event it could not deliver:
        # 6 records (5 lines + 1 with a stack trace) and the 2 definitions of the day's log stream
        assert run.returncode == 0, output[-3000:]
        assert "state=success" in output
        dropped = re.search(
            r"(\d+) event\(s\) for topic '([^']+)' via .* were dropped \((\d+) delivered", output
        )
        assert dropped is not None, output[-3000:]
        assert (int(dropped.group(1)), dropped.group(2), int(dropped.group(3))) == (8, topics["tasklogs"], 0)

        write(100)
        time.sleep(2)
        roomy.finish()
        tiny.finish()
        assert roomy.channel.channel.flush(60) == 0 and tiny.channel.channel.flush(60) == 0

        # the roomy publisher kept everything and delivered it all once Kafka was back
        assert roomy.channel.dropped == 0
        published = roomy.publisher.sent + 1  # + the definition
        assert roomy.channel.sent == published == count_events(topics["roomy"]) + 1
        assert roomy.publisher.rounds > 100  # it published through the outage

        # the tiny one dropped the excess, and its warnings add up to what it dropped
        assert tiny.channel.dropped > 50
        assert tiny.channel.sent + tiny.channel.dropped == tiny.publisher.rounds + 1
        tiny.channel.close(1)
        messages = [r.getMessage() for r in caplog.records if r.name == tiny_log.name]
        assert any("are not getting through" in m for m in messages), messages
        assert any("are delivered again" in m for m in messages), messages
        totals = [int(m.split()[0]) for m in messages if "were dropped" in m]
        assert totals == [tiny.channel.dropped], messages

        # the tailer: every line once, in order (before, during and after the outage)
        assert committed_lines(topics["tail"], len(written), timeout=120) == written
    finally:
        tail_stop.set()
        tail_thread.join(30)
        roomy.channel.close(1)
        tiny.channel.close(1)
