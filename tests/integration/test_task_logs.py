"""Task log publishing through the listener plugin, in a real task run (`airflow dags test`)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.streams.definition import definitions_topic
from datamover.streams.registry import DefinitionRegistry
from tests.conftest import run_airflow

pytestmark = pytest.mark.integration

PROBE_DAGS = Path(__file__).resolve().parent / "dags_probe"
BOOTSTRAP = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]


@pytest.fixture
def logs_topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    topic = f"test.tasklogs.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(PROBE_DAGS))
    monkeypatch.setenv("DATAMOVER_LOG_PUBLISHING__TOPIC", topic)
    yield topic
    for future in admin.delete_topics([topic], operation_timeout=10).values():
        future.result()


def consume(topic: str, count: int, timeout: float = 30) -> list[tuple[str, dict]]:
    def consumer() -> Consumer:
        return Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"t-{uuid.uuid4()}"})

    registry = DefinitionRegistry(consumer(), definitions_topic())
    events = consumer()
    events.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(out) < count + 1:  # one more would be one too many
        message = events.poll(0.5 if len(out) < count else 2)
        if message is None:
            if len(out) >= count:
                break
            continue
        if message.error() is None:
            definition, doc = registry.decode(message.value())
            out.append((definition.stream_id, doc))
    return out


def test_task_log_records_are_published_with_their_stack_traces(logs_topic: str, monkeypatch) -> None:
    # the structlog tap: also the providers' operator loggers (by default only the package's operators)
    monkeypatch.setenv(
        "DATAMOVER_LOG_PUBLISHING__TASK_LOGS__STRUCTLOG_PREFIXES",
        "[airflow.task.operators.airflow.providers.standard]",
    )
    result = run_airflow("dags", "test", "log_probe", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "were dropped" not in result.stdout + result.stderr
    events = consume(logs_topic, 7)
    messages = [doc["payload"]["message"] for _, doc in events]
    assert messages == [*(f"probe line {i}" for i in range(5)), "probe caught", "Done. Returned value was: 5"]
    docs = [doc for _, doc in events]
    assert "other.lib" not in {d["payload"]["logger"] for d in docs}
    caught = docs[5]["payload"]
    assert caught["priority"] == "ERROR" and caught["logger"] == "datamover.probe"
    assert caught["stacktrace"].startswith("Traceback (most recent call last):")
    assert caught["stacktrace"].endswith("ValueError: probe failure")
    assert docs[0]["payload"]["stacktrace"] == ""
    assert {d["payload"]["appName"] for d in docs} == {"log_probe.speak"}
    assert all(d["payload"]["instance"].startswith("log_probe/manual__") for d in docs)
    assert {d["meta"]["memberId"] for d in docs} == {f"{os.uname().nodename}.worker"}
    day = time.strftime("%Y.%m.%d", time.gmtime(docs[0]["payload"]["logTime"] / 1000))
    assert {sid for sid, _ in events} == {f"logs.default.datamover.{day}:1.0.0"}
