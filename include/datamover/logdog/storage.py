"""Intermediate storage and coordinator state in PostgreSQL (psycopg 3; no Airflow).

Two tables in one schema (config `storage.schema`):

* `log_streams`: one row per (project, path): the descriptor the collector registered, the prefix
  secret's SHA-256, the coordinator state (see `coordinator`), the terminal index, timestamps, counters
  the collector keeps (`entry_count`, `max_stream_index`), the sensor's watch and the archivist's lease,
  the staged archive (JSON, while archiving) and the archival result (URLs, sizes, entry count, terminal
  index, complete flag, error);
* `log_entries`: one row per (stream, stream_index): prefix index, sequence, time offset and the
  LogEntry's canonical encoding. Stored uncompressed (STORAGE EXTERNAL: rows live minutes to hours) and
  kept in the row up to ~8 KB (toast_tuple_target = 8160), so typical entries need no TOAST lookups:
  in a 100 MB test of 2 KB entries that halved the COPY time and sped up reading and expunging.

Every statement names the schema through psycopg.sql, so tests and deployments can use their own.
"""

from __future__ import annotations

import contextlib
import json
import queue
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from datamover.logdog.archive import StoredEntry
from datamover.logdog.butler import StreamPart
from datamover.logdog.coordinator import State, StreamState

SCHEMA_LOCK = 0x106D06  # advisory lock id: concurrent first runs create the tables once

DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.log_streams (
    id bigserial PRIMARY KEY,
    project text NOT NULL,
    path text NOT NULL,
    prefix text NOT NULL,
    name text NOT NULL,
    stream_type smallint NOT NULL,
    descriptor bytea NOT NULL,
    secret_sha256 bytea NOT NULL,
    state text NOT NULL DEFAULT 'registered'
        CHECK (state IN ('registered', 'terminated', 'archiving', 'archived')),
    terminal_index bigint,
    registered_at timestamptz NOT NULL DEFAULT now(),
    terminated_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    entry_count bigint NOT NULL DEFAULT 0,
    max_stream_index bigint NOT NULL DEFAULT -1,
    watch_owner text,
    watch_expires timestamptz,
    lease_owner text,
    lease_expires timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    staged jsonb,
    archived_at timestamptz,
    archived_entry_count bigint,
    archived_terminal_index bigint,
    complete boolean,
    entries_url text,
    entries_size bigint,
    index_url text,
    index_size bigint,
    data_url text,
    data_size bigint,
    error text,
    UNIQUE (project, path)
);
CREATE INDEX IF NOT EXISTS log_streams_open ON {schema}.log_streams (state) WHERE state <> 'archived';
CREATE TABLE IF NOT EXISTS {schema}.log_entries (
    stream_id bigint NOT NULL,
    stream_index bigint NOT NULL,
    prefix_index bigint NOT NULL,
    sequence bigint NOT NULL,
    to_seconds bigint,
    to_nanos integer,
    data bytea NOT NULL,
    PRIMARY KEY (stream_id, stream_index)
) WITH (toast_tuple_target = 8160);
ALTER TABLE {schema}.log_entries ALTER COLUMN data SET STORAGE EXTERNAL;
"""

ENTRY_COLUMNS = ("stream_id", "stream_index", "prefix_index", "sequence", "to_seconds", "to_nanos", "data")

# PostgreSQL's binary COPY format, written directly (one struct.pack per row instead of psycopg's
# per-field adaptation): a header, then per row the field count and each field as length + bytes
# (int8/int4 big-endian, -1 length = NULL), then a -1 trailer. The decoder makes each row from its
# stream index on (butler.entry_row); the field count and the stream id go in front here.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
_ROW_HEAD = struct.Struct(">hiq")  # 7 fields, then the stream id (int8)


def copy_rows(stream_id: int, rows: Sequence[bytes]) -> bytes:
    """The binary COPY rows of one stream's entries (no header or trailer)."""
    head = _ROW_HEAD.pack(len(ENTRY_COLUMNS), 8, stream_id)
    return head + head.join(rows) if rows else b""


