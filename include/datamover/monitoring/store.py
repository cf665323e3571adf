"""The durable state of transfer monitoring, in PostgreSQL (one schema per deployment, `postgres.schema`).

Tables (created on first use, `Store.ensure_schema`):

    kafka_offsets      next offset per topic partition, written in the same transaction as the rows a batch
                       produced: a crash replays at most an uncommitted batch, and a replay changes nothing
    ingest_progress    per source, the last time the consumer had read everything the broker held
                       (`caught_up_at`): an exposure is evaluated only once notifications are in up to
                       its window's end
    file_messages      per observing day, the file notifications received (duplicates counted)
    objects            one row per object key: its first and last notification time (first arrival is
                       what times the transfer), how many notifications it had, size, ETag
    expected_sensors   per exposure prefix, the expected object keys read from its expected-sensors file
    exposures          one row per End Readout (the first one wins); the evaluation's results fill the
                       same row: expected, found, missing, late, late_after_window, transfer_time_s ...
    metric_days        per observing day and metric group, a version bumped by every change and the
                       version last pushed to the Pushgateway (what still needs pushing survives restarts)
    sweep              how far (objects.seq) late arrivals of evaluated exposures have been counted

Every statement takes its schema from `sql.Identifier`; values are always parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from datamover.monitoring.evaluation import ExposureResult
from datamover.monitoring.keys import expected_sensors_key

FILE_NOTIFICATIONS = "file_notifications"
END_READOUTS = "end_readouts"
FILE_MESSAGES_GROUP = "file_messages"
EXPOSURES_GROUP = "exposures"

_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.kafka_offsets (
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    source text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS {s}.ingest_progress (
    source text PRIMARY KEY,
    caught_up_at timestamptz,
    batches bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.file_messages (
    day date PRIMARY KEY,
    received bigint NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS {s}.objects_seq;
CREATE TABLE IF NOT EXISTS {s}.objects (
    key text PRIMARY KEY,
    prefix text,
    first_time timestamptz NOT NULL,
    last_time timestamptz NOT NULL,
    notifications integer NOT NULL,
    size bigint,
    etag text,
    source text NOT NULL DEFAULT 'notification',
    seq bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS objects_prefix ON {s}.objects (prefix);
CREATE INDEX IF NOT EXISTS objects_seq ON {s}.objects (seq);
CREATE TABLE IF NOT EXISTS {s}.expected_sensors (
    prefix text PRIMARY KEY,
    obs_id text NOT NULL,
    key text NOT NULL,
    keys text[],
    sensors integer,
    ignored jsonb,
    error text,
    fetched_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {s}.exposures (
    obs_id text PRIMARY KEY,
    prefix text NOT NULL,
    day date NOT NULL,
    end_of_readout_tai double precision NOT NULL,
    end_of_readout timestamptz NOT NULL,
    end_readout jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    evaluated_at timestamptz,
    expected integer,
    found integer,
    missing integer,
    late integer,
    late_after_window integer,
    unexpected integer,
    transfer_time_s double precision,
    newest_key text,
    missing_keys text[],
    pushed_at timestamptz
);
CREATE INDEX IF NOT EXISTS exposures_pending ON {s}.exposures (end_of_readout) WHERE evaluated_at IS NULL;
CREATE INDEX IF NOT EXISTS exposures_day ON {s}.exposures (day);
CREATE INDEX IF NOT EXISTS exposures_prefix ON {s}.exposures (prefix);
CREATE TABLE IF NOT EXISTS {s}.metric_days (
    grp text NOT NULL,
    day date NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    pushed_version bigint NOT NULL DEFAULT 0,
    pushed_at timestamptz,
    PRIMARY KEY (grp, day)
);
CREATE TABLE IF NOT EXISTS {s}.sweep (
    name text PRIMARY KEY,
    seq bigint NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One key's notifications within a batch (already reduced to first/last time and a count)."""

    key: str
    prefix: str | None
    first_time: datetime
    last_time: datetime
    notifications: int
    size: int | None
    etag: str | None


