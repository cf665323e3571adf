"""Pure rules of log_archival: coordinator decisions, names and paths, Butler message checks, config."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pytest

from datamover.errors import ConfigError
from datamover.logdog.butler import (
    MalformedMessage,
    RejectedEntry,
    check_bundle_entry,
    encode_message,
    entry_row,
    parse_message,
)
from datamover.logdog.config import load
from datamover.logdog.coordinator import Action, Delays, State, StreamState, decide
from datamover.logdog.names import (
    archive_paths,
    base64_hash,
    split_path,
    validate_project,
    validate_stream_name,
)
from datamover.logdog.proto import butler_pb2
from datamover.logdog.reader import start_offset
from datamover.logdog.recordio import frame
from datamover.s3 import S3Path
from tests.logdog.butlers import bundle, butler_messages
from tests.logdog.streams import SAMPLES, descriptor, entry, time_offset

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DELAYS = Delays(timedelta(minutes=2), timedelta(hours=1), timedelta(minutes=10))


def state(
    now_min: float, terminated_min: float | None, terminal: int | None, count: int, st: str = "terminated"
):
    return StreamState(
        stream_id=1,
        state=State(st),
        registered_at=T0,
        terminated_at=T0 + timedelta(minutes=terminated_min) if terminated_min is not None else None,
        terminal_index=terminal,
        entries_upto_terminal=count,
        now=T0 + timedelta(minutes=now_min),
    )


@pytest.mark.parametrize(
    ("s", "action", "complete"),
    [
        (state(5, 4, 9, 10), Action.WAIT, False),  # settling (terminated 1 min ago)
        (state(6.5, 4, 9, 10), Action.ARCHIVE, True),  # settled and complete
        (state(7, 4, 9, 8), Action.WAIT, False),  # settled, 2 missing, within the threshold
        (state(17, 4, 9, 8), Action.ARCHIVE, False),  # past the threshold: best effort
        (state(30, None, None, 50, "registered"), Action.WAIT, False),  # young, not terminated
        (state(61, None, None, 50, "registered"), Action.ARCHIVE, False),  # older than delay_max
        (state(60.5, 59, 9, 10), Action.ARCHIVE, True),  # terminated late: delay_max wins over settling
        (state(1, 0, 9, 10, "archived"), Action.DONE, False),
    ],
)
def test_coordinator_decisions(s: StreamState, action: Action, complete: bool) -> None:
    d = decide(s, DELAYS)
    assert (d.action, d.complete) == (action, complete), d.reason
    if action == Action.WAIT:
        assert d.not_before is not None and d.not_before > s.now


def test_gone_stream() -> None:
    assert decide(None, DELAYS).action == Action.GONE


@pytest.mark.parametrize("name", ["a", "steps/compile/stdout", "A1/b.c_d-e:f", "x" * 4096])
def test_valid_stream_names(name: str) -> None:
    validate_stream_name(name)


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a b", "ü", "-a", "x" * 4097])
def test_invalid_stream_names(name: str) -> None:
    with pytest.raises(ValueError):
        validate_stream_name(name)


def test_project_names() -> None:
    validate_project("chromium-1_x")
    for bad in ("", "1abc", "Chromium", "a.b"):
        with pytest.raises(ValueError):
            validate_project(bad)


def test_archive_paths_like_luci() -> None:
    p = archive_paths(S3Path("stg", "svc"), S3Path("arc", "svc"), "chromium", "bb/1", "steps/out")
    assert (
        p.staged_key("logstream.entries")
        == f"svc/chromium/p/{base64_hash('bb/1')}/+/steps/out/logstream.entries"
    )
    assert p.final_key("logstream.index") == "svc/chromium/bb/1/+/steps/out/logstream.index"
    assert split_path("bb/1/+/steps/out") == ("bb/1", "steps/out")


def test_butler_messages_round_trip_and_checks() -> None:
    stream = SAMPLES["text-plain"]()
    for compress in (False, True):
        message = butler_messages(stream, per_bundle=100, compress=compress)[0]
        parsed = parse_message(message)
        part = check_bundle_entry(parsed, parsed.entries[0])
        assert part is not None and part.terminal_index == stream.entries[-1].stream_index
        assert part.rows == [
            entry_row(
                e.stream_index,
                e.prefix_index,
                e.sequence,
                *time_offset(e) or (None, None),
                e.SerializeToString(),
            )
            for e in stream.entries
        ]
        assert part.descriptor == stream.descriptor_bytes


def test_malformed_messages_are_refused() -> None:
    ok_bundle = bundle("chromium", "bb/1", [(descriptor(), [entry(0, lines=[(b"x", "\n")])], None)])
    md = butler_pb2.ButlerMetadata(type=1, proto_version="1", compression=1)
    bomb = zlib.compress(b"\0" * (11 * 1024 * 1024))
    cases = {
        "expected 2 frames": frame(b"x"),
        "unknown protobuf version": frame(
            butler_pb2.ButlerMetadata(type=1, proto_version="9").SerializeToString()
        )
        + frame(b""),
        "exceeds": frame(md.SerializeToString()) + frame(bomb),
        "invalid bundle project": encode_message(
            bundle("Bad", "bb/1", [(descriptor(), [entry(0, lines=[(b"x", "\n")])], None)])
        ),
    }
    for why, message in cases.items():
        with pytest.raises(MalformedMessage, match=why):
            parse_message(message)
    parse_message(encode_message(ok_bundle))


def test_bundle_entry_checks() -> None:
    def check(parts, secret=b"s" * 36):
        b = bundle("chromium", "bb/1", parts, secret)
        return check_bundle_entry(b, b.entries[0])

    line = [(b"x", "\n")]
    with pytest.raises(RejectedEntry, match="non-contiguous"):
        check([(descriptor(), [entry(0, lines=line), entry(2, lines=line)], None)])
    with pytest.raises(RejectedEntry, match="no content"):
        check([(descriptor(), [entry(0, binary=b"x")], None)])
    with pytest.raises(RejectedEntry, match="secret"):
        check([(descriptor(), [entry(0, lines=line)], None)], secret=b"short")
    assert check([(descriptor(), [], None)]) is None  # neither logs nor terminal: junk, dropped quietly


def test_config_errors_name_the_key() -> None:
    assert load().archival.index.rules.effective().stream_index_range == 1
    with pytest.raises(ConfigError, match=r"archival\.settle_delay_s"):
        load({"archival.settle_delay_s": -1})
    with pytest.raises(ConfigError, match=r"storage\.schema"):
        load({"storage.schema": "Bad-Name"})


def test_start_offset_picks_the_last_index_entry_at_or_below() -> None:
    from datamover.logdog.proto import log_pb2

    idx = log_pb2.LogIndex(
        entries=[log_pb2.LogIndex.Entry(offset=o, stream_index=s) for o, s in ((10, 0), (50, 5), (90, 9))]
    )
    assert [start_offset(idx, n) for n in (0, 4, 5, 8, 100)] == [10, 10, 50, 50, 90]
    assert start_offset(None, 7) == 0
