"""Log lines and records -> log stream events: parsing, stack trace assembly, the in-process handler."""

from __future__ import annotations

import logging
import random
from datetime import date

import pytest

from datamover.streams.definition import decode, stream
from datamover.streams.logs import (
    Assembler,
    EventBatch,
    LineFormat,
    LogEvents,
    LogIdentity,
    Record,
    Records,
    StreamLogHandler,
    UsualLines,
    parse_time_ms,
    structlog_record,
)

IDENTITY = LogIdentity("t1", "app", "h.scheduler", "h", "10.0.0.1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "2026-11-24 10:00:00,123 INFO datamover.ark - Offload started",
            (1795514400123, "INFO", "datamover.ark", "Offload started"),
        ),
        (
            "2026-11-24T10:00:00.5Z [warning  ] slow part [datamover.x] n=3",
            (1795514400500, "WARNING", "", "slow part [datamover.x] n=3"),
        ),
        ("2026-11-24 10:00:00 fatal: disk gone", (1795514400000, "CRITICAL", "", "disk gone")),
        ("no timestamp at all", (42, "INFO", "", "no timestamp at all")),
    ],
)
def test_line_format_parses_common_layouts(line: str, expected: tuple) -> None:
    record = LineFormat().parse(line, now_ms=42)
    assert (record.time_ms, record.priority, record.logger, record.message) == expected


def test_times_with_offsets_and_bad_times() -> None:
    assert parse_time_ms("2026-11-24T12:00:00+02:00") == 1795514400000
    assert parse_time_ms("2026-13-99 99:00") is None


def test_assembler_keeps_stack_traces_with_their_record() -> None:
    assembler = Assembler(LineFormat())
    lines = [
        "2026-11-24 10:00:00 ERROR a - failed",
        "Traceback (most recent call last):",
        "  File 'x', line 1",
        "ValueError: boom",
        "2026-11-24 10:00:01 INFO a - next",
    ]
    done = [assembler.feed(text, end, 0) for end, text in enumerate(lines, start=1)]
    assert done[:4] == [None, None, None, None]
    record, end = done[4]
    assert end == 4  # the next record starts after line 4
    assert record.message == "failed" and record.stacktrace == "\n".join(lines[1:4])
    last, end = assembler.flush(0)
    assert last.message == "next" and last.stacktrace == "" and end == 5
    assert assembler.flush(0) is None


def test_assembler_bounds_a_stack_trace_and_takes_orphan_lines_as_records() -> None:
    assembler = Assembler(LineFormat(), max_record_chars=100)
    record, _ = assembler.feed("  orphan continuation", 1, 7) or assembler.flush(7)
    assert record.message == "  orphan continuation" and record.time_ms == 7
    assembler.feed("2026-11-24 10:00:00 ERROR a - failed", 2, 0)
    for i in range(50):
        assembler.feed(f"  frame {i}", 3 + i, 0)
    record, end = assembler.flush(0)
    assert len(record.stacktrace) < 100 and assembler.truncated > 0 and end == 52


def test_log_events_use_one_stream_per_utc_day() -> None:
    events = LogEvents(stream("logs"), IDENTITY, "app-name", "inst")
    day1 = events.event(Record(1795514400000, "INFO", "l", "m"))
    day2 = events.event(Record(1795514400000 + 86_400_000, "INFO", "l", "m"))
    assert day1.definition.name == "logs.t1.app.2026.11.24"
    assert day2.definition.name == "logs.t1.app.2026.11.25"
    doc = decode(day1.encode(), day1.definition)
    assert doc["meta"] == {"memberId": "h.scheduler"}
    assert doc["payload"]["serverName"] == "h" and doc["payload"]["ip"] == "10.0.0.1"
    assert doc["timestamp"] == 1795514400000
    assert stream("logs").resolve(tenantId="t1", alias="app", date=date(2026, 11, 24)) == day1.definition


MIXED = [
    "2026-11-24 23:59:59,998 INFO app.a - last of a day",
    '2026-11-25 00:00:00,001 WARN app.b - first of the next "quoted" \\ tab\t',
    "2026-11-25T00:00:01.5Z [error    ] airflow style",
    "2026-13-45 10:00:00,123 INFO bad - date",
    "2026-11-25 00:00:02,003 notice - no logger",
    "2026-11-25 00:00:03,004 INFO app.c - unicode \u2603",
]


