"""The real Airflow components: every one of them (and the task process of a worker) publishes its
health and the package's task logs, and the health watch fires on the real triggerer when a member
goes silent, not on the healthy ones. (Moves to tests/e2e once that tier lands.)"""

from __future__ import annotations

import json
import os
import socket
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
from tests.integration.airflow_stack import ROOT, AirflowStack, airflow_stack

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]
HOST = socket.gethostname()
SILENCE_TIMEOUT_S = 12


@pytest.fixture(scope="module")
def topics() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:12]
    names = {"health": f"test.e2e.health.{suffix}", "logs": f"test.e2e.logs.{suffix}"}
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in names.values()]).values():
        future.result()
    yield names
    for future in admin.delete_topics(list(names.values()), operation_timeout=10).values():
        future.result()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, topics: dict[str, str]) -> Iterator[AirflowStack]:
    env = {
        "DATAMOVER_HEALTH__PUBLISHER__INTERVAL_S": "1",
        "DATAMOVER_HEALTH__PUBLISHER__TOPIC": topics["health"],
        "DATAMOVER_HEALTH__WATCH__SILENCE_TIMEOUT_S": str(SILENCE_TIMEOUT_S),
        "DATAMOVER_HEALTH__WATCH__LOOKBACK_S": "30",
        "DATAMOVER_HEALTH__WATCH__THRESHOLDS": "{}",  # a busy test host must not raise load alerts
        "DATAMOVER_LOG_PUBLISHING__TOPIC": topics["logs"],
    }
    dags = [ROOT / "dags/health_watch.py", ROOT / "tests/integration/dags_probe/log_probe.py"]
    with airflow_stack(tmp_path_factory.mktemp("airflow"), dags, env) as s:
        yield s


def read_all(topic: str) -> list[dict]:
    """Everything on the topic now (up to its current end: the health topic never goes quiet)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}"})
    tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
    _, end = consumer.get_watermark_offsets(tp, timeout=10)
    consumer.assign([tp])
    docs: list[dict] = []
    deadline = time.monotonic() + 60
    while consumer.position([tp])[0].offset < end and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.5):
            if message.error() is None:
                docs.append(json.loads(message.value()))
    consumer.close()
    return docs


def test_every_component_and_the_worker_publish_health_and_task_logs(
    stack: AirflowStack, topics: dict[str, str]
) -> None:
    stack.unpause("log_probe")
    run_id = stack.trigger("log_probe")
    state = stack.wait(
        lambda: (
            next((r["state"] for r in stack.runs("log_probe") if r["dag_run_id"] == run_id), None)
            in ("success", "failed")
            and next(r["state"] for r in stack.runs("log_probe") if r["dag_run_id"] == run_id)
        ),
        240,
        "the log_probe run to finish",
    )
    assert state == "success", stack.log("scheduler")[-3000:]
    members = {d["payload"]["member_id"] for d in read_all(topics["health"])}
    components = ("scheduler", "triggerer", "dag-processor", "api-server", "worker")
    assert {f"{HOST}.{c}" for c in components} <= members
    logs = [d["payload"] for d in read_all(topics["logs"])]
    assert [p["message"] for p in logs if p["logger"] == "datamover.probe"] == [
        *(f"probe line {i}" for i in range(5)),
        "probe caught",
    ]
    assert {d["appName"] for d in logs} == {"log_probe.speak"}


class Ghost:
    """A member of our own, publishing every second until silenced."""

    def __init__(self, topic: str, member_id: str) -> None:
        self.channel = StreamChannel("kafka_default", topic)
        self.publisher = HealthPublisher(
            self.channel.publish,
            stream(HEALTH_STREAM),
            Member("datamover", "default", "default", member_id),
            interval_s=1,
            poll=self.channel.channel.poll,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.publisher.run, args=(self.stop,), daemon=True)
        self.thread.start()
        self.silenced_at = 0.0

    def silence(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.channel.close()
        self.silenced_at = time.time()


def test_the_health_watch_fires_on_the_real_triggerer_for_a_silenced_member_only(
    stack: AirflowStack, topics: dict[str, str]
) -> None:
    ghost_id = f"ghost-{uuid.uuid4().hex[:6]}.scheduler"
    ghost = Ghost(topics["health"], ghost_id)
    try:
        stack.unpause("health_watch")
        stack.wait(lambda: "Health watch on topic" in stack.log("triggerer"), 180, "the watcher to start")
        time.sleep(SILENCE_TIMEOUT_S + 3)  # the watch has seen the ghost and been in touch a full timeout
    finally:
        ghost.silence()

    def alert_runs() -> list[dict]:
        return [r for r in stack.runs("health_watch") if r["state"] in ("success", "failed")]

    runs = stack.wait(alert_runs, SILENCE_TIMEOUT_S + 90, "a health_watch run")
    alerted = []
    for run in runs:
        for ti in stack.task_instances("health_watch", run["dag_run_id"]):
            if ti["task_id"] == "alert":
                alerted.append((ti["state"], ti["rendered_map_index"]))
    assert alerted == [("failed", f"{ghost_id}: silent")], alerted
    assert runs[0]["state"] == "failed"

    assets = stack.api("GET", "/assets?name_pattern=health_alerts")["assets"]
    events = stack.api("GET", f"/assets/events?asset_id={assets[0]['id']}")["asset_events"]
    payloads = [e["extra"]["payload"] for e in events]
    assert [(p["member_id"], p["kind"]) for p in payloads] == [(ghost_id, "silent")]
    delay = payloads[0]["at_ms"] / 1000 - ghost.silenced_at
    assert SILENCE_TIMEOUT_S - 2 <= delay <= SILENCE_TIMEOUT_S + 10, delay