def write_binary_copy(copy: Any, rows: list[bytes]) -> None:
    copy.write(COPY_HEADER)
    for chunk in rows:
        copy.write(chunk)
    copy.write(COPY_TRAILER)


# The state the coordinator rules need, with the database's clock. Completeness counts only entries up
# to the terminal index; the collector's counters answer that without a scan unless entries beyond the
# terminal index were stored.
STATE_SQL = """
SELECT s.id, s.state, s.registered_at, s.terminated_at, s.terminal_index, now() AS now,
    CASE
        WHEN s.terminal_index IS NULL OR s.max_stream_index <= s.terminal_index THEN s.entry_count
        ELSE (SELECT count(*) FROM {schema}.log_entries e
              WHERE e.stream_id = s.id AND e.stream_index <= s.terminal_index)
    END AS entries_upto_terminal
FROM {schema}.log_streams s WHERE s.id = %s
"""


def q(template: str, schema: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(template).format(schema=sql.Identifier(schema), **parts)


def ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create the schema and tables if missing (idempotent, safe under concurrency). Once they exist this
    runs no DDL at all (an ALTER TABLE would wait for, and block, every running collector and archivist)."""
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
        (f'"{schema}".log_streams', f'"{schema}".log_entries'),
    ).fetchone()
    conn.commit()
    if row and row[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(q(DDL, schema))


def stream_state(row: dict[str, Any] | tuple[Any, ...] | None) -> StreamState | None:
    if row is None:
        return None
    if not isinstance(row, dict):
        keys = (
            "id",
            "state",
            "registered_at",
            "terminated_at",
            "terminal_index",
            "now",
            "entries_upto_terminal",
        )
        row = dict(zip(keys, row, strict=True))
    return StreamState(
        stream_id=row["id"],
        state=State(row["state"]),
        registered_at=row["registered_at"],
        terminated_at=row["terminated_at"],
        terminal_index=row["terminal_index"],
        entries_upto_terminal=int(row["entries_upto_terminal"]),
        now=row["now"],
    )


def load_state(conn: psycopg.Connection, schema: str, stream_id: int) -> StreamState | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q(STATE_SQL, schema), (stream_id,)).fetchone()
    conn.commit()
    return stream_state(row)


# ----------------------------------------------------------------------------------------------
# Collector side


@dataclass
class WriteResult:
    entries_written: int = 0
    duplicates: int = 0  # entries already stored (redelivery)
    registered: int = 0  # streams seen for the first time
    terminated: int = 0  # streams whose terminal index arrived now
    skipped_archived: int = 0  # bundle entries of streams archived already
    rejected: list[str] = field(default_factory=list)  # per bundle entry: why it was refused


@dataclass
class _Known:
    id: int
    secret_sha256: bytes
    state: str
    terminal_index: int | None


class Collector:
    """Writes validated bundle entries to intermediate storage and registers/terminates their streams.

    `write(parts)` does it in one transaction (the caller commits Kafka offsets after it returns).
    Entries go in with COPY; when a batch holds an entry stored before (a redelivered message), the
    batch is re-run through a temporary table with ON CONFLICT DO NOTHING.
    """

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema
        self._known: dict[tuple[str, str], _Known] = {}

    def _register(self, parts: Sequence[StreamPart], result: WriteResult) -> None:
        """Register the streams of `parts` not known yet (one INSERT for all) and learn their state."""
        new: dict[tuple[str, str], StreamPart] = {}
        for part in parts:
            key = (part.project, part.path)
            known = self._known.get(key)
            if (known is None or known.state == State.ARCHIVED) and key not in new:
                new[key] = part
        if not new:
            return
        ps = list(new.values())
        cols = ("project", "path", "prefix", "name", "stream_type", "descriptor", "secret_sha256")
        rows = self.conn.execute(
            q(
                """
                INSERT INTO {schema}.log_streams
                    (project, path, prefix, name, stream_type, descriptor, secret_sha256)
                SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::int2[], %s::bytea[],
                                     %s::bytea[])
                ON CONFLICT (project, path) DO NOTHING
                RETURNING project, path, id, secret_sha256, state, terminal_index
                """,
                self.schema,
            ),
            [[getattr(p, c) for p in ps] for c in cols],
        ).fetchall()
        result.registered += len(rows)
        if len(rows) < len(ps):
            rows += self.conn.execute(
                q(
                    """
                    SELECT s.project, s.path, s.id, s.secret_sha256, s.state, s.terminal_index
                    FROM {schema}.log_streams s JOIN unnest(%s::text[], %s::text[]) AS k(project, path)
                    ON s.project = k.project AND s.path = k.path
                    """,
                    self.schema,
                ),
                [[p.project for p in ps], [p.path for p in ps]],
            ).fetchall()
        for project, path, sid, secret, state, terminal_index in rows:
            self._known[(project, path)] = _Known(sid, bytes(secret), state, terminal_index)

    def write(self, parts: Sequence[StreamPart]) -> WriteResult:
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError(
                "Collector.write needs a connection with no transaction open (it commits its own)"
            )
        result = WriteResult()
        rows: list[bytes] = []
        per_stream: dict[int, list[int]] = {}  # id -> [count, max index]
        terminations: dict[int, tuple[int, StreamPart]] = {}
        with self.conn.transaction():
            self._register(parts, result)
            for part in parts:
                known = self._known[(part.project, part.path)]
                if known.secret_sha256 != part.secret_sha256:
                    result.rejected.append(
                        f"{part.project}/{part.path}: log entry has an incorrect prefix secret"
                    )
                    continue
                if known.state == State.ARCHIVED:
                    result.skipped_archived += 1
                    continue
                if part.rows:
                    rows.append(copy_rows(known.id, part.rows))
                    stats = per_stream.setdefault(known.id, [0, -1])
                    stats[0] += len(part.rows)
                    stats[1] = max(stats[1], part.last_index)
                if part.terminal_index is not None:
                    terminations[known.id] = (part.terminal_index, part)
            if rows:
                self._insert_entries(rows, per_stream, result)
            if terminations:
                self._terminate(terminations, result)
        return result

    def _insert_entries(
        self, rows: list[bytes], per_stream: dict[int, list[int]], result: WriteResult
    ) -> None:
        """`rows`: binary COPY rows (see `copy_rows`)."""
        columns = sql.SQL(", ").join(map(sql.Identifier, ENTRY_COLUMNS))
        count = sum(n for n, _ in per_stream.values())
        try:
            # A savepoint: a duplicate key undoes only this fast path.
            copy_sql = q(
                "COPY {schema}.log_entries ({columns}) FROM STDIN (FORMAT BINARY)",
                self.schema,
                columns=columns,
            )
            with self.conn.transaction(), self.conn.cursor().copy(copy_sql) as copy:
                write_binary_copy(copy, rows)
            counts = [(sid, n, m) for sid, (n, m) in per_stream.items()]
            result.entries_written += count
        except psycopg.errors.UniqueViolation:
            self.conn.execute(
                q(
                    "CREATE TEMP TABLE IF NOT EXISTS logdog_incoming (LIKE {schema}.log_entries) "
                    "ON COMMIT DELETE ROWS",
                    self.schema,
                )
            )
            with self.conn.cursor().copy(
                sql.SQL("COPY logdog_incoming ({columns}) FROM STDIN (FORMAT BINARY)").format(columns=columns)
            ) as copy:
                write_binary_copy(copy, rows)
            counts = self.conn.execute(
                q(
                    """
                    WITH ins AS (
                        INSERT INTO {schema}.log_entries SELECT DISTINCT ON (stream_id, stream_index) *
                        FROM logdog_incoming ORDER BY stream_id, stream_index
                        ON CONFLICT DO NOTHING RETURNING stream_id, stream_index
                    )
                    SELECT stream_id, count(*), max(stream_index) FROM ins GROUP BY stream_id
                    """,
                    self.schema,
                )
            ).fetchall()
            self.conn.execute("TRUNCATE logdog_incoming")
            written = sum(n for _, n, _ in counts)
            result.entries_written += written
            result.duplicates += count - written
        if counts:
            self.conn.execute(
                q(
                    """
                    UPDATE {schema}.log_streams s SET entry_count = s.entry_count + u.n,
                        max_stream_index = greatest(s.max_stream_index, u.m), updated_at = now()
                    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS u(id, n, m)
                    WHERE s.id = u.id
                    """,
                    self.schema,
                ),
                [[c[0] for c in counts], [c[1] for c in counts], [c[2] for c in counts]],
            )

    def _terminate(self, terminations: dict[int, tuple[int, StreamPart]], result: WriteResult) -> None:
        """Record the terminal indices that arrived (one statement for the batch); a stream terminated
        before keeps its index, and a different one is reported."""
        ids = list(terminations)
        done = self.conn.execute(
            q(
                """
                UPDATE {schema}.log_streams s
                SET terminal_index = t.terminal_index, terminated_at = now(), updated_at = now(),
                    state = CASE WHEN s.state = 'registered' THEN 'terminated' ELSE s.state END
                FROM unnest(%s::bigint[], %s::bigint[]) AS t(id, terminal_index)
                WHERE s.id = t.id AND s.terminal_index IS NULL
                RETURNING s.id
                """,
                self.schema,
            ),
            [ids, [terminations[i][0] for i in ids]],
        ).fetchall()
        terminated = {row[0] for row in done}
        result.terminated += len(terminated)
        for stream_id in terminated:
            part = terminations[stream_id][1]
            self._known.pop((part.project, part.path), None)
        others = [i for i in ids if i not in terminated]
        if not others:
            return
        recorded = self.conn.execute(
            q("SELECT id, terminal_index FROM {schema}.log_streams WHERE id = ANY(%s)", self.schema), [others]
        ).fetchall()
        for stream_id, current in recorded:
            terminal_index, part = terminations[stream_id]
            if current != terminal_index:
                result.rejected.append(
                    f"{part.project}/{part.path}: terminal index {terminal_index} conflicts with the "
                    f"recorded {current} (kept)"
                )


# ----------------------------------------------------------------------------------------------
# Coordinator side


def candidates(
    conn: psycopg.Connection,
    schema: str,
    owner: str,
    horizon: timedelta,
    watch_for: timedelta,
    delay_max: timedelta,
    settle_delay: timedelta,
    limit: int,
) -> list[int]:
    """Streams to watch now: not archived, due within `horizon` (terminated + settle, or registered +
    delay_max), not watched by another live run, or left `archiving` by a run whose lease expired.
    They are marked watched by `owner` for `watch_for`, so overlapping runs do not watch them twice."""
    rows = conn.execute(
        q(
            """
            WITH due AS (
                SELECT id FROM {schema}.log_streams
                WHERE state <> 'archived'
                  AND (watch_expires IS NULL OR watch_expires < now() OR watch_owner = %(owner)s)
                  AND (state <> 'archiving' OR lease_expires IS NULL OR lease_expires < now())
                  AND least(coalesce(terminated_at + %(settle)s, 'infinity'), registered_at + %(max)s)
                      <= now() + %(horizon)s
                ORDER BY registered_at, id
                LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {schema}.log_streams s SET watch_owner = %(owner)s, watch_expires = now() + %(watch)s
            FROM due WHERE s.id = due.id
            RETURNING s.id
            """,
            schema,
        ),
        {
            "owner": owner,
            "settle": settle_delay,
            "max": delay_max,
            "horizon": horizon,
            "watch": watch_for,
            "limit": limit,
        },
    ).fetchall()
    conn.commit()
    return sorted(r[0] for r in rows)


@dataclass
class StreamRecord:
    id: int
    project: str
    path: str
    prefix: str
    name: str
    stream_type: int
    descriptor: bytes
    state: str
    terminal_index: int | None
    staged: dict[str, Any] | None
    attempts: int
    lease_owner: str | None


def get_record(conn: psycopg.Connection, schema: str, stream_id: int) -> StreamRecord | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            q(
                "SELECT id, project, path, prefix, name, stream_type, descriptor, state, terminal_index, "
                "staged, attempts, lease_owner FROM {schema}.log_streams WHERE id = %s",
                schema,
            ),
            (stream_id,),
        ).fetchone()
    conn.commit()
    if row is None:
        return None
    row["descriptor"] = bytes(row["descriptor"])
    return StreamRecord(**row)


def claim_lease(
    conn: psycopg.Connection, schema: str, stream_id: int, owner: str, lease: timedelta
) -> StreamRecord | None:
    """Take the archival lease of a stream (state -> archiving), or None when another worker holds a
    live lease or the stream is archived. The same owner (a retry of the same task) takes it back."""
    row = conn.execute(
        q(
            """
            UPDATE {schema}.log_streams
            SET state = 'archiving', lease_owner = %(owner)s, lease_expires = now() + %(lease)s,
                attempts = attempts + 1, updated_at = now()
            WHERE id = %(id)s AND state <> 'archived'
              AND (lease_owner IS NULL OR lease_owner = %(owner)s OR lease_expires < now())
            RETURNING id
            """,
            schema,
        ),
        {"id": stream_id, "owner": owner, "lease": lease},
    ).fetchone()
    conn.commit()
    return get_record(conn, schema, stream_id) if row is not None else None


def renew_lease(conn: psycopg.Connection, schema: str, stream_id: int, owner: str, lease: timedelta) -> bool:
    """Extend our lease; False when it was lost (expired and taken by another worker)."""
    row = conn.execute(
        q(
            "UPDATE {schema}.log_streams SET lease_expires = now() + %s "
            "WHERE id = %s AND lease_owner = %s AND state = 'archiving' RETURNING id",
            schema,
        ),
        (lease, stream_id, owner),
    ).fetchone()
    conn.commit()
    return row is not None


def record_staged(
    conn: psycopg.Connection, schema: str, stream_id: int, owner: str, staged: dict[str, Any]
) -> bool:
    row = conn.execute(
        q(
            "UPDATE {schema}.log_streams SET staged = %s, updated_at = now() "
            "WHERE id = %s AND lease_owner = %s AND state = 'archiving' RETURNING id",
            schema,
        ),
        (json.dumps(staged), stream_id, owner),
    ).fetchone()
    conn.commit()
    return row is not None


def clear_staged(conn: psycopg.Connection, schema: str, stream_id: int) -> None:
    conn.execute(q("UPDATE {schema}.log_streams SET staged = NULL WHERE id = %s", schema), (stream_id,))
    conn.commit()


def mark_archived(
    conn: psycopg.Connection, schema: str, stream_id: int, owner: str, result: dict[str, Any]
) -> bool:
    """archiving -> archived with the archive's URLs, sizes and counts (ArchiveStreamRequest)."""
    row = conn.execute(
        q(
            """
            UPDATE {schema}.log_streams
            SET state = 'archived', archived_at = now(), updated_at = now(),
                archived_entry_count = %(log_entry_count)s, archived_terminal_index = %(terminal_index)s,
                complete = %(complete)s, entries_url = %(entries_url)s, entries_size = %(entries_size)s,
                index_url = %(index_url)s, index_size = %(index_size)s, data_url = %(data_url)s,
                data_size = %(data_size)s, error = NULL, staged = NULL,
                lease_owner = NULL, lease_expires = NULL, watch_owner = NULL, watch_expires = NULL
            WHERE id = %(id)s AND lease_owner = %(owner)s AND state = 'archiving'
            RETURNING id
            """,
            schema,
        ),
        {**result, "id": stream_id, "owner": owner},
    ).fetchone()
    conn.commit()
    return row is not None


def release_lease(
    conn: psycopg.Connection, schema: str, stream_id: int, owner: str, error: str | None
) -> None:
    """Give the lease back after a failure (the error is recorded; the stream stays `archiving` with an
    expired lease, so the next run takes it up and finishes or redoes the work)."""
    conn.execute(
        q(
            "UPDATE {schema}.log_streams SET lease_expires = now(), error = %s, updated_at = now() "
            "WHERE id = %s AND lease_owner = %s AND state = 'archiving'",
            schema,
        ),
        (error, stream_id, owner),
    )
    conn.commit()


def expunge(conn: psycopg.Connection, schema: str, stream_id: int) -> int:
    """Delete an archived stream's rows from intermediate storage; returns how many."""
    cur = conn.execute(
        q(
            "DELETE FROM {schema}.log_entries e USING {schema}.log_streams s "
            "WHERE e.stream_id = %s AND s.id = e.stream_id AND s.state = 'archived'",
            schema,
        ),
        (stream_id,),
    )
    conn.commit()
    return cur.rowcount


def leftover_archived(conn: psycopg.Connection, schema: str, limit: int = 1000) -> list[int]:
    """Archived streams that still have rows (an expunge interrupted by a crash, or late entries)."""
    rows = conn.execute(
        q(
            "SELECT DISTINCT e.stream_id FROM {schema}.log_entries e JOIN {schema}.log_streams s "
            "ON s.id = e.stream_id WHERE s.state = 'archived' LIMIT %s",
            schema,
        ),
        (limit,),
    ).fetchall()
    conn.commit()
    return [r[0] for r in rows]


class _StopReading(Exception):
    """The reader of `iter_entry_batches` stopped early."""


def iter_entry_batches(
    conn: psycopg.Connection,
    schema: str,
    stream_id: int,
    terminal_index: int | None,
    batch_bytes: int = 8 * 1024 * 1024,
    prefetch: int = 2,
) -> Iterator[list[StoredEntry]]:
    """A stream's entries in stream-index order up to the terminal index, in batches of about
    `batch_bytes` (at most 10,000 entries), read with a binary `COPY ... TO STDOUT` on `conn` (its own
    transaction): psycopg's C row parser makes each row a `StoredEntry`-shaped tuple, and COPY streams
    the rows without the cursor's round trip per batch (in a 64 MB test: 0.11 s against 0.26 s for a
    server-side cursor). A thread reads the next batches while the caller works on this one, so at
    most about (prefetch + 2) x batch_bytes are in memory."""
    bound = terminal_index if terminal_index is not None else 2**63 - 1
    statement = q(
        "COPY (SELECT stream_index, prefix_index, sequence, to_seconds, to_nanos, data "
        "FROM {schema}.log_entries WHERE stream_id = {stream_id} AND stream_index <= {bound} "
        "ORDER BY stream_index) TO STDOUT (FORMAT BINARY)",
        schema,
        stream_id=sql.Literal(stream_id),
        bound=sql.Literal(bound),
    )
    batches: queue.Queue[list[Any] | BaseException | None] = queue.Queue(prefetch)
    stop = threading.Event()

    def fetch() -> None:
        try:
            with (
                contextlib.suppress(_StopReading),
                conn.transaction(),
                conn.cursor().copy(statement) as copy,
            ):
                copy.set_types(["int8", "int8", "int8", "int8", "int4", "bytea"])
                batch: list[Any] = []
                size = 0
                for row in copy.rows():
                    batch.append(row)
                    size += len(row[5])
                    if size >= batch_bytes or len(batch) >= 10_000:
                        batches.put(batch)
                        if stop.is_set():
                            raise _StopReading  # (leaving COPY with an error makes psycopg cancel it)
                        batch, size = [], 0
                if batch:
                    batches.put(batch)
            batches.put(None)
        except BaseException as exc:
            batches.put(exc)

    fetcher = threading.Thread(target=fetch, name=f"logdog-fetch-{stream_id}", daemon=True)
    fetcher.start()
    try:
        while (item := batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while fetcher.is_alive():  # let a fetcher blocked on a full queue finish
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.1)
        fetcher.join()


def now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    conn.commit()
    assert row is not None
    return row[0]