@pytest.mark.parametrize(
    "fmt", [LineFormat(), LineFormat(start=r"^\d{4}", pattern=r"^(?P<time>\S+ \S+) (?P<message>.*)$")]
)
def test_bulk_parsing_and_assembly_give_what_line_by_line_gives(fmt: LineFormat) -> None:
    """The column paths (feed_lines, parse_many) are the line-by-line ones, only faster."""
    lines = [*MIXED, "Traceback (most recent call last):", "ValueError: boom", *MIXED, "no stamp", MIXED[0]]
    for chunk in (lines, MIXED, MIXED[:1], ["no stamp", *MIXED]):
        ends = [10 * (i + 1) for i in range(len(chunk))]
        one, many = Assembler(fmt), Assembler(fmt)
        expected = [done for done in map(one.feed, chunk, ends, [7] * len(chunk)) if done is not None]
        got = many.feed_lines(chunk, ends, 7)
        assert list(got) == [record for record, _ in expected]
        assert got.end == (expected[-1][1] if expected else 0)
        assert one.flush(7) == many.flush(7)
        parsed = fmt.parse_many(chunk, 7)
        assert parsed is not None and list(parsed) == [fmt.parse(line, 7) for line in chunk]


# Python logging's usual layout, which parse_many reads without the regex, and its near misses, which
# must come out exactly as the regex reads them
USUAL_AND_NEAR_MISSES = [
    "2026-11-24 10:00:00,123 INFO datamover.ark - usual",
    "2026-11-24 10:00:01.456 WARN a_b.c9 - warn is WARNING",
    "2026-11-24 10:00:02,789 FATAL x - fatal is CRITICAL",
    "2026-11-24 10:00:03,000 ERROR x - ",
    "2026-11-24 10:00:04,001 ERROR x - - a dash first",
    "2026-11-24 10:00:05,002 INFO x -  two spaces after the dash",
    "2026-11-24 10:00:06,003 INFO x -\ta tab after the dash",
    "2026-11-24 10:00:07,004 info x - lower-case level",
    "2026-11-24 10:00:08,005 INFO  x - two spaces before the logger",
    "2026-11-24 10:00:09,006 INFO 9x - logger starts with a digit",
    "2026-11-24 10:00:10,007 INFO x-y - logger with a dash",
    "2026-11-24 10:00:11,0a8 INFO x - ms not digits",
    "2026-11-24 10:00:12;009 INFO x - odd separator",
    "2026-11-24 25:00:13,010 INFO x - no such hour",
    "2026-11-24 10:00:14,011 INFO no logger at all",
    "2026-11-24 10:00:15,012 VERBOSE x - unknown level",
    "2026-11-24 10:00:16,013 INFO x - \u2603 unicode",
    "2026-11-24 10:00:17,014 INFO x",
    "2026-11-24 10:00:18,015Z INFO x - zone",
]


def test_usual_layout_fast_path_gives_what_the_pattern_gives() -> None:
    """parse_many's path for the usual layout and feed_lines' runs around stack traces: random mixes of
    usual lines, near misses and stack trace lines, in random chunks, against line-by-line parsing."""
    rng = random.Random(20261126)
    fmt = LineFormat()
    usual = USUAL_AND_NEAR_MISSES[:5]
    for trial in range(300):
        pool = usual if trial % 3 == 0 else [*usual, *USUAL_AND_NEAR_MISSES, "  File x.py, line 1", "Boom"]
        lines = [rng.choice(pool) for _ in range(rng.randint(1, 40))]
        assert fmt.parse_many(lines, 7) is not None
        assert list(fmt.parse_many(lines, 7) or []) == [fmt.parse(line, 7) for line in lines]
        ends = list(range(3, 3 + 3 * len(lines), 3))
        one, many = Assembler(fmt), Assembler(fmt)
        expected = [done for done in map(one.feed, lines, ends, [7] * len(lines)) if done is not None]
        got = Records()
        cut = rng.randint(0, len(lines))
        for part in ((0, cut), (cut, len(lines))):
            got.extend(many.feed_lines(lines[part[0] : part[1]], ends[part[0] : part[1]], 7))
        assert list(got) == [record for record, _ in expected], lines
        assert got.end == (expected[-1][1] if expected else 0)
        assert one.flush(7) == many.flush(7)


