"""Stream families with a name template (the Stratos log streams), and definitions read back from Kafka."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from datamover.errors import ConfigError
from datamover.streams.definition import Event, NameTemplate, StreamDefinition, load_streams, stream
from datamover.streams.registry import EventPublisher, definition_message, split_stream_id

LOG_PAYLOAD = {
    "tenantID": "t1",
    "serverName": "h",
    "appName": "a",
    "logTime": 1,
    "priority": "INFO",
    "message": "m",
    "logger": "l",
    "ip": "127.0.0.1",
    "instance": "i",
    "stacktrace": "",
}


def test_shipped_streams_match_the_seed() -> None:
    streams = load_streams()
    health = streams["cartridge_agent_health_stats"]
    assert [a.name for a in health.payload] == [
        "cluster_id",
        "network_partition_id",
        "member_id",
        "partition_id",
        "health_description",
        "value",
    ]
    assert not health.meta and not health.correlation
    logs = streams["logs"]
    assert [(a.name, a.type.value) for a in logs.meta] == [("memberId", "STRING")]
    assert [a.name for a in logs.payload] == list(LOG_PAYLOAD)
    assert {a.name: a.type.value for a in logs.payload}["logTime"] == "LONG"
    assert logs.is_template and not health.is_template


def test_family_resolves_to_one_stream_per_day() -> None:
    family = stream("logs")
    day = family.resolve(tenantId="t1", alias="my-app", date=date(2026, 1, 2))
    assert day.stream_id == "logs.t1.my-app.2026.01.02:1.0.0"
    assert day.family == "logs" and not day.is_template
    # epoch ms and aware datetimes are taken in UTC
    late = datetime(2026, 1, 2, 23, 30, tzinfo=UTC).timestamp() * 1000
    assert family.resolve(tenantId="t1", alias="my-app", date=int(late)).name == "logs.t1.my-app.2026.01.02"
    assert stream("logs.t1.my-app.2026.01.02") == day
    assert day.family_definition() == family


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tenantId": "t.1", "alias": "a", "date": date(2026, 1, 1)}, "must be letters, digits"),
        ({"tenantId": "t", "date": date(2026, 1, 1)}, "missing alias"),
        ({"tenantId": "t", "alias": "a", "date": date(2026, 1, 1), "x": 1}, "unknown x"),
        ({"tenantId": "t", "alias": "a", "date": "2026-01-01"}, "must be a date"),
    ],
)
def test_bad_template_parameters(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stream("logs").resolve(**params)


def test_events_only_on_concrete_streams() -> None:
    with pytest.raises(ValueError, match="is a family"):
        Event(stream("logs"), meta={"memberId": "m"}, payload=LOG_PAYLOAD).encode()
    day = stream("logs").resolve(tenantId="t1", alias="a", date=date(2026, 1, 1))
    doc = json.loads(Event(day, meta={"memberId": "m"}, payload=LOG_PAYLOAD).encode())
    assert doc["stream"] == "logs.t1.a.2026.01.01:1.0.0"


def test_unknown_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"no stream 'logs\.t1'"):
        stream("logs.t1")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("logs", "has no {placeholder}"),
        ("logs.{a}.{a}", "repeats a placeholder"),
        ("logs.{date}", "needs a pattern"),
        ("logs.{tenant:yyyy}", "only {date:...} takes a pattern"),
        ("logs.{date:yyyy.QQ}", "only {date:...} takes a pattern"),
    ],
)
def test_bad_templates(template: str, problem: str) -> None:
    assert problem in (NameTemplate(template).check() or "")
    with pytest.raises(ConfigError, match="name_template"):
        StreamDefinition.from_mapping("s", {"version": "1", "name_template": template}, "f")


def test_template_matches_only_its_own_names() -> None:
    t = NameTemplate("logs.{tenantId}.{alias}.{date:yyyy.MM.dd}")
    assert t.match("logs.t1.app.2026.11.24") == {"tenantId": "t1", "alias": "app", "date": "2026.11.24"}
    assert t.match("logs.t1.app.2026.11") is None
    assert t.match("logs.t.1.app.2026.11.24") is None


def test_published_definition_round_trips() -> None:
    day = stream("logs").resolve(tenantId="t1", alias="a", date=date(2026, 1, 1))
    key, value = definition_message(day)
    assert key == b"logs.t1.a.2026.01.01:1.0.0"
    back = StreamDefinition.from_published(json.loads(value), "topic")
    assert back == day
    with pytest.raises(ConfigError, match="needs a 'name'"):
        StreamDefinition.from_published({"version": "1"}, "topic")
    assert split_stream_id("logs.t1.a.2026.01.01:1.0.0") == ("logs.t1.a.2026.01.01", "1.0.0")


def test_publisher_validates_and_announces_each_definition_once() -> None:
    sent: list[tuple[str, bytes | None, bytes]] = []

    def send(topic: str, key: bytes | None, value: bytes) -> bool:
        sent.append((topic, key, value))
        return True

    publisher = EventPublisher(send, "events", "defs")
    day1 = stream("logs").resolve(tenantId="t1", alias="a", date=date(2026, 1, 1))
    day2 = stream("logs").resolve(tenantId="t1", alias="a", date=date(2026, 1, 2))
    for definition in (day1, day1, day2):
        assert publisher.publish(Event(definition, meta={"memberId": "m"}, payload=LOG_PAYLOAD), "m")
    assert not publisher.publish(Event(day1, meta={"memberId": 1}, payload=LOG_PAYLOAD), "m")
    assert publisher.invalid == 1
    assert [(t, k) for t, k, _ in sent] == [
        ("defs", b"logs:1.0.0"),
        ("defs", b"logs.t1.a.2026.01.01:1.0.0"),
        ("events", b"m"),
        ("events", b"m"),
        ("defs", b"logs.t1.a.2026.01.02:1.0.0"),
        ("events", b"m"),
    ]


def test_column_encoder_is_event_encode_for_every_row_and_validates_each_column() -> None:
    day = stream("logs").resolve(tenantId="t1", alias="app", date=1795514400000)
    fixed = {
        "meta": {"memberId": "m"},
        "payload": {k: v for k, v in LOG_PAYLOAD.items() if isinstance(v, str)},
    }
    varying = [("payload", k) for k, v in LOG_PAYLOAD.items() if not isinstance(v, str)]
    varying += [("payload", "message")]
    fixed["payload"].pop("message")
    encoder = day.column_encoder(fixed, varying)
    times = [1795514400000, 1795514400001]
    columns = [times if name == "logTime" else [LOG_PAYLOAD[name]] * 2 for _, name in varying[:-1]]
    columns.append(['a "quoted"\nline \u2028', "plain"])
    rows = encoder.encode(columns, times)
    assert rows is not None and len(rows) == 2
    for i, row in enumerate(rows):
        payload = {
            **fixed["payload"],
            **{name: column[i] for (_, name), column in zip(varying, columns, strict=True)},
        }
        assert row == Event(day, meta={"memberId": "m"}, payload=payload, timestamp_ms=times[i]).encode()
    # one row, or rows all alike: every column is one value (encoded once, joined once)
    assert encoder.encode([column[:1] for column in columns], times[:1]) == rows[:1]
    same = [[column[0]] * 3 for column in columns]
    assert encoder.encode(same, [times[0]] * 3) == rows[:1] * 3
    assert encoder.encode([*columns[:-1], ["ok", 3]], times) is None  # a message that is no string
    assert encoder.encode([*columns[:-1], ["a", "b"]], [1, 2**63]) is None  # a timestamp out of range
    with pytest.raises(ValueError, match="missing"):
        day.column_encoder({"meta": {"memberId": "m"}}, varying)
    with pytest.raises(ValueError, match="must be a string"):
        day.column_encoder({"meta": {"memberId": 3}, "payload": fixed["payload"]}, varying)
