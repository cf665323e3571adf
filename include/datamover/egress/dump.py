"""One table -> one gzip CSV object: resolve the columns, COPY ... TO STDOUT, stream it up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from datamover.egress.config import TableSpec
from datamover.egress.pipeline import CompressingUpload, S3ObjectWriter, StreamTuning
from datamover.egress.sql import COLUMNS_QUERY, Column, Interval, build_copy, build_select, select_columns
from datamover.errors import ConfigError, UnknownSourceError

Log = Callable[[str], None]


@dataclass
class TableDump:
    """What one table's dump produced; JSON-able via to_dict() (XCom, manifest)."""

    table: str
    relation: str
    mode: str
    bucket: str
    key: str
    rows: int
    raw_bytes: int
    compressed_bytes: int
    sha256: str
    parts: int
    seconds: float
    header: bool
    snapshot_time: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    timestamp_column: str | None = None
    interval: dict[str, str] | None = None

    @property
    def raw_mb_per_s(self) -> float:
        return self.raw_bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        ratio = self.raw_bytes / self.compressed_bytes if self.compressed_bytes else 0
        return (
            f"Table '{self.table}': {self.rows} rows, {self.raw_bytes} raw bytes, {self.compressed_bytes} "
            f"compressed bytes ({ratio:.1f}x), {self.raw_mb_per_s:.1f} MB/s raw CSV, {self.seconds:.2f} s, "
            f"{max(self.parts, 1)} part(s), sha256 {self.sha256} -> s3://{self.bucket}/{self.key}"
        )


def check_snapshot_allowed(
    spec: TableSpec,
    interval_end: datetime,
    now: datetime,
    run_type: str | None,
    allow: bool,
    max_lag_hours: int,
) -> None:
    """A snapshot holds the table as it is now; refuse to file it under a past day unless allowed."""
    if spec.mode != "snapshot" or allow:
        return
    lag = now - interval_end
    fix = (
        "Fix: run it for a current date, switch the table to mode incremental, or set "
        "dump.allow_snapshot_backfill: true (DAG param allow_snapshot_backfill) to accept today's data "
        "under a past date."
    )
    if run_type == "backfill":
        raise ConfigError(
            f"Table '{spec.name}': mode snapshot in a backfill run would write today's data "
            f"under the past day ending {interval_end.isoformat()}. {fix}"
        )
    if lag > timedelta(hours=max_lag_hours):
        raise ConfigError(
            f"Table '{spec.name}': mode snapshot for a day that ended {interval_end.isoformat()}, "
            f"{lag.total_seconds() / 3600:.0f} h ago (more than snapshot_max_lag_hours="
            f"{max_lag_hours}): it would write today's data under a past date. {fix}"
        )


def prepare_session(conn: psycopg.Connection, timezone: str) -> None:
    """Read-only, one snapshot per table, output independent of the server's defaults."""
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.autocommit = False
    with conn.transaction():
        conn.execute("SELECT set_config('TimeZone', %s, false)", (timezone,))
        # Keep heap order stable between reruns: a synchronized scan may start mid-table.
        conn.execute("SELECT set_config('synchronize_seqscans', 'off', false)")
        conn.execute("SELECT set_config('DateStyle', 'ISO, MDY', false)")


def dump_table(
    conn: psycopg.Connection,
    s3_client: Any,
    spec: TableSpec,
    *,
    bucket: str,
    key: str,
    interval: Interval | None,
    tuning: StreamTuning,
    source: str,
    log: Log | None = None,
) -> TableDump:
    """Stream one table to s3://bucket/key as gzip CSV; the object appears only when complete.

    `conn` must come from `prepare_session()`. Raises UnknownSourceError for an unknown table or column,
    psycopg errors for database failures, botocore errors for S3 failures (upload aborted)."""
    log = log or (lambda _msg: None)
    with conn.transaction():
        table_columns = conn.execute(COLUMNS_QUERY, (spec.schema, spec.name)).fetchall()
        columns: list[Column] = select_columns(spec, table_columns, source)
        snapshot_time = conn.execute("SELECT now()").fetchone()[0]  # the transaction's snapshot time
        statement = build_copy(build_select(spec, columns, interval), spec.header)
        writer = S3ObjectWriter(
            s3_client,
            bucket,
            key,
            part_size=tuning.part_size,
            workers=tuning.upload_workers,
            put_args={"ServerSideEncryption": "AES256", "ContentType": "application/gzip"},
        )
        upload = CompressingUpload(writer, tuning)
        try:
            with conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    upload.consume(copy)
                rows = cur.rowcount
            stats = upload.finish()
        except BaseException as exc:
            if warning := upload.abort():
                log(warning)
            if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn):
                raise UnknownSourceError(
                    f"Table '{spec.name}': {str(exc).strip()} ({spec.relation} in {source}). "
                    "Fix the egress_dump config."
                ) from exc
            raise
    return TableDump(
        table=spec.name,
        relation=spec.relation,
        mode=spec.mode,
        bucket=bucket,
        key=key,
        rows=rows,
        raw_bytes=stats.raw_bytes,
        compressed_bytes=stats.compressed_bytes,
        sha256=stats.sha256,
        parts=stats.parts,
        seconds=round(stats.seconds, 3),
        header=spec.header,
        snapshot_time=snapshot_time.isoformat(),
        columns=[c.to_dict() for c in columns],
        timestamp_column=spec.timestamp_column,
        interval={"start": interval.start.isoformat(), "end": interval.end.isoformat()}
        if interval is not None and spec.mode == "incremental"
        else None,
    )


def parse_interval(
    start: str | datetime | None, end: str | datetime | None, empty_ok: bool = False
) -> Interval | None:
    """Accept the ISO strings that templates render (`{{ data_interval_start }}`) or datetimes.
    `empty_ok`: start == end gives a zero-length interval ending at `end` instead of an error."""
    if start is None or end is None or start == "" or end == "":
        return None

    def as_dt(value: str | datetime) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).replace(" ", "T", 1))
        except ValueError:
            raise ConfigError(
                f"Data interval bound {value!r} is not an ISO timestamp (e.g. 2026-01-10T00:00:00+00:00)."
            ) from None

    begin, finish = as_dt(start), as_dt(end)
    if empty_ok and begin == finish:
        return Interval(begin - timedelta(microseconds=1), finish)  # only its end is used
    return Interval(begin, finish)