# lines UsualLines must encode exactly as the general way does, or leave to it
ESCAPES_AND_EDGES = [
    '2026-11-24 10:00:19,016 INFO x - "quoted" and \\back\\slashes\\ "',
    '2026-11-24 10:00:20,017 INFO x - a "timestamp":2026-11-24 10:00:20 in the message',
    "2026-11-24 10:00:21,018 DEBUG x - delete \x7f and / slash",
    "2026-11-24 10:00:22,019 INFO x - a tab\tinside",
    "2026-11-24 10:00:23,020 INFO x - a carriage return\r",
    "1970-01-01 00:00:00,005 INFO x - the epoch's first second",
    "1969-12-31 23:59:59,999 INFO x - before the epoch",
    "2026-11-24 23:59:59,999 INFO x - last of the day",
    "2026-11-25 00:00:00,000 INFO x - first of the next",
    '2026-11-24 10:00:24,021 INFO a"b - quote in the logger',
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "ValueError: a - b",
]


def _by_line(fmt: LineFormat, events: LogEvents, lines: list[str], ends: list[int]) -> tuple:
    assembler = Assembler(fmt)
    done = [d for d in map(assembler.feed, lines, ends, [7] * len(lines)) if d is not None]
    return [events.encode(record)[1] for record, _ in done], (done[-1][1] if done else 0), assembler


def test_usual_lines_give_what_the_general_way_gives() -> None:
    """Blocks of random mixes (usual lines, near misses, escapes, edges, stack traces) through
    UsualLines.feed, or the general way where it declines a block, as the tailer does: the same events,
    byte for byte, the same end offset and the same open record as line-by-line assembly and encoding."""
    rng = random.Random(20261127)
    fmt = LineFormat()
    events = LogEvents(stream("logs"), IDENTITY, "app-name", "inst")
    usual = USUAL_AND_NEAR_MISSES[:5]
    pool = [*USUAL_AND_NEAR_MISSES, *ESCAPES_AND_EDGES, *MIXED]
    fast_events = 0
    for trial in range(400):
        choices = usual if trial % 3 == 0 else pool
        lines = [rng.choice(choices) for _ in range(rng.randint(1, 60))]
        lines = [line for line in lines if line.isascii()] or [usual[0]]
        raw = [len(line) + 1 for line in lines]
        ends = [sum(raw[: i + 1]) + 100 for i in range(len(lines))]
        expected, expected_end, one = _by_line(fmt, events, lines, ends)
        many, batch, usual_lines = Assembler(fmt), EventBatch(events), UsualLines(events)
        cut = rng.randint(0, len(lines))
        for start, stop in ((0, cut), (cut, len(lines))):
            if start == stop:
                continue
            block = "".join(f"{line}\n" for line in lines[start:stop]).encode()
            base = ends[start - 1] if start else 100
            if usual_lines.feed(block, base, 7, many, batch):
                fast_events += sum(len(values) for _, values in batch.runs)
            else:
                batch.extend(many.feed_lines(lines[start:stop], ends[start:stop], 7))
        runs, problems = batch.encoded()
        assert not problems
        assert [v for _, values in runs for v in values] == expected, lines
        assert all(len({e.split(b'"stream":')[1][:40] for e in values}) == 1 for _, values in runs)
        assert (batch.end if len(batch) else 0) == expected_end
        assert len(batch) == len(expected)
        assert one.flush(7) == many.flush(7)
    assert fast_events > 1000  # the blocks did go the fast way


