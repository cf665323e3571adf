"""Stream definitions travel on Kafka: a consumer that knows only the published definitions decodes every
event of the health, log (templated, one stream per day) and offload status streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from datamover.hooks.streams import StreamChannel
from datamover.streams.definition import Event, stream
from datamover.streams.registry import definition_message

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent


def health_event(member: str, what: str, value: float) -> Event:
    return Event(
        stream("cartridge_agent_health_stats"),
        payload={
            "cluster_id": "c1",
            "network_partition_id": "np1",
            "member_id": member,
            "partition_id": "p1",
            "health_description": what,
            "value": value,
        },
        timestamp_ms=1_764_000_000_000,
    )


def log_event(day: date, message: str, stacktrace: str = "") -> Event:
    return Event(
        stream("logs").resolve(tenantId="t1", alias="datamover", date=day),
        meta={"memberId": "host-a.worker"},
        payload={
            "tenantID": "t1",
            "serverName": "host-a",
            "appName": "ark_offload.offload",
            "logTime": 1_764_000_000_123,
            "priority": "ERROR" if stacktrace else "INFO",
            "message": message,
            "logger": "datamover.ark.offload",
            "ip": "10.0.0.7",
            "instance": "run-1",
            "stacktrace": stacktrace,
        },
    )


@pytest.fixture
def topics() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:12]
    events, definitions = f"test.streams.{suffix}", f"test.definitions.{suffix}"
    yield events, definitions
    admin = AdminClient({"bootstrap.servers": os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]})
    for future in admin.delete_topics([events, definitions], operation_timeout=10).values():
        future.result()


def test_a_consumer_that_knows_only_the_published_definitions_decodes_every_event(
    topics: tuple[str, str], tmp_path: Path
) -> None:
    events_topic, definitions_topic = topics
    sent = [
        health_event("host-a.scheduler", "memory_consumption", 61.5),
        health_event("host-a.scheduler", "load_average", 0.42),
        log_event(date(2026, 11, 23), "Offload started"),
        log_event(date(2026, 11, 24), "Upload failed", "Traceback (most recent call last):\n  boom"),
        Event(
            stream("ark_offload_status"),
            meta={"host": "host-a", "dag_id": "ark_offload"},
            correlation={"offload_id": "run-1"},
            payload={
                "state": "offloading",
                "percent": 12.5,
                "bytes_done": 10,
                "bytes_total": 80,
                "bytes_per_second": 1.5,
                "logs_done": 0,
                "logs_total": 1,
                "logs": "{}",
                "errors": "[]",
            },
        ),
    ]
    with StreamChannel("kafka_default", events_topic, definitions=definitions_topic) as channel:
        for event in sent:
            assert channel.publish(event, key="k")
        # An event whose concrete definition never made it (only its family did): still decodable.
        orphan = log_event(date(2026, 11, 25), "late line")
        channel.announce([stream("logs")])
        channel.channel.send(b"k", orphan.encode())
        sent.append(orphan)
        assert channel.channel.flush(15) == 0
    assert channel.dropped == 0 and channel.sent == len(sent) + 5  # + health, logs x2 (+ family), ark defs

    empty = tmp_path / "no-config"
    empty.mkdir()
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "definition_only_consumer.py"),
            os.environ["DATAMOVER_KAFKA_BOOTSTRAP"],
            events_topic,
            definitions_topic,
            str(len(sent)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATAMOVER_CONFIG_DIR": str(empty)},
    )
    assert out.returncode == 0, out.stderr
    decoded = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["stream_id"] for d in decoded] == [e.definition.stream_id for e in sent]
    assert decoded[2]["stream_id"] == "logs.t1.datamover.2026.11.23:1.0.0"
    assert decoded[5]["stream_id"] == "logs.t1.datamover.2026.11.25:1.0.0"
    for event, got in zip(sent, decoded, strict=True):
        doc = got["doc"]
        assert {g: doc[g] for g in ("meta", "correlation", "payload")} == {
            g: dict(getattr(event, g)) for g in ("meta", "correlation", "payload")
        }
        assert got["types"] == {
            a.name: a.type.value
            for g in ("meta", "correlation", "payload")
            for a in event.definition.group(g)
        }
    assert decoded[0]["types"]["value"] == "DOUBLE" and decoded[2]["types"]["logTime"] == "LONG"


def test_definitions_topic_is_compacted_and_keyed_by_stream_id(topics: tuple[str, str]) -> None:
    events_topic, definitions_topic = topics
    with StreamChannel("kafka_default", events_topic, definitions=definitions_topic) as channel:
        channel.publish(health_event("m", "load_average", 1.0), key="m")
        assert channel.channel.flush(15) == 0
    admin = AdminClient({"bootstrap.servers": os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]})
    resource = ConfigResource(ConfigResource.Type.TOPIC, definitions_topic)
    config = admin.describe_configs([resource])[resource].result()
    assert config["cleanup.policy"].value == "compact"
    key, value = definition_message(stream("cartridge_agent_health_stats"))
    assert key == b"cartridge_agent_health_stats:1.0.0"
    assert json.loads(value)["payload"] == {
        "cluster_id": "STRING",
        "network_partition_id": "STRING",
        "member_id": "STRING",
        "partition_id": "STRING",
        "health_description": "STRING",
        "value": "DOUBLE",
    }