@dataclass(frozen=True, slots=True)
class ExposureRow:
    obs_id: str
    prefix: str
    day: date
    end_of_readout_tai: float
    end_of_readout: datetime
    end_readout: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExpectedRow:
    prefix: str
    obs_id: str
    key: str
    keys: Sequence[str] | None
    sensors: int | None = None
    ignored: Mapping[str, str] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """An exposure ready for evaluation."""

    obs_id: str
    prefix: str
    day: date
    end_of_readout: datetime
    expected_key: str


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: int  # exposures that can be evaluated now
    pending: int  # exposures not evaluated yet
    caught_up_at: datetime | None
    next_settle: datetime | None  # when the earliest pending window (plus slack) closes


class Store:
    """Queries over one schema, on one psycopg connection owned by the caller."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._s = sql.Identifier(schema)

    def q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    def ensure_schema(self) -> None:
        """Create the schema and tables if missing (idempotent; serialised by an advisory lock)."""
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"dtm-schema:{self.schema}",))
            cur.execute(self.q(_SCHEMA_SQL))

    def drop_schema(self) -> None:
        with self.transaction() as cur:
            cur.execute(self.q("DROP SCHEMA IF EXISTS {s} CASCADE"))

    def try_lock(self, role: str) -> bool:
        """A session advisory lock so only one ingest (or one evaluator) works on a schema at a time."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"dtm:{self.schema}:{role}",))
        ok = bool(row.fetchone()[0])  # type: ignore[index]
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.commit()
        return ok

    # ---- ingest -----------------------------------------------------------------------------------

    def offsets(self, topic: str) -> dict[int, int]:
        rows = self.conn.execute(
            self.q("SELECT partition, next_offset FROM {s}.kafka_offsets WHERE topic = %s"), (topic,)
        ).fetchall()
        self.conn.commit()
        return {int(p): int(o) for p, o in rows}

    def known_expected_prefixes(self, prefixes: Iterable[str]) -> set[str]:
        rows = self.conn.execute(
            self.q("SELECT prefix FROM {s}.expected_sensors WHERE prefix = ANY(%s)"), (list(prefixes),)
        ).fetchall()
        self.conn.commit()
        return {r[0] for r in rows}

    def write_batch(
        self,
        cur: psycopg.Cursor[Any],
        *,
        objects: Sequence[ObjectRow],
        day_counts: Mapping[date, int],
        exposures: Sequence[ExposureRow],
        expected: Sequence[ExpectedRow],
        offsets: Mapping[tuple[str, int], tuple[str, int]],  # (topic, partition) -> (source, next offset)
        caught_up: Mapping[str, datetime],
    ) -> list[str]:
        """Everything one Kafka batch produced, inside the caller's transaction. Returns the obs_ids of
        the exposures that were new."""
        if objects:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS dtm_batch_objects (key text, prefix text,"
                " first_time timestamptz, last_time timestamptz, notifications integer, size bigint,"
                " etag text) ON COMMIT DELETE ROWS"
            )
            with cur.copy(
                "COPY dtm_batch_objects (key, prefix, first_time, last_time, notifications, size, etag)"
                " FROM STDIN"
            ) as copy:
                for o in objects:
                    copy.write_row(
                        (o.key, o.prefix, o.first_time, o.last_time, o.notifications, o.size, o.etag)
                    )
            # Sorted, so concurrent writers (the evaluator's listing rows) take row locks in one order.
            cur.execute(
                self.q(
                    "INSERT INTO {s}.objects AS o (key, prefix, first_time, last_time, notifications, size,"
                    " etag, seq) SELECT key, prefix, first_time, last_time, notifications, size, etag,"
                    " nextval('{s}.objects_seq') FROM dtm_batch_objects ORDER BY key"
                    " ON CONFLICT (key) DO UPDATE SET first_time = LEAST(o.first_time, EXCLUDED.first_time),"
                    " last_time = GREATEST(o.last_time, EXCLUDED.last_time),"
                    " notifications = o.notifications + EXCLUDED.notifications,"
                    " size = COALESCE(o.size, EXCLUDED.size), etag = COALESCE(o.etag, EXCLUDED.etag)"
                )
            )
        if day_counts:
            days = sorted(day_counts)
            cur.executemany(
                self.q(
                    "INSERT INTO {s}.file_messages AS f (day, received) VALUES (%s, %s)"
                    " ON CONFLICT (day) DO UPDATE SET received = f.received + EXCLUDED.received"
                ),
                [(d, day_counts[d]) for d in days],
            )
            self._touch_days(cur, FILE_MESSAGES_GROUP, days)
        new: list[str] = []
        if exposures:
            for e in exposures:
                cur.execute(
                    self.q(
                        "INSERT INTO {s}.exposures (obs_id, prefix, day, end_of_readout_tai, end_of_readout,"
                        " end_readout) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (obs_id) DO NOTHING"
                        " RETURNING obs_id"
                    ),
                    (
                        e.obs_id,
                        e.prefix,
                        e.day,
                        e.end_of_readout_tai,
                        e.end_of_readout,
                        json.dumps(e.end_readout),
                    ),
                )
                if cur.fetchone():
                    new.append(e.obs_id)
            # A new day's exposure metrics are pushed (at zero) before its first evaluation, so
            # Prometheus' rate() sees the first observations as an increase.
            new_days = {e.day for e in exposures if e.obs_id in new}
            if new_days:
                self._touch_days(cur, EXPOSURES_GROUP, new_days)
        self.insert_expected(cur, expected)
        for (topic, partition), (source, next_offset) in sorted(offsets.items()):
            cur.execute(
                self.q(
                    "INSERT INTO {s}.kafka_offsets (topic, partition, next_offset, source)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (topic, partition)"
                    " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
                ),
                (topic, partition, next_offset, source),
            )
        for source, when in caught_up.items():
            cur.execute(
                self.q(
                    "INSERT INTO {s}.ingest_progress AS p (source, caught_up_at, batches) VALUES (%s, %s, 1)"
                    " ON CONFLICT (source) DO UPDATE SET caught_up_at = GREATEST(p.caught_up_at,"
                    " EXCLUDED.caught_up_at), batches = p.batches + 1, updated_at = now()"
                ),
                (source, when),
            )
        return new

    def insert_expected(self, cur: psycopg.Cursor[Any], rows: Sequence[ExpectedRow]) -> None:
        for x in rows:
            cur.execute(
                self.q(
                    "INSERT INTO {s}.expected_sensors (prefix, obs_id, key, keys, sensors, ignored, error)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (prefix) DO NOTHING"
                ),
                (
                    x.prefix,
                    x.obs_id,
                    x.key,
                    list(x.keys) if x.keys is not None else None,
                    x.sensors,
                    json.dumps(x.ignored) if x.ignored else None,
                    x.error,
                ),
            )

    def _touch_days(self, cur: psycopg.Cursor[Any], group: str, days: Iterable[date]) -> None:
        cur.executemany(
            self.q(
                "INSERT INTO {s}.metric_days AS m (grp, day) VALUES (%s, %s)"
                " ON CONFLICT (grp, day) DO UPDATE SET version = m.version + 1"
            ),
            [(group, d) for d in sorted(set(days))],
        )

    # ---- readiness and evaluation -----------------------------------------------------------------

    _READY_SQL = """
        WITH progress AS (
            SELECT LEAST(%(now)s::timestamptz, (SELECT caught_up_at FROM {s}.ingest_progress
                                               WHERE source = 'file_notifications')) AS settled_until
        ), settled AS (
            SELECT e.obs_id FROM {s}.exposures e, progress p
            WHERE e.evaluated_at IS NULL AND e.end_of_readout + %(settle)s <= p.settled_until
              AND (%(obs)s::text IS NULL OR e.obs_id = %(obs)s)
            ORDER BY e.end_of_readout LIMIT %(limit)s
        ), open AS (
            SELECT e.obs_id, e.prefix, e.end_of_readout FROM {s}.exposures e, progress p
            WHERE e.evaluated_at IS NULL
              AND (p.settled_until IS NULL OR e.end_of_readout + %(settle)s > p.settled_until)
              AND (%(obs)s::text IS NULL OR e.obs_id = %(obs)s)
        ), complete AS (
            SELECT o.obs_id FROM open o JOIN {s}.expected_sensors x ON x.prefix = o.prefix
            WHERE x.keys IS NOT NULL
              AND EXISTS (SELECT 1 FROM {s}.objects f WHERE f.key = x.key
                          AND f.first_time <= o.end_of_readout + %(wait)s)
              AND (SELECT count(*) FROM {s}.objects f WHERE f.key = ANY(x.keys)
                   AND f.first_time <= o.end_of_readout + %(wait)s) = cardinality(x.keys)
        )
        SELECT obs_id FROM settled UNION SELECT obs_id FROM complete
    """

    def ready_obs_ids(
        self, now: datetime, wait: timedelta, slack: timedelta, limit: int, obs_id: str | None = None
    ) -> list[str]:
        """Exposures that can be evaluated now (only `obs_id`, if given)."""
        params = {"now": now, "settle": wait + slack, "wait": wait, "limit": limit, "obs": obs_id}
        rows = self.conn.execute(self.q(self._READY_SQL), params).fetchall()
        self.conn.commit()
        return [r[0] for r in rows]

    def readiness(
        self, now: datetime, wait: timedelta, slack: timedelta, obs_id: str | None = None
    ) -> Readiness:
        """What the sensor's trigger asks at every poke: is there work (an exposure ready, or late arrivals
        of evaluated exposures to count), and when does the earliest pending window close."""
        ready = len(self.ready_obs_ids(now, wait, slack, 1, obs_id))
        row = self.conn.execute(
            self.q(
                "SELECT count(*), min(end_of_readout) + %(settle)s,"
                " (SELECT caught_up_at FROM {s}.ingest_progress WHERE source = 'file_notifications')"
                " FROM {s}.exposures WHERE evaluated_at IS NULL"
                " AND (%(obs)s::text IS NULL OR obs_id = %(obs)s)"
            ),
            {"settle": wait + slack, "obs": obs_id},
        ).fetchone()
        assert row is not None
        if not ready and obs_id is not None:  # evaluated already: nothing to wait for
            done = self.conn.execute(
                self.q("SELECT evaluated_at IS NOT NULL FROM {s}.exposures WHERE obs_id = %s"), (obs_id,)
            ).fetchone()
            ready = 1 if done and done[0] else 0
        if not ready and obs_id is None:
            late = self.conn.execute(
                self.q(
                    "SELECT EXISTS (SELECT 1 FROM {s}.objects o JOIN {s}.exposures e ON e.prefix = o.prefix"
                    " WHERE o.seq > COALESCE((SELECT seq FROM {s}.sweep WHERE name = 'late'), 0)"
                    " AND e.evaluated_at IS NOT NULL)"
                )
            ).fetchone()
            ready = 1 if late and late[0] else 0
        self.conn.commit()
        return Readiness(ready=ready, pending=int(row[0]), caught_up_at=row[2], next_settle=row[1])

    def pending(self, cur: psycopg.Cursor[Any], obs_ids: Sequence[str], *, lock: bool) -> list[Pending]:
        """The not yet evaluated exposures among `obs_ids`; with `lock`, their rows locked (SKIP LOCKED)."""
        cur.execute(
            self.q(
                "SELECT obs_id, prefix, day, end_of_readout FROM {s}.exposures"
                " WHERE obs_id = ANY(%s) AND evaluated_at IS NULL ORDER BY obs_id"
                + (" FOR UPDATE SKIP LOCKED" if lock else "")
            ),
            (list(obs_ids),),
        )
        return [Pending(r[0], r[1], r[2], r[3], expected_sensors_key(r[1], r[0])) for r in cur.fetchall()]

    def expected_for(self, cur: psycopg.Cursor[Any], prefixes: Sequence[str]) -> dict[str, ExpectedRow]:
        cur.execute(
            self.q(
                "SELECT prefix, obs_id, key, keys, sensors, error FROM {s}.expected_sensors"
                " WHERE prefix = ANY(%s)"
            ),
            (list(prefixes),),
        )
        return {r[0]: ExpectedRow(r[0], r[1], r[2], r[3], r[4], None, r[5]) for r in cur.fetchall()}

    def insert_listed(self, cur: psycopg.Cursor[Any], rows: Sequence[tuple[str, str, datetime]]) -> int:
        """Objects found by listing a prefix but never notified: their LastModified stands in for the
        first arrival. seq 0: the exposure being evaluated takes them into account directly."""
        inserted = 0
        for key, prefix, modified in sorted(rows):
            cur.execute(
                self.q(
                    "INSERT INTO {s}.objects (key, prefix, first_time, last_time, notifications, source, seq)"
                    " VALUES (%s, %s, %s, %s, 0, 'listing', 0) ON CONFLICT (key) DO NOTHING"
                ),
                (key, prefix, modified, modified),
            )
            inserted += cur.rowcount
        return inserted

    def keys_known(self, cur: psycopg.Cursor[Any], keys: Sequence[str]) -> set[str]:
        cur.execute(self.q("SELECT key FROM {s}.objects WHERE key = ANY(%s)"), (list(keys),))
        return {r[0] for r in cur.fetchall()}

    def first_arrivals(
        self, cur: psycopg.Cursor[Any], prefixes: Sequence[str]
    ) -> dict[str, dict[str, datetime]]:
        cur.execute(
            self.q("SELECT prefix, key, first_time FROM {s}.objects WHERE prefix = ANY(%s)"),
            (list(prefixes),),
        )
        out: dict[str, dict[str, datetime]] = {p: {} for p in prefixes}
        for prefix, key, first in cur.fetchall():
            out[prefix][key] = first
        return out

    def save_results(
        self, cur: psycopg.Cursor[Any], results: Sequence[ExposureResult], days: Iterable[date]
    ) -> None:
        cur.executemany(
            self.q(
                "UPDATE {s}.exposures SET evaluated_at = clock_timestamp(), expected = %s, found = %s,"
                " missing = %s, late = %s, late_after_window = %s, unexpected = %s, transfer_time_s = %s,"
                " newest_key = %s, missing_keys = %s WHERE obs_id = %s AND evaluated_at IS NULL"
            ),
            [
                (
                    r.expected,
                    r.found,
                    r.missing,
                    r.late,
                    r.late_after_window,
                    r.unexpected,
                    r.transfer_time_s,
                    r.newest_key,
                    list(r.missing_keys),
                    r.obs_id,
                )
                for r in results
            ],
        )
        self._touch_days(cur, EXPOSURES_GROUP, days)

    def sweep_late(
        self, cur: psycopg.Cursor[Any], wait: timedelta, late_threshold: timedelta
    ) -> tuple[int, set[date]]:
        """Count late arrivals of already evaluated exposures: objects first seen (seq) since the last sweep.
        Only ever raises `late` / `late_after_window` (counters never go down). Returns (updated, days)."""
        cur.execute(self.q("SELECT seq FROM {s}.sweep WHERE name = 'late'"))
        row = cur.fetchone()
        since = int(row[0]) if row else 0
        cur.execute(self.q("SELECT COALESCE(max(seq), 0) FROM {s}.objects"))
        until = int(cur.fetchone()[0])  # type: ignore[index]
        if until <= since:
            return 0, set()
        cur.execute(
            self.q(
                "WITH touched AS (SELECT DISTINCT prefix FROM {s}.objects"
                "                 WHERE seq > %(since)s AND seq <= %(until)s AND prefix IS NOT NULL),"
                " counts AS (SELECT e.obs_id,"
                "   count(*) FILTER (WHERE o.first_time - e.end_of_readout > %(late)s) AS late,"
                "   count(*) FILTER (WHERE o.first_time > e.end_of_readout + %(wait)s) AS after"
                "   FROM {s}.exposures e JOIN touched t ON t.prefix = e.prefix"
                "   JOIN {s}.objects o ON o.prefix = e.prefix"
                "   WHERE e.evaluated_at IS NOT NULL"
                "   AND o.key <> e.prefix || '/' || e.obs_id || '_expectedSensors.json'"
                "   GROUP BY e.obs_id)"
                " UPDATE {s}.exposures e SET late = GREATEST(e.late, c.late),"
                "   late_after_window = GREATEST(e.late_after_window, c.after)"
                " FROM counts c WHERE e.obs_id = c.obs_id"
                " AND (c.late > e.late OR c.after > e.late_after_window)"
                " RETURNING e.day"
            ),
            {"since": since, "until": until, "late": late_threshold, "wait": wait},
        )
        days = {r[0] for r in cur.fetchall()}
        cur.execute(
            self.q(
                "INSERT INTO {s}.sweep (name, seq) VALUES ('late', %s)"
                " ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq"
            ),
            (until,),
        )
        if days:
            self._touch_days(cur, EXPOSURES_GROUP, days)
        return len(days), days

    # ---- metrics ------------------------------------------------------------------------------------

    def dirty_days(self, cur: psycopg.Cursor[Any], group: str, limit: int = 1000) -> dict[date, int]:
        cur.execute(
            self.q(
                "SELECT day, version FROM {s}.metric_days WHERE grp = %s AND version > pushed_version"
                " ORDER BY day LIMIT %s"
            ),
            (group, limit),
        )
        return {r[0]: int(r[1]) for r in cur.fetchall()}

    def mark_pushed(self, group: str, versions: Mapping[date, int]) -> None:
        with self.transaction() as cur:
            cur.executemany(
                self.q(
                    "UPDATE {s}.metric_days SET pushed_version = GREATEST(pushed_version, %s),"
                    " pushed_at = now() WHERE grp = %s AND day = %s"
                ),
                [(v, group, d) for d, v in sorted(versions.items())],
            )

    def lock_unpushed_days(self, cur: psycopg.Cursor[Any], group: str) -> dict[date, int]:
        """Days of `group` never pushed and with no evaluated exposure, locked (SKIP LOCKED)."""
        cur.execute(
            self.q(
                "SELECT m.day, m.version FROM {s}.metric_days m WHERE m.grp = %s AND m.pushed_version = 0"
                " AND NOT EXISTS (SELECT 1 FROM {s}.exposures e"
                "                 WHERE e.day = m.day AND e.evaluated_at IS NOT NULL)"
                " ORDER BY m.day FOR UPDATE SKIP LOCKED"
            ),
            (group,),
        )
        return {r[0]: int(r[1]) for r in cur.fetchall()}

    def set_pushed_version(self, cur: psycopg.Cursor[Any], group: str, day: date, version: int) -> None:
        cur.execute(
            self.q(
                "UPDATE {s}.metric_days SET pushed_version = GREATEST(pushed_version, %s), pushed_at = now()"
                " WHERE grp = %s AND day = %s"
            ),
            (version, group, day),
        )

    def mark_exposures_pushed(self, days: Sequence[date], evaluated_before: datetime) -> None:
        with self.transaction() as cur:
            cur.execute(
                self.q(
                    "UPDATE {s}.exposures SET pushed_at = clock_timestamp() WHERE day = ANY(%s)"
                    " AND evaluated_at IS NOT NULL AND evaluated_at <= %s AND pushed_at IS NULL"
                ),
                (list(days), evaluated_before),
            )

    def file_message_totals(self, cur: psycopg.Cursor[Any], days: Sequence[date]) -> dict[date, int]:
        cur.execute(self.q("SELECT day, received FROM {s}.file_messages WHERE day = ANY(%s)"), (list(days),))
        return {r[0]: int(r[1]) for r in cur.fetchall()}

    def exposure_totals(
        self, cur: psycopg.Cursor[Any], days: Sequence[date]
    ) -> dict[date, tuple[list[float], int, int, int]]:
        """Per day: (observed transfer times, late files, late-or-missing, evaluated exposures)."""
        cur.execute(
            self.q(
                "SELECT day, COALESCE(array_agg(transfer_time_s) FILTER (WHERE transfer_time_s > 0), '{{}}'),"
                " COALESCE(sum(late), 0), COALESCE(sum(missing), 0), count(*)"
                " FROM {s}.exposures WHERE day = ANY(%s) AND evaluated_at IS NOT NULL GROUP BY day"
            ),
            (list(days),),
        )
        out: dict[date, tuple[list[float], int, int, int]] = {d: ([], 0, 0, 0) for d in days}
        for day, times, late, missing, n in cur.fetchall():
            out[day] = (list(times), int(late), int(missing), int(n))
        return out

    # ---- reports ------------------------------------------------------------------------------------

    def exposure_records(self, obs_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The per-exposure records (what users query), as dicts."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            where = "" if obs_ids is None else " WHERE obs_id = ANY(%s)"
            cur.execute(
                self.q(
                    "SELECT obs_id, day, end_of_readout, evaluated_at, expected, found, missing, late,"
                    " late_after_window, unexpected, transfer_time_s, newest_key, missing_keys, pushed_at"
                    " FROM {s}.exposures" + where + " ORDER BY end_of_readout"
                ),
                () if obs_ids is None else (list(obs_ids),),
            )
            rows = cur.fetchall()
        self.conn.commit()
        return rows