def test_usual_lines_encode_a_block_and_name_the_odd_lines() -> None:
    events = LogEvents(stream("logs"), IDENTITY, "app-name", "inst")
    lines = [*USUAL_AND_NEAR_MISSES[:2], ESCAPES_AND_EDGES[0], ESCAPES_AND_EDGES[-1], ESCAPES_AND_EDGES[2]]
    encoded = UsualLines(events).encode("".join(f"{line}\n" for line in lines).encode())
    assert encoded is not None
    definition, values, odd = encoded
    assert definition.name == "logs.t1.app.2026.11.24" and odd == [3]
    fmt = LineFormat()
    for i in (0, 1, 2, 4):
        assert values[i] == events.encode(fmt.parse(lines[i], 7))[1]
    for line in [*ESCAPES_AND_EDGES, *USUAL_AND_NEAR_MISSES]:  # alone in a block: the same, or declined
        if line.isascii() and (one := UsualLines(events).encode(f"{line}\n".encode())) is not None:
            assert one[1][0] == events.encode(fmt.parse(line, 7))[1] or one[2] == [0], line
    # declined as a whole: a control character, two days, no usual line
    for block in ([ESCAPES_AND_EDGES[3]], ESCAPES_AND_EDGES[7:9], ["Traceback (most recent call last):"]):
        assert UsualLines(events).encode("".join(f"{line}\n" for line in block).encode()) is None


def test_log_events_encode_many_is_encode_per_record_split_by_day() -> None:
    events = LogEvents(stream("logs"), IDENTITY, "airflow", "scheduler")
    records = Records()
    for n, line in enumerate(MIXED):
        records.append(LineFormat().parse(line, 1795514400000)._replace(stacktrace="trace\n" * (n % 2)), n)
    runs, problems = events.encode_many(records)
    assert not problems
    assert [(d.name, len(v)) for d, v in runs] == [
        ("logs.t1.app.2026.11.24", 1),
        ("logs.t1.app.2026.11.25", 2),
        ("logs.t1.app.2026.11.24", 1),  # the bad date: the reading time
        ("logs.t1.app.2026.11.25", 2),
    ]
    assert [v for _, values in runs for v in values] == [events.encode(r)[1] for r in records]


def test_encode_many_skips_and_names_a_record_that_fits_no_event() -> None:
    events = LogEvents(stream("logs"), IDENTITY, "airflow", "scheduler")
    records = Records()
    records.append(Record(1795514400000, "INFO", "a", "fine"), 1)
    records.append(Record(1795514400001, "INFO", "a", 42), 2)  # type: ignore[arg-type]
    runs, problems = events.encode_many(records)
    assert len(runs) == 1 and len(runs[0][1]) == 1 and b'"fine"' in runs[0][1][0]
    assert len(problems) == 1 and "message" in problems[0]


def test_handler_publishes_records_never_raises_never_reenters() -> None:
    published: list[Record] = []
    logger = logging.getLogger("datamover.test_handler")

    def publish(record: Record) -> bool:
        published.append(record)
        logger.warning("logged while publishing")  # would recurse without the guard
        logging.getLogger("datamover.kafka.x").warning("librdkafka says")
        return True

    handler = StreamLogHandler(publish)
    logger.addHandler(handler)
    logging.getLogger("datamover.kafka.x").addHandler(handler)
    try:
        logger.info("hello %s", "world")
        try:
            raise KeyError("k")
        except KeyError:
            logger.exception("failed")
        logger.debug("below the level")
    finally:
        logger.removeHandler(handler)
        logging.getLogger("datamover.kafka.x").removeHandler(handler)
    assert [r.message for r in published] == ["hello world", "failed"]
    assert published[1].priority == "ERROR" and "KeyError: 'k'" in published[1].stacktrace

    def broken(record: Record) -> bool:
        raise RuntimeError("kafka client bug")

    failing = StreamLogHandler(broken)
    logger.addHandler(failing)
    try:
        logger.warning("still fine")
    finally:
        logger.removeHandler(failing)
    assert failing.failed == 1


def test_structlog_event_dicts() -> None:
    try:
        raise OSError("disk")
    except OSError as exc:
        event = {"event": "write failed", "level": "error", "logger": "x.y", "exc_info": exc}
        record = structlog_record(event)
    assert record.priority == "ERROR" and record.logger == "x.y" and record.message == "write failed"
    assert record.stacktrace.endswith("OSError: disk")
    assert structlog_record({"event": "w", "level": "warn"}).priority == "WARNING"
