"""Typed stream events and offload progress math."""

from __future__ import annotations

import json
import math

import pytest

from datamover.ark.format import ArkLog, DataFile, parse_time
from datamover.ark.progress import COMPLETE, ERROR, Progress, percent, status_event
from datamover.errors import ConfigError
from datamover.s3 import multipart_etag, part_ranges, part_size_for
from datamover.streams.definition import AttrType, Event, StreamDefinition, decode, load_streams, stream

HEALTH = StreamDefinition.from_mapping(
    "cartridge_agent_health_stats",
    {
        "version": "1.0.0",
        "meta": {"member_id": "STRING"},
        "payload": {"cluster_id": "STRING", "value": "DOUBLE", "count": "INT", "ok": "BOOL"},
    },
    "test",
)


def test_event_encodes_stream_id_timestamp_and_groups_in_order() -> None:
    event = Event(
        HEALTH,
        meta={"member_id": "m1"},
        payload={"value": 0.5, "cluster_id": "c1", "count": 3, "ok": True},
        timestamp_ms=1234,
    )
    doc = json.loads(event.encode())
    assert doc["stream"] == "cartridge_agent_health_stats:1.0.0"
    assert doc["timestamp"] == 1234
    assert list(doc["payload"]) == ["cluster_id", "value", "count", "ok"]  # definition order
    assert doc["correlation"] == {}
    assert decode(event.encode(), HEALTH)["meta"] == {"member_id": "m1"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"cluster_id": 1, "value": 0.5, "count": 3, "ok": True}, "'cluster_id' must be a string"),
        ({"cluster_id": "c", "value": "x", "count": 3, "ok": True}, "'value' must be a number"),
        ({"cluster_id": "c", "value": math.nan, "count": 3, "ok": True}, "must be finite"),
        ({"cluster_id": "c", "value": 0.5, "count": 2**40, "ok": True}, "out of range for INT"),
        ({"cluster_id": "c", "value": 0.5, "count": True, "ok": True}, "not a boolean"),
        ({"cluster_id": "c", "value": 0.5, "count": 3, "ok": 1}, "'ok' must be true/false"),
        ({"cluster_id": "c", "value": 0.5, "count": 3}, "'ok' (BOOL) is missing"),
        ({"cluster_id": "c", "value": 0.5, "count": 3, "ok": True, "x": 1}, "undefined attribute(s) x"),
    ],
)
def test_event_validation(payload: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        Event(HEALTH, meta={"member_id": "m"}, payload=payload).encode()
    assert message in str(err.value)


def test_bad_definitions_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"stream 's': payload.a: Input should be 'STRING', .* \(got 'TEXT'\)"
    ):
        StreamDefinition.from_mapping("s", {"version": "1", "payload": {"a": "TEXT"}}, "f")
    with pytest.raises(ConfigError, match="defines attribute 'a' twice"):
        StreamDefinition.from_mapping(
            "s", {"version": "1", "meta": {"a": "INT"}, "payload": {"a": "INT"}}, "f"
        )


def test_status_stream_definition_and_event() -> None:
    definition = stream("ark_offload_status")
    assert "ark_offload_status" in load_streams()
    assert {a.name: a.type for a in definition.payload}["bytes_done"] is AttrType.LONG
    log = ArkLog(
        "a",
        __import__("pathlib").Path("/x"),
        parse_time("2026-01-01T00:00:00Z"),
        1.0,
        (DataFile("d", 300, "0" * 64),),
        manifest_size=100,
    )
    progress = Progress.for_logs([log])
    progress.add("a", 100)
    doc = decode(status_event(definition, progress.snapshot(), "run-1", host="h").encode(), definition)
    assert doc["correlation"] == {"offload_id": "run-1"}
    assert doc["payload"]["percent"] == 25.0 and doc["payload"]["bytes_total"] == 400
    assert json.loads(doc["payload"]["logs"]) == {
        "a": {"state": "pending", "bytes_done": 100, "bytes_total": 400}
    }


def test_percent_math() -> None:
    assert percent(0, 0) == 100.0
    assert percent(1, 3) == 33.3
    assert percent(999_999, 1_000_000) == 99.9  # never 100 before the last byte
    assert percent(10, 10) == 100.0


def test_progress_final_state() -> None:
    log = ArkLog(
        "a",
        __import__("pathlib").Path("/x"),
        parse_time("2026-01-01T00:00:00Z"),
        1.0,
        (DataFile("d", 10, "0" * 64),),
    )
    ok = Progress.for_logs([log])
    assert ok.finish() == COMPLETE
    bad = Progress.for_logs([log])
    bad.error("a: boom", "a")
    assert bad.finish() == ERROR and bad.snapshot()["logs"]["a"]["state"] == "error"


def test_part_layout_is_deterministic() -> None:
    mib = 1024 * 1024
    assert part_size_for(100, 16 * mib) == 16 * mib
    assert part_size_for(200_000 * mib, 16 * mib) == 20 * mib  # <= 10 000 parts, whole MiB
    ranges = part_ranges(40 * mib + 5, 16 * mib)
    assert [(n, length) for n, _, length in ranges] == [(1, 16 * mib), (2, 16 * mib), (3, 8 * mib + 5)]
    assert multipart_etag([b"\x00" * 16]).endswith("-1")
