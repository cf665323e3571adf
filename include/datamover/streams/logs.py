"""Log records as events of the Stratos log streams (`logs.<tenantId>.<alias>.<yyyy.MM.dd>`).

Two sources feed them:
- log lines of a file (see tail.py): `LineFormat` tells where a record starts and which parts of the
  line are time, priority, logger and message; `Assembler` groups each record's continuation lines
  (a stack trace) into its `stacktrace`;
- log records of this process (`StreamLogHandler`, a logging.Handler attached in task processes).

`LogEvents` turns a record into a validated `Event` of the day's stream (UTC day of the record).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate, pairwise, repeat
from operator import add, getitem, itemgetter, methodcaller, mul
from typing import Any, NamedTuple

import msgspec

from datamover.streams.definition import AttrType, ColumnEncoder, Event, StreamDefinition

LOGS_STREAM = "logs"  # the family in streams.yaml

# A record starts with a timestamp: `2026-11-24 10:00:00,123 ...` or `[2026-11-24T10:00:00Z] ...`.
DEFAULT_START = r"^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
# Python logging's `%(asctime)s %(levelname)s %(name)s - %(message)s` (logger optional), and Airflow's
# console format `2026-11-24T10:00:00.123456Z [info     ] message ...`.
DEFAULT_PATTERN = (
    r"^\[?(?P<time>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\]?\s+"
    r"\[?\s*(?P<priority>(?i:trace|debug|info|notice|warn|warning|error|critical|fatal))\s*\]?:?\s+"
    r"(?:(?P<logger>[A-Za-z_][\w.]*)\s+-\s+)?(?P<message>.*)$"
)
PRIORITIES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
_NO_CORRELATION: dict[str, Any] = {}


class Record(NamedTuple):
    """One log record: its first line parsed, the lines that followed it as the stack trace. (A tuple:
    one is made per line, and a frozen dataclass costs several times as much to build.)"""

    time_ms: int
    priority: str
    logger: str
    message: str
    stacktrace: str = ""


class Records:
    """Finished records in columns (what `LogEvents.encode_many` encodes at once), and `end`: the file
    offset after the last of them (where the next unsent record starts)."""

    __slots__ = ("end", "loggers", "messages", "priorities", "stacktraces", "times")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.priorities: list[str] = []
        self.loggers: list[str] = []
        self.messages: list[str] = []
        self.stacktraces: list[str] = []
        self.end = 0

    def __len__(self) -> int:
        return len(self.times)

    def append(self, record: Record, end: int) -> None:
        self.times.append(record.time_ms)
        self.priorities.append(record.priority)
        self.loggers.append(record.logger)
        self.messages.append(record.message)
        self.stacktraces.append(record.stacktrace)
        self.end = end

    def extend(self, other: Records) -> None:
        if not other.times:
            return
        self.times += other.times
        self.priorities += other.priorities
        self.loggers += other.loggers
        self.messages += other.messages
        self.stacktraces += other.stacktraces
        self.end = other.end

    def __iter__(self) -> Iterator[Record]:
        return map(Record, self.times, self.priorities, self.loggers, self.messages, self.stacktraces)

    def slice(self, start: int, stop: int) -> Records:
        part = Records()
        part.times = self.times[start:stop]
        part.priorities = self.priorities[start:stop]
        part.loggers = self.loggers[start:stop]
        part.messages = self.messages[start:stop]
        part.stacktraces = self.stacktraces[start:stop]
        part.end = self.end
        return part


# the payload attributes that change per record, in the column order of LogEvents.encode_many
_VARYING = (
    ("payload", "logTime"),
    ("payload", "priority"),
    ("payload", "message"),
    ("payload", "logger"),
    ("payload", "stacktrace"),
)
_DAY_MS = 86_400_000
_FEW_RECORDS = 4  # encode_many encodes up to this many records one by one


@dataclass(frozen=True)
class LogIdentity:
    """Who publishes: the stream name parts and the payload fields that do not change per record."""

    tenant_id: str
    alias: str
    member_id: str
    server_name: str
    ip: str


class LogEvents:
    """Events of `family` (the `logs` stream family) for one application instance."""

    def __init__(self, family: StreamDefinition, identity: LogIdentity, app_name: str, instance: str) -> None:
        self.family = family
        self.identity = identity
        self.app_name = app_name
        self.instance = instance
        self._meta = {"memberId": identity.member_id}
        self._day: tuple[int, StreamDefinition] | None = None
        self._columns: tuple[StreamDefinition, ColumnEncoder | None] | None = None

    def stream_for(self, time_ms: int) -> StreamDefinition:
        day = time_ms // 86_400_000
        if self._day is None or self._day[0] != day:
            definition = self.family.resolve(
                tenantId=self.identity.tenant_id, alias=self.identity.alias, date=time_ms
            )
            self._day = (day, definition)
        return self._day[1]

    def encode(self, record: Record) -> tuple[StreamDefinition, bytes]:
        """The record's event, validated and encoded (the fast path of `event(record).encode()`)."""
        definition = self.stream_for(record.time_ms)
        identity = self.identity
        payload = {
            "tenantID": identity.tenant_id,
            "serverName": identity.server_name,
            "appName": self.app_name,
            "logTime": record.time_ms,
            "priority": record.priority,
            "message": record.message,
            "logger": record.logger,
            "ip": identity.ip,
            "instance": self.instance,
            "stacktrace": record.stacktrace,
        }
        data = definition.encoder(self._meta, _NO_CORRELATION, payload, record.time_ms)
        return definition, data if data is not None else self.event(record).encode()

    def encode_many(self, records: Records) -> tuple[list[tuple[StreamDefinition, list[bytes]]], list[str]]:
        """The records' events, validated and encoded, as runs of one stream each (a new day starts a
        new stream), in record order; and why records were left out (a record that fits no event: a
        bug). Encoded column by column (`ColumnEncoder`): the identity is checked once per stream, the
        per-record values column by column; if a column does not fit, record by record (as a handful of
        records is anyway: the column set-up costs more than it saves there)."""
        times = records.times
        if not times:
            return [], []
        runs: list[tuple[StreamDefinition, list[bytes]]] = []
        problems: list[str] = []
        first, last = min(times) // _DAY_MS, max(times) // _DAY_MS
        bounds = [0, len(times)]
        if first != last:  # the batch spans midnight: split where the day changes
            days = [t // _DAY_MS for t in times]
            bounds = [0, *(i for i in range(1, len(days)) if days[i] != days[i - 1]), len(days)]
        for start, stop in pairwise(bounds):
            part = records if (start, stop) == (0, len(times)) else records.slice(start, stop)
            definition = self.stream_for(part.times[0])
            encoder = self.column_encoder(definition)
            columns = (part.times, part.priorities, part.messages, part.loggers, part.stacktraces)
            few = len(part.times) <= _FEW_RECORDS
            values = encoder.encode(columns, part.times) if encoder is not None and not few else None
            if values is None:  # record by record: the ones that fit are sent, the others named
                values = []
                for record in part:
                    try:
                        values.append(self.encode(record)[1])
                    except ValueError as exc:
                        problems.append(str(exc))
            runs.append((definition, values))
        return runs, problems

    def column_encoder(self, definition: StreamDefinition) -> ColumnEncoder | None:
        """`definition`'s ColumnEncoder with this publisher's identity fixed and the record's attributes
        varying (in `_VARYING` order); None if the identity does not fit it. The last one is kept."""
        if self._columns is None or self._columns[0] is not definition:
            identity = self.identity
            fixed = {
                "meta": self._meta,
                "payload": {
                    "tenantID": identity.tenant_id,
                    "serverName": identity.server_name,
                    "appName": self.app_name,
                    "ip": identity.ip,
                    "instance": self.instance,
                },
            }
            try:
                encoder: ColumnEncoder | None = definition.column_encoder(fixed, _VARYING)
            except ValueError:  # (a deployment's definition the identity does not fit: record by record)
                encoder = None
            self._columns = (definition, encoder)
        return self._columns[1]

    def event(self, record: Record) -> Event:
        identity = self.identity
        return Event(
            self.stream_for(record.time_ms),
            meta={"memberId": identity.member_id},
            payload={
                "tenantID": identity.tenant_id,
                "serverName": identity.server_name,
                "appName": self.app_name,
                "logTime": record.time_ms,
                "priority": record.priority,
                "message": record.message,
                "logger": record.logger,
                "ip": identity.ip,
                "instance": self.instance,
                "stacktrace": record.stacktrace,
            },
            timestamp_ms=record.time_ms,
        )


def parse_time_ms(text: str, default_tz: Any = UTC) -> int | None:
    """Epoch ms of an ISO-8601-like timestamp (`,` or `.` before the fraction); naive = `default_tz`.
    The whole seconds are parsed once per distinct second (log lines come many to a second)."""
    if len(text) < 19:
        return None
    rest = text[19:]
    if not rest:
        ms = 0
    elif rest[0] in ".," and len(rest) == 4 and rest[1:].isdigit():  # the usual ",123": no zone
        ms, rest = int(rest[1:]), ""
    elif rest[0] in ".,":
        zone = rest[1:].lstrip("0123456789")
        digits = rest[1 : len(rest) - len(zone)]
        ms = int((digits + "000")[:3]) if digits else 0
        rest = zone
    else:
        ms = 0
    if default_tz is UTC:  # the common case: a plain dict lookup per line
        key = text[:19] + rest
        seconds = _UTC_SECONDS.get(key, _UNPARSED)
        if seconds is _UNPARSED:
            if len(_UTC_SECONDS) > 65_536:
                _UTC_SECONDS.clear()
            seconds = _UTC_SECONDS[key] = _epoch_seconds(text[:19], rest, UTC)
    else:
        seconds = _epoch_seconds(text[:19], rest, default_tz)
    return None if seconds is None else seconds * 1000 + ms  # type: ignore[operator]


_UTC_SECONDS: dict[str, int | object | None] = {}
_UNPARSED = object()


@lru_cache(maxsize=4096)
def _epoch_seconds(base: str, zone: str, default_tz: Any) -> int | None:
    try:
        value = datetime.fromisoformat(base.replace(",", ".") + zone)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    return int(value.timestamp())


def _message_or_line(message: str | None, line: str) -> str:
    return message if message is not None else line


_SECOND = itemgetter(slice(0, 19))
_SEPARATOR = itemgetter(19)
_FRACTION = itemgetter(slice(20, 23))


def _times_ms(stamps: list[str | None], now_ms: int) -> list[int]:
    """`parse_time_ms` of each stamp (`now_ms` where there is none or it does not parse): for stamps that
    all read `yyyy-MM-dd HH:mm:ss,SSS` (UTC), from the whole seconds, each parsed once, plus the ms."""
    if (
        stamps
        and set(map(type, stamps)) == {str}
        and set(map(len, stamps)) == {23}  # type: ignore[arg-type]
        and set(map(_SEPARATOR, stamps)) <= {",", "."}
        and (fractions := "".join(map(_FRACTION, stamps))).isascii()
        and fractions.isdigit()
    ):
        seconds = list(map(_SECOND, stamps))
        _remember(_UTC_SECONDS, seconds, _naive_utc_seconds)
        whole = list(map(_UTC_SECONDS.get, seconds))
        if None not in whole and _UNPARSED not in whole:
            return list(map(add, map(mul, whole, repeat(1000)), map(int, map(_FRACTION, stamps))))  # type: ignore[arg-type]
    times = []
    for stamp in stamps:
        time_ms = parse_time_ms(stamp) if stamp else None
        times.append(time_ms if time_ms is not None else now_ms)
    return times


# The usual layout, Python logging's `%(asctime)s %(levelname)s %(name)s - %(message)s`, is cut at its first
# " - " instead of matched: a few C-level passes over a batch's columns, where a regex match per line costs
# several times as much. `_split_usual` gives exactly what DEFAULT_PATTERN gives for such lines, or None.
_USUAL_LEVELS = frozenset(
    {"TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"}
)
_LOGGER_NAME = re.compile(r"[A-Za-z_][\w.]*")  # DEFAULT_PATTERN's logger group
_STAMP_SECOND = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
_WHITESPACE = re.compile(r"\s")  # what DEFAULT_PATTERN's `\s` matches
_FIND_DASH = methodcaller("find", " - ")
_HEAD_SPACE = itemgetter(23)
_HEAD_REST = itemgetter(slice(24, None))  # `LEVEL logger`
_FIRST_CHAR = itemgetter(slice(0, 1))
_PRIORITY_OF, _LOGGER_OF = itemgetter(0), itemgetter(1)  # of a (priority, logger)
_MS_VALUE = {f"{ms:03d}": ms for ms in range(1000)}
_SECOND_MS: dict[str, int | None] = {}  # `yyyy-MM-dd HH:mm:ss` (UTC) -> epoch ms, None if not a time
_LEVEL_LOGGER: dict[str, tuple[str, str] | None] = {}  # `LEVEL logger` -> (priority, logger), None: other


def _level_logger(rest: str) -> tuple[str, str] | None:
    level, _, logger = rest.partition(" ")
    if level not in _USUAL_LEVELS or not _LOGGER_NAME.fullmatch(logger):
        return None
    return PRIORITIES.get(level, level), logger


def _naive_utc_seconds(second: str) -> int | None:
    """Epoch seconds of `yyyy-MM-dd HH:mm:ss` (or another ISO form fromisoformat reads) taken as UTC."""
    return _epoch_seconds(second, "", UTC)


def _second_ms(second: str) -> int | None:
    epoch = _naive_utc_seconds(second) if _STAMP_SECOND.fullmatch(second) else None
    return None if epoch is None else epoch * 1000


def _remember(cache: dict[str, Any], keys: list[str], compute: Callable[[str], Any]) -> None:
    missing = set(keys).difference(cache)
    if len(cache) + len(missing) > 65_536:  # (bounded; cleared before, so every key of `keys` is in it)
        cache.clear()
        missing = set(keys)
    for key in missing:
        cache[key] = compute(key)


def _split_usual(lines: list[str]) -> tuple[list[int], list[str], list[str], list[str]] | None:
    """(times, priorities, loggers, messages) of lines that all read `yyyy-MM-dd HH:mm:ss,SSS LEVEL
    logger - message` (upper-case level, single spaces, a message that does not start with
    whitespace): what DEFAULT_PATTERN and `_times_ms` give for them. None if any line reads otherwise.
    Levels, loggers and seconds repeat from line to line: each distinct one is checked once."""
    # (no tuple per line: thousands of containers alive at once would wake the garbage collector's full
    # collections, which in an Airflow process walk hundreds of thousands of objects)
    cuts = list(map(_FIND_DASH, lines))
    if -1 in cuts:
        return None
    heads = list(map(getitem, lines, map(slice, cuts)))
    messages = list(map(getitem, lines, map(slice, map(add, cuts, repeat(3)), repeat(None))))
    try:
        if set(map(_HEAD_SPACE, heads)) != {" "} or not {",", "."}.issuperset(map(_SEPARATOR, heads)):
            return None
        ms = list(map(_MS_VALUE.__getitem__, map(_FRACTION, heads)))
    except (IndexError, KeyError):  # a head too short, or not three digits of ms
        return None
    if _WHITESPACE.search("".join(map(_FIRST_CHAR, messages))):  # the pattern's `-\s+` would take it
        return None
    seconds = list(map(_SECOND, heads))  # `yyyy-MM-dd HH:mm:ss`
    _remember(_SECOND_MS, seconds, _second_ms)
    rests = list(map(_HEAD_REST, heads))
    _remember(_LEVEL_LOGGER, rests, _level_logger)
    whole = list(map(_SECOND_MS.__getitem__, seconds))
    levels_loggers = list(map(_LEVEL_LOGGER.__getitem__, rests))
    if None in whole or None in levels_loggers:
        return None
    priorities = list(map(_PRIORITY_OF, levels_loggers))  # type: ignore[arg-type]
    loggers = list(map(_LOGGER_OF, levels_loggers))  # type: ignore[arg-type]
    return list(map(add, whole, ms)), priorities, loggers, messages  # type: ignore[arg-type]


@dataclass(frozen=True)
class LineFormat:
    """How to read the lines of one log file."""

    start: str = DEFAULT_START
    pattern: str = DEFAULT_PATTERN
    default_priority: str = "INFO"
    default_logger: str = ""
    _start: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _groups: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # every line the pattern matches starts a record (true of the defaults: the pattern begins with `start`)
    _matched_starts: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_start", re.compile(self.start))
        pattern = re.compile(self.pattern)
        object.__setattr__(self, "_pattern", pattern)
        # the named groups, in Record order; a pattern without one of them gets an always-empty twin
        names = ("time", "priority", "logger", "message")
        if any(n in pattern.groupindex for n in names):
            missing = "".join(f"(?P<{n}>)" for n in names if n not in pattern.groupindex)
            if missing:
                pattern = re.compile(f"(?:{self.pattern}){missing}")
                object.__setattr__(self, "_pattern", pattern)
        groups = names if any(n in pattern.groupindex for n in names) else ()
        object.__setattr__(self, "_groups", groups)
        defaults = (self.start, self.pattern) == (DEFAULT_START, DEFAULT_PATTERN)
        object.__setattr__(self, "_matched_starts", defaults)

    @property
    def is_default(self) -> bool:
        """Reads the default layouts (DEFAULT_START, DEFAULT_PATTERN): UsualLines may take its lines."""
        return self._matched_starts

    def starts_record(self, line: str) -> bool:
        return self._start.match(line) is not None

    def parse(self, line: str, now_ms: int) -> Record:
        m = self._pattern.match(line)
        if m is None:
            return Record(now_ms, self.default_priority.upper(), self.default_logger, line)
        stamp, priority, logger, message = m.group(*self._groups) if self._groups else (None,) * 4
        time_ms = parse_time_ms(stamp) if stamp else None
        priority = (priority or self.default_priority).upper()
        return Record(
            time_ms if time_ms is not None else now_ms,
            PRIORITIES.get(priority, priority),
            logger or self.default_logger,
            message if message is not None else line,
        )

    def parse_many(self, lines: list[str], now_ms: int, strict: bool = False) -> Records | None:
        """`parse` of each line, as columns (no stack traces): the same values, found for all lines at
        once where they share the usual shape (every line matches, `yyyy-MM-dd HH:mm:ss,SSS` times).
        `strict`: None instead if a line does not match the pattern."""
        out = Records()
        if self._matched_starts and lines and (usual := _split_usual(lines)) is not None:
            out.times, out.priorities, out.loggers, out.messages = usual
            out.stacktraces = [""] * len(lines)
            return out
        rows: list[tuple[str | None, ...]] | None = None
        if lines and self._groups:
            try:  # (streamed: no match object outlives its line, so the garbage collector stays idle)
                rows = list(map(methodcaller("group", *self._groups), map(self._pattern.match, lines)))
            except AttributeError:  # a line that does not match (None.group): line by line
                rows = None
        if rows is None and strict:
            return None
        if rows is None:
            for record in map(self.parse, lines, repeat(now_ms)):
                out.times.append(record.time_ms)
                out.priorities.append(record.priority)
                out.loggers.append(record.logger)
                out.messages.append(record.message)
            out.stacktraces = [""] * len(lines)
            return out
        stamps, priorities, loggers, messages = map(list, zip(*rows, strict=True))
        del rows
        out.times = _times_ms(stamps, now_ms)
        if None in priorities or "" in priorities:
            priorities = [p or self.default_priority for p in priorities]
        upper = list(map(str.upper, priorities))
        out.priorities = list(map(PRIORITIES.get, upper, upper))
        out.loggers = [logger or self.default_logger for logger in loggers]
        out.messages = messages if None not in messages else list(map(_message_or_line, messages, lines))
        out.stacktraces = [""] * len(lines)
        return out


class Assembler:
    """Groups lines into records: a line that starts a record closes the one before; any other line is a
    continuation (a stack trace line) of the open record, or a record of its own if none is open.

    Each line comes with the file offset just after it, so every finished record knows where the next
    one starts: the position a reader commits. `max_record_chars` bounds a record's stack trace."""

    def __init__(self, fmt: LineFormat, max_record_chars: int = 256 * 1024) -> None:
        self.fmt = fmt
        self.max_record_chars = max_record_chars
        self._head: str | None = None
        self._trace: list[str] = []
        self._size = 0
        self._end = 0
        self.truncated = 0  # continuation lines dropped by the bound

    @property
    def open(self) -> bool:
        return self._head is not None

    def feed(self, line: str, end_offset: int, now_ms: int) -> tuple[Record, int] | None:
        """Add one line; returns (a finished record, the offset after it) when `line` closes one."""
        if self._head is not None and not self.fmt.starts_record(line):
            if self._size + len(line) < self.max_record_chars:
                self._trace.append(line)
                self._size += len(line) + 1
            else:
                self.truncated += 1
            self._end = end_offset
            return None
        done = self.flush(now_ms)
        self._head, self._trace, self._size, self._end = line, [], len(line), end_offset
        return done

    def feed_lines(self, lines: list[str], ends: list[int], now_ms: int) -> Records:
        """`feed` of each line in turn (`ends[i]`: the offset after `lines[i]`), the finished records as
        columns. Runs of lines that each start a record are parsed all at once; only the lines of a
        stack trace go one by one."""
        if not lines:
            return Records()
        fmt = self.fmt
        if fmt._matched_starts and fmt.starts_record(lines[-1]):  # then each line that matches starts one
            parsed = fmt.parse_many(lines[:-1], now_ms, strict=True)
            if parsed is not None:
                return self._run_of_starts(parsed, lines, ends, 0, len(lines), now_ms)
        starts = list(map(bool, map(fmt._start.match, lines)))
        out = Records()
        i, n = 0, len(lines)
        while i < n:
            if not starts[i]:  # a stack trace line (or a record of its own, if none is open)
                if (done := self.feed(lines[i], ends[i], now_ms)) is not None:
                    out.append(*done)
                i += 1
                continue
            try:
                j = starts.index(False, i)
            except ValueError:
                j = n
            out.extend(self._run_of_starts(None, lines, ends, i, j, now_ms))
            i = j
        return out

    def _run_of_starts(
        self, parsed: Records | None, lines: list[str], ends: list[int], i: int, j: int, now_ms: int
    ) -> Records:
        """`lines[i:j]` each start a record: the open record and `lines[i:j-1]` are finished (`parsed`:
        those lines already parsed), `lines[j-1]` is the new open record."""
        previous = self.flush(now_ms)
        out = parsed if parsed is not None else self.fmt.parse_many(lines[i : j - 1], now_ms)
        assert out is not None
        if j - i > 1:
            out.end = ends[j - 2]
        if previous is not None:
            first = Records()
            first.append(*previous)
            first.extend(out)
            out = first
        self._head, self._trace, self._size, self._end = lines[j - 1], [], len(lines[j - 1]), ends[j - 1]
        return out

    def flush(self, now_ms: int) -> tuple[Record, int] | None:
        """Close the open record (the file went quiet, or ended)."""
        if self._head is None:
            return None
        record = self.fmt.parse(self._head, now_ms)
        if self._trace:
            record = record._replace(stacktrace="\n".join(self._trace))
        done = (record, self._end)
        self._head, self._trace, self._size = None, [], 0
        return done

    def extend(self, end_offset: int) -> bool:
        """The open record also covers the file up to `end_offset` (the skipped rest of a cut line)."""
        if self._head is None:
            return False
        self._end = end_offset
        return True

    def reset(self) -> None:
        self._head, self._trace, self._size = None, [], 0


class EventBatch:
    """Finished records on their way to one commit, encoded, as runs of one stream each in record order,
    and `end`: the file offset after the last of them. Records that come as such (a record with a stack
    trace, a line of another layout) wait as columns and are encoded together (`encode_many`) when
    events of the usual layout follow them (`add_encoded`) or the batch is taken (`encoded`)."""

    __slots__ = ("_waiting", "end", "events", "problems", "records", "runs")

    def __init__(self, events: LogEvents) -> None:
        self.events = events
        self.runs: list[tuple[StreamDefinition, list[bytes]]] = []
        self.problems: list[str] = []  # why records were left out (see LogEvents.encode_many)
        self.records = 0
        self.end = 0
        self._waiting = Records()

    def __len__(self) -> int:
        return self.records

    def append(self, record: Record, end: int) -> None:
        self._waiting.append(record, end)
        self.records += 1
        self.end = end

    def extend(self, records: Records) -> None:
        if len(records):
            self._waiting.extend(records)
            self.records += len(records)
            self.end = records.end

    def add_encoded(self, definition: StreamDefinition, values: list[bytes], end: int) -> None:
        """Events already encoded, one per record (UsualLines); the batch owns `values` now."""
        self._encode_waiting()
        self._add_run(definition, values)
        self.records += len(values)
        self.end = end

    def encoded(self) -> tuple[list[tuple[StreamDefinition, list[bytes]]], list[str]]:
        self._encode_waiting()
        return self.runs, self.problems

    def _encode_waiting(self) -> None:
        if len(self._waiting):
            runs, problems = self.events.encode_many(self._waiting)
            for definition, values in runs:
                self._add_run(definition, values)
            self.problems += problems
            self._waiting = Records()

    def _add_run(self, definition: StreamDefinition, values: list[bytes]) -> None:
        if not values:  # (every record of it left out)
            return
        if self.runs and self.runs[-1][0].stream_id == definition.stream_id:
            self.runs[-1][1].extend(values)
        else:
            self.runs.append((definition, values))


# JSON escapes these (all but the newline): a block that holds one goes the general way
_CONTROL = bytes(range(0x0A)) + bytes(range(0x0B, 0x20))
_STAMP_KEY = itemgetter(slice(0, 20))  # b"yyyy-MM-dd HH:mm:ss," (with the separator)
_MS_KEY = itemgetter(slice(20, 23))
_MS_DIGITS = {f"{ms:03d}".encode(): f"{ms:03d}".encode() for ms in range(1000)}
_STARTS_WITH_SPACE = methodcaller("startswith", b" ")
_USUAL_TYPES = [AttrType.LONG, AttrType.STRING, AttrType.STRING, AttrType.STRING, AttrType.STRING]
_CACHE_LIMIT = 65_536


def _indices(values: list[Any], target: Any) -> list[int]:
    """Where `target` is in `values` (a C-level scan per hit: for the few hits of a long list)."""
    found: list[int] = []
    i = -1
    try:
        while True:
            i = values.index(target, i + 1)
            found.append(i)
    except ValueError:
        return found


class UsualLines:
    """The events of a whole block of log lines of Python logging's usual layout, `%(asctime)s
    %(levelname)s %(name)s - %(message)s` with `yyyy-MM-dd HH:mm:ss,SSS` (UTC) times, made straight from
    the bytes in a few C-level passes over the block: each one byte for byte what `LogEvents.encode`
    gives for the record DEFAULT_PATTERN reads from the line, and valid by construction.

    The block is JSON-escaped once (`\\` and `"`; a block with a control character goes the general
    way), so each line's message, after its first " - ", is already the inside of its JSON string. The
    head maps through caches to the JSON around the message: the second (`yyyy-MM-dd HH:mm:ss,`) to the
    stream and the epoch second's digits (the timestamp is those digits followed by the three of the
    ms), ` LEVEL logger` to the priority and logger. Each distinct head part is checked once against
    what DEFAULT_PATTERN and `_split_usual` accept, and seconds and loggers repeat from line to line.
    A line that does not fit is left to the general way (`feed` hands it to the Assembler)."""

    def __init__(self, events: LogEvents) -> None:
        self.events = events
        self._layouts: dict[int, tuple[bytes, ...] | None] = {}  # day -> the constant parts, see _layout
        self._front: dict[bytes, bytes | None] = {}  # second -> stream and timestamp up to the ms
        self._middle: dict[bytes, bytes | None] = {}  # second -> the constants after it, logTime up to the ms
        self._days: dict[bytes, int | None] = {}
        self._before: dict[bytes, bytes | None] = {}  # ` LEVEL logger` -> priority, up to the message
        self._after: dict[bytes, bytes | None] = {}  # ` LEVEL logger` -> from the message's end
        self._level_parts: tuple[bytes, ...] = ()  # the constants _before and _after were made with

    def feed(self, block: bytes, base: int, now_ms: int, assembler: Assembler, batch: EventBatch) -> bool:
        """`assembler.feed` of each line of `block` (ASCII, complete lines; `base`: its file offset) into
        `batch`, with the records of usual lines encoded at once. False (nothing done) if the block goes
        the general way as a whole. A run's last usual line stays open in the assembler: stack trace
        lines may follow it."""
        encoded = self._encode(block)
        if encoded is None:
            return False
        definition, values, odd, lines = encoded
        if not odd:  # (the common case: no per-line offsets needed)
            start = block.rfind(b"\n", 0, len(block) - 1) + 1  # of the last line
            if (done := assembler.flush(now_ms)) is not None:
                batch.append(*done)
            values.pop()
            if values:
                batch.add_encoded(definition, values, base + start)
            assembler.feed(block[start:-1].decode("ascii"), base + len(block), now_ms)
            return True
        if lines is None:  # (escaping changed some line: the raw ones for the assembler)
            lines = block.split(b"\n")
        lengths = list(accumulate(map(len, lines)))  # the end of line k: base + lengths[k] + k + 1
        i = 0
        for k in [*odd, len(values)]:
            if i < k:  # lines i..k-1 are usual: each starts a record
                if (done := assembler.flush(now_ms)) is not None:
                    batch.append(*done)
                if k - i > 1:
                    batch.add_encoded(definition, values[i : k - 1], base + lengths[k - 2] + k - 1)
                assembler.feed(lines[k - 1].decode("ascii"), base + lengths[k - 1] + k, now_ms)
            if k < len(values):
                done = assembler.feed(lines[k].decode("ascii"), base + lengths[k] + k + 1, now_ms)
                if done is not None:
                    batch.append(*done)
            i = k + 1
        return True

    def encode(self, block: bytes) -> tuple[StreamDefinition, list[bytes], list[int]] | None:
        """One event per line of `block` (ASCII, complete lines), and the indices of the lines that are
        not of the usual layout (their events are placeholders). None if the block goes the general way
        as a whole: a control character, usual lines of two days, none at all, or a stream definition
        whose layout differs from the seed's."""
        encoded = self._encode(block)
        return None if encoded is None else encoded[:3]

    def _encode(
        self, block: bytes
    ) -> tuple[StreamDefinition, list[bytes], list[int], list[bytes] | None] | None:
        """`encode`, and the block's lines as they are when escaping changed none (else None)."""
        if len(block.translate(None, _CONTROL)) != len(block):
            return None
        escaped = block.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        lines = escaped.split(b"\n")
        lines.pop()  # after the last newline
        seconds = list(map(_STAMP_KEY, lines))
        distinct = set(seconds)
        if len(self._days) + len(distinct) > _CACHE_LIMIT:
            self._front.clear()
            self._middle.clear()
            self._days.clear()
        for key in distinct.difference(self._days):
            self._add_second(key)
        days = set(map(self._days.__getitem__, distinct))
        days.discard(None)
        if len(days) != 1:
            return None
        day = days.pop()
        layout = self._layout(day)
        if layout is None:
            return None
        if layout[2:] != self._level_parts or len(self._before) > _CACHE_LIMIT:
            self._before.clear()
            self._after.clear()
            self._level_parts = layout[2:]
        # Each check below finds the lines it rejects; a rejected line gets placeholders in the lists
        # checked after it, so each odd line is looked at once and the join takes every line.
        # (No per-line tuple, e.g. from bytes.partition: 200,000 of them set off ~250 collections of the
        # cyclic GC, and now and then a full one, ~0.15 s with the GIL held in a process with Airflow.)
        cuts = list(map(bytes.find, lines, repeat(b" - ")))  # the first " - " ends the head
        odd = set(_indices(cuts, -1)) if -1 in cuts else set()
        levels = list(map(getitem, lines, map(slice, repeat(23), cuts)))  # b" LEVEL logger"
        before = list(map(self._before.get, levels))
        for i in odd:
            before[i] = b""
        if None in before:  # a level and logger not seen yet, or a line of another layout
            for i in _indices(before, None):
                if levels[i] not in self._before:
                    self._add_level(levels[i])
                if (value := self._before[levels[i]]) is None:
                    odd.add(i)
                before[i] = value or b""
        front = list(map(self._front.__getitem__, seconds))
        for i in odd:
            front[i] = b""
        if None in front:  # not a time
            odd.update(_indices(front, None))
        ms = list(map(_MS_KEY, lines))
        for i in odd:
            ms[i] = b"000"
        if not (digits := b"".join(ms)).isdigit() or len(digits) != 3 * len(ms):  # (one check for all)
            odd.update(i for i, value in enumerate(ms) if value not in _MS_DIGITS)
        messages = list(map(getitem, lines, map(slice, map(add, cuts, repeat(3)), repeat(None))))
        if b" -  " in block:  # a message that starts with a space: the pattern's `-\s+` would take it
            odd.update(_indices(list(map(_STARTS_WITH_SPACE, messages)), True))
        middle = list(map(self._middle.__getitem__, seconds))
        after = list(map(self._after.get, levels))
        for i in odd:
            front[i] = middle[i] = ms[i] = before[i] = after[i] = b""
        definition = self.events.stream_for(day * _DAY_MS)
        events = list(map(b"".join, zip(front, ms, middle, ms, before, messages, after, strict=True)))
        return definition, events, sorted(odd), lines if len(escaped) == len(block) else None

    def _layout(self, day: int) -> tuple[bytes, ...] | None:
        """The constant parts of the day's events: up to the timestamp, from it up to logTime, from logTime
        up to the priority, from the priority up to the message's opening quote, from the closing quote up
        to the logger, and the rest with an empty stacktrace. None if the day's definition orders or types
        the varying attributes otherwise (its lines then go the general way)."""
        if day not in self._layouts:
            if len(self._layouts) > 64:
                self._layouts.clear()
            definition = self.events.stream_for(day * _DAY_MS)
            encoder = self.events.column_encoder(definition)
            parts = encoder.layout if encoder is not None else ()
            usual = (
                encoder is not None
                and encoder.types == _USUAL_TYPES
                and parts[1::2] == (-1, 0, 1, 2, 3, 4)
                and len(parts) == 13
            )
            constants: list[bytes] = list(parts[0::2]) if usual else []  # type: ignore[arg-type]
            self._layouts[day] = (
                (
                    constants[0],
                    constants[1],
                    constants[2],
                    constants[3] + b'"',
                    b'"' + constants[4],
                    constants[5] + b'""' + constants[6],
                )
                if usual
                else None
            )
        return self._layouts[day]

    def _add_second(self, key: bytes) -> None:
        epoch = None
        if len(key) == 20 and key[19:] in (b",", b"."):
            second_ms = _second_ms(key[:19].decode("ascii", "replace"))
            epoch = None if second_ms is None or second_ms < 1000 else second_ms // 1000
        layout = None if epoch is None else self._layout(epoch // 86_400)
        if epoch is None or layout is None:
            self._front[key] = self._middle[key] = self._days[key] = None
            return
        digits = str(epoch).encode()
        self._front[key] = layout[0] + digits
        self._middle[key] = layout[1] + digits
        self._days[key] = epoch // 86_400

    def _add_level(self, key: bytes) -> None:
        found = _level_logger(key[1:].decode("ascii", "replace")) if key[:1] == b" " else None
        if found is None:
            self._before[key] = self._after[key] = None
            return
        priority, logger = found
        parts = self._level_parts
        self._before[key] = parts[0] + msgspec.json.encode(priority) + parts[1]
        self._after[key] = parts[2] + msgspec.json.encode(logger) + parts[3]


class StreamLogHandler(logging.Handler):
    """Publishes the records of this process (e.g. the package's loggers in a task process) through
    `publish(record) -> bool`. Never raises into the code that logs, never re-enters itself (a record
    logged while publishing, e.g. by the Kafka client, is skipped), and skips `exclude` logger prefixes."""

    def __init__(
        self,
        publish: Callable[[Record], Any],
        level: int = logging.INFO,
        exclude: tuple[str, ...] = ("datamover.kafka", "datamover.hooks.kafka", "datamover.hooks.streams"),
    ) -> None:
        super().__init__(level)
        self.publish = publish
        self.exclude = exclude
        self.failed = 0
        self._local = threading.local()
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False) or record.name.startswith(self.exclude):
            return
        self._local.busy = True
        try:
            stacktrace = ""
            if record.exc_info and record.exc_info[0] is not None:
                stacktrace = self._formatter.formatException(record.exc_info)
            elif record.stack_info:
                stacktrace = record.stack_info
            self.publish(
                Record(
                    time_ms=int(record.created * 1000),
                    priority=record.levelname,
                    logger=record.name,
                    message=record.getMessage(),
                    stacktrace=stacktrace,
                )
            )
        except Exception:  # never into the code that logs
            self.failed += 1
        finally:
            self._local.busy = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed += 1


def structlog_record(event_dict: dict[str, Any]) -> Record:
    """A Record from a structlog event dict (Airflow's task loggers are structlog loggers)."""
    exc = event_dict.get("exc_info")
    stacktrace = ""
    if isinstance(exc, BaseException):
        stacktrace = "".join(traceback.format_exception(exc)).rstrip("\n")
    elif isinstance(exc, tuple) and exc and exc[0] is not None:
        stacktrace = "".join(traceback.format_exception(*exc)).rstrip("\n")
    elif exc is True:
        import sys

        info = sys.exc_info()
        if info[0] is not None:
            stacktrace = "".join(traceback.format_exception(*info)).rstrip("\n")
    elif isinstance(event_dict.get("exception"), str):
        stacktrace = event_dict["exception"]
    level = str(event_dict.get("level") or event_dict.get("log_level") or "info").upper()
    return Record(
        time_ms=int(time.time() * 1000),
        priority=PRIORITIES.get(level, level),
        logger=str(event_dict.get("logger") or event_dict.get("logger_name") or ""),
        message=str(event_dict.get("event", "")),
        stacktrace=stacktrace,
    )
