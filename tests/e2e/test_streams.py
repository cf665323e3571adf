"""Health and log publishing on the real components: every component and the task processes of the
worker publish their health, the package's task logs reach the log stream, and the health watch fires
on the real triggerer for a member that went silent, not for the healthy ones."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from datamover.hooks.streams import StreamChannel
from datamover.streams.definition import definitions_topic, stream
from datamover.streams.health import HEALTH_STREAM, HealthPublisher, Member
from datamover.streams.registry import DefinitionRegistry
from tests.e2e.conftest import AirflowStack, wait_for
from tests.e2e.streams_settings import SILENCE_TIMEOUT_S, TAILED_APP

pytestmark = pytest.mark.e2e

BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]
HOST = socket.gethostname()


def topics(stack: AirflowStack) -> tuple[str, str]:
    folder = Path(stack.env["DATAMOVER_CONFIG_DIR"])
    health = yaml.safe_load((folder / "health.yaml").read_text())
    logs = yaml.safe_load((folder / "log_publishing.yaml").read_text())
    return health["publisher"]["topic"], logs["topic"]


def read_all(topic: str) -> list[dict[str, Any]]:
    """Every event on the topic now (committed ones), decoded with the published definitions only."""

    def consumer() -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"e2e-{uuid.uuid4()}",
                "isolation.level": "read_committed",
            }
        )

    events, registry = consumer(), DefinitionRegistry(consumer(), definitions_topic())
    tp = TopicPartition(topic, 0, OFFSET_BEGINNING)
    _, end = events.get_watermark_offsets(tp, timeout=10)
    events.assign([tp])
    docs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while events.position([tp])[0].offset < end and time.monotonic() < deadline:
        for message in events.consume(1000, timeout=0.5):
            if message.error() is None:
                docs.append(registry.decode(message.value())[1])
    events.close()
    return docs


def test_every_component_and_the_workers_publish_health_and_task_logs(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    health_topic, logs_topic = topics(stack)
    stack.unpause("connectivity_check")
    run_id = stack.trigger("connectivity_check", stack.form_conf("connectivity_check"))
    run = stack.wait_run("connectivity_check", run_id, timeout=240)
    assert run["state"] == "success", stack.task_states("connectivity_check", run_id)

    members = {d["payload"]["member_id"] for d in read_all(health_topic)}
    components = ("scheduler", "triggerer", "dag-processor", "api-server", "worker")
    assert {f"{HOST}.{c}" for c in components} <= members, members
    # the package's operators log through structlog: the tap publishes them, one app per task
    logs = [d["payload"] for d in read_all(logs_topic)]
    # (the session's other tests may have run connectivity_check too: this run's records are ours)
    ours = [
        p
        for p in logs
        if p["appName"] == "connectivity_check.check_kafka_default"
        and p["instance"].startswith(f"connectivity_check/{run_id}/")
    ]
    assert ours and all(p["logger"].startswith("airflow.task.operators.datamover") for p in ours), logs[:5]
    assert any("Kafka at" in p["message"] for p in ours), [p["message"] for p in ours]


def test_the_scheduler_tails_the_log_file_configured_for_it(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    _, logs_topic = topics(stack)
    tailed = Path(stack.env["DATAMOVER_CONFIG_DIR"]).parent / "tailed.log"
    lines = [f"2026-11-24 10:00:0{i},000 INFO e2e.app - e2e line {i}" for i in range(5)]
    with tailed.open("a") as f:
        f.write("\n".join([*lines[:3], "Traceback (most recent call last):", "  boom", *lines[3:]]) + "\n")

    def tailed_records() -> list[dict[str, Any]]:
        return [d["payload"] for d in read_all(logs_topic) if d["payload"]["appName"] == TAILED_APP]

    records = wait_for(lambda: len(got := tailed_records()) >= 5 and got, 120, "the tailed lines on Kafka")
    assert [r["message"] for r in records] == [f"e2e line {i}" for i in range(5)]
    assert records[2]["stacktrace"] == "Traceback (most recent call last):\n  boom"
    assert {r["instance"] for r in records} == {str(tailed)}


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
    airflow_stack: AirflowStack,
) -> None:
    stack = airflow_stack
    health_topic, _ = topics(stack)
    ghost_id = f"ghost-{uuid.uuid4().hex[:6]}.scheduler"
    ghost = Ghost(health_topic, ghost_id)
    try:
        stack.unpause("health_watch")
        wait_for(
            lambda: "Health watch on topic" in stack.component_log("triggerer"),
            180,
            "the health watcher to start on the triggerer",
        )
        time.sleep(SILENCE_TIMEOUT_S + 3)  # the watch saw the ghost, in touch with Kafka a full timeout
    finally:
        ghost.silence()

    runs = wait_for(
        lambda: [r for r in stack.runs("health_watch") if r["state"] in ("success", "failed")],
        SILENCE_TIMEOUT_S + 120,
        "a health_watch run",
    )
    alerted = []
    for run in runs:
        tis = stack.api("GET", f"/dags/health_watch/dagRuns/{run['dag_run_id']}/taskInstances")
        alerted += [
            (t["state"], t["rendered_map_index"]) for t in tis["task_instances"] if t["task_id"] == "alert"
        ]
    assert alerted == [("failed", f"{ghost_id}: silent")], alerted
    run_id = runs[0]["dag_run_id"]
    assert runs[0]["state"] == "failed"
    assert f"member {ghost_id} stopped publishing" in stack.log("health_watch", run_id, "alert", map_index=0)

    assets = stack.api("GET", "/assets", params={"name_pattern": "health_alerts"})["assets"]
    events = stack.api("GET", "/assets/events", params={"asset_id": assets[0]["id"]})["asset_events"]
    payloads = [e["extra"]["payload"] for e in events]
    assert [(p["member_id"], p["kind"]) for p in payloads] == [(ghost_id, "silent")]
    delay = payloads[0]["at_ms"] / 1000 - ghost.silenced_at
    assert SILENCE_TIMEOUT_S - 2 <= delay <= SILENCE_TIMEOUT_S + 10, delay
