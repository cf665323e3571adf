"""Health statistics: the readings, the events, the publisher's schedule, the member ids and the config."""

from __future__ import annotations

import threading
import time

import pytest

from datamover.config import ConfigModel
from datamover.errors import ConfigError
from datamover.streams.definition import Event, decode, stream
from datamover.streams.health import HEALTH_STREAM, HealthPublisher, Member, readings
from datamover.streams.settings import HealthConfig, MemberConfig, Threshold, env_overrides, health_config

MEMBER = Member("c1", "np1", "p1", "h.scheduler")


def test_readings_are_percent_free_memory_and_load_average() -> None:
    values = readings()
    assert list(values) == ["memory_consumption", "load_average"]
    assert 0 < values["memory_consumption"] <= 100
    assert values["load_average"] >= 0


def test_publisher_sends_both_readings_every_interval_until_stopped() -> None:
    sent: list[tuple[Event, str]] = []
    polls = []
    publisher = HealthPublisher(
        lambda event, key: sent.append((event, key)) or True,
        stream(HEALTH_STREAM),
        MEMBER,
        interval_s=0.1,
        read=lambda: {"memory_consumption": 55.5, "load_average": 1.25},
        poll=lambda: polls.append(1),
    )
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    time.sleep(0.55)
    stop.set()
    thread.join(5)
    assert 5 <= publisher.rounds <= 7 and publisher.sent == 2 * publisher.rounds
    docs = [decode(event.encode(), stream(HEALTH_STREAM)) for event, _ in sent]
    assert {key for _, key in sent} == {"h.scheduler"}
    assert [d["payload"]["health_description"] for d in docs[:2]] == ["memory_consumption", "load_average"]
    assert docs[0]["payload"] == {
        "cluster_id": "c1",
        "network_partition_id": "np1",
        "member_id": "h.scheduler",
        "partition_id": "p1",
        "health_description": "memory_consumption",
        "value": 55.5,
    }
    assert polls, "delivery reports are served between rounds"


def test_a_failing_reading_skips_a_round_only() -> None:
    calls = iter([RuntimeError("no /proc"), {"load_average": 1.0}])

    def read() -> dict[str, float]:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    sent: list[Event] = []
    publisher = HealthPublisher(lambda e, k: sent.append(e) or True, stream(HEALTH_STREAM), MEMBER, read=read)
    assert publisher.publish_once() == 0
    assert publisher.publish_once() == 1


def test_member_ids_from_the_template() -> None:
    assert MemberConfig().member("triggerer", hostname="node7") == "node7.triggerer"
    with_pid = MemberConfig(member_id="{hostname}-{component}-{pid}")
    assert with_pid.member("worker", "n").startswith("n-worker-")
    with pytest.raises(ValueError, match=r"use \{hostname\}"):
        MemberConfig(member_id="{host}").member("worker")


def test_environment_overrides_keep_their_types(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DATAMOVER_HEALTH__PUBLISHER__ENABLED": "false",
        "DATAMOVER_HEALTH__PUBLISHER__INTERVAL_S": "5",
        "DATAMOVER_HEALTH__PUBLISHER__COMPONENTS": "[scheduler, worker]",
        "DATAMOVER_HEALTH__MEMBER__CLUSTER_ID": "prod-eu",
        "DATAMOVER_HEALTHX": "ignored",
    }
    assert env_overrides("DATAMOVER_HEALTH", env) == {
        "publisher.enabled": False,
        "publisher.interval_s": 5,
        "publisher.components": ["scheduler", "worker"],
        "member.cluster_id": "prod-eu",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = health_config()
    assert not config.publisher.enabled and config.publisher.interval_s == 5
    assert config.member.cluster_id == "prod-eu" and config.publisher.components == ["scheduler", "worker"]
    monkeypatch.setenv("DATAMOVER_HEALTH__PUBLISHER__COMPONENTS", "[scheduler, webserver]")
    with pytest.raises(ConfigError, match=r"publisher\.components"):
        health_config()


def test_shipped_health_config_and_thresholds() -> None:
    config = health_config()
    assert isinstance(config, ConfigModel) and isinstance(config, HealthConfig)
    assert config.publisher.interval_s == 15 and config.publisher.enabled
    assert config.watch_topic == config.publisher.topic == "datamover.health"
    assert config.watch.thresholds["memory_consumption"].bad(4.0)
    assert not config.watch.thresholds["memory_consumption"].bad(50.0)
    with pytest.raises(ValueError, match="exactly one"):
        Threshold(above=1.0, below=2.0)
