"""Thin Airflow adapters for egress: dump one table to S3, check the dump bucket, write the manifest.

The work is in datamover.egress (pure logic); these classes only read connections and context, log,
and let errors no retry can fix fail the task at once (`fail_fast`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from datamover.config import validate
from datamover.egress.bucket import BucketRules, preflight
from datamover.egress.config import TableSpec
from datamover.egress.dump import check_snapshot_allowed, dump_table, parse_interval, prepare_session
from datamover.egress.manifest import build_manifest, put_manifest, verify_objects
from datamover.egress.pipeline import StreamTuning
from datamover.errors import ConfigError
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.lineage import s3_object
from datamover.operators.base import fail_fast, settle_heap
from datamover.operators.lineage import LineageMixin, postgres_dataset
from datamover.units import MIB


class PostgresToS3CsvOperator(LineageMixin, BaseOperator):
    """Stream `COPY (SELECT ...) TO STDOUT (FORMAT csv, HEADER)` of one table, gzip-compressed on the fly,
    into s3://bucket/key with a parallel multipart upload (SSE AES256). Memory stays bounded; a failure
    aborts the upload so no partial object appears. Returns the dump's stats (rows, bytes, sha256, ...).
    Lineage: the table -> the object.

    `table` is a table entry of egress_dump.yaml (name, schema, mode, timestamp_column, columns, ...).
    Mode "incremental" selects `interval_start <= timestamp_column < interval_end` (default: the run's
    data interval); mode "snapshot" takes the whole table and refuses past days unless
    `allow_snapshot_backfill`.
    """

    template_fields: Sequence[str] = (
        "table",
        "bucket",
        "key",
        "interval_start",
        "interval_end",
        "postgres_conn_id",
        "s3_conn_id",
    )
    ui_color = "#e3ecfa"

    def __init__(
        self,
        *,
        table: Mapping[str, Any],
        bucket: str,
        key: str,
        postgres_conn_id: str = "egress_postgres",
        s3_conn_id: str = "aws_default",
        interval_start: Any = "{{ data_interval_start }}",
        interval_end: Any = "{{ data_interval_end }}",
        compression_level: int = 1,
        part_size_mib: int = 8,
        upload_workers: int = 4,
        session_timezone: str = "UTC",
        allow_snapshot_backfill: bool = False,
        snapshot_max_lag_hours: int = 24,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.bucket = bucket
        self.key = key
        self.postgres_conn_id = postgres_conn_id
        self.s3_conn_id = s3_conn_id
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.compression_level = compression_level
        self.part_size_mib = part_size_mib
        self.upload_workers = upload_workers
        self.session_timezone = session_timezone
        self.allow_snapshot_backfill = allow_snapshot_backfill
        self.snapshot_max_lag_hours = snapshot_max_lag_hours

    def execute(self, context: Any) -> dict[str, Any]:
        settle_heap()
        with fail_fast():
            return self._dump(context)

    def _dump(self, context: Any) -> dict[str, Any]:
        spec = validate(TableSpec, dict(self.table), f"{self.task_id}: table")
        # A snapshot needs no interval (and under a trigger timetable start == end): only its end.
        interval = parse_interval(self.interval_start, self.interval_end, empty_ok=spec.mode == "snapshot")
        if interval is not None:
            dag_run = context.get("dag_run")
            run_type = getattr(getattr(dag_run, "run_type", None), "value", None) or str(
                getattr(dag_run, "run_type", "") or ""
            )
            check_snapshot_allowed(
                spec,
                interval.end,
                datetime.now(UTC),
                run_type,
                self.allow_snapshot_backfill,
                self.snapshot_max_lag_hours,
            )
        elif spec.mode == "incremental":
            raise ConfigError(f"Table '{spec.name}': mode incremental needs interval_start/interval_end.")
        tuning = StreamTuning(
            part_size=self.part_size_mib * MIB,
            upload_workers=self.upload_workers,
            compression_level=self.compression_level,
        )
        self.log.info("Table '%s': Data collection started.", spec.name)
        pg = PostgresHook(self.postgres_conn_id)
        self.lineage(
            inputs=[lambda: postgres_dataset(pg, spec.name, spec.schema)],
            outputs=[s3_object(self.bucket, self.key)],
        )
        s3 = ObjectStoreHook(self.s3_conn_id).client(pool=self.upload_workers + 2)
        with pg.connect() as conn:
            prepare_session(conn, self.session_timezone)
            result = dump_table(
                conn,
                s3,
                spec,
                bucket=self.bucket,
                key=self.key,
                interval=interval,
                tuning=tuning,
                source=pg.describe(),
                log=self.log.warning,
            )
        self.log.info("%s", result.summary())
        self.log.info("Table '%s': Dump uploaded to intermediate storage.", spec.name)
        return result.to_dict()


class S3BucketPreflightOperator(LineageMixin, BaseOperator):
    """Create-or-check the dump bucket: default encryption AES256 and a lifecycle rule expiring objects
    after `lifecycle_days`. `apply_rules` (re)applies both; `enforce` fails the task when one is missing.
    Lineage: none (no data moves; the empty lists say so)."""

    template_fields: Sequence[str] = (
        "bucket",
        "prefix",
        "s3_conn_id",
        "lifecycle_days",
        "enforce",
        "create_missing",
        "apply_rules",
    )
    ui_color = "#d7f0e6"

    def __init__(
        self,
        *,
        bucket: str,
        s3_conn_id: str = "aws_default",
        prefix: str = "",
        lifecycle_days: int = 14,
        enforce: bool = True,
        create_missing: bool = True,
        apply_rules: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket
        self.prefix = prefix
        self.s3_conn_id = s3_conn_id
        self.lifecycle_days = lifecycle_days
        self.enforce = enforce
        self.create_missing = create_missing
        self.apply_rules = apply_rules

    def execute(self, context: Any) -> dict[str, Any]:
        with fail_fast():
            hook = ObjectStoreHook(self.s3_conn_id)
            report = preflight(
                hook.client(),
                self.bucket,
                BucketRules(int(self.lifecycle_days), self.prefix),
                create_missing=self.create_missing is True,
                apply=self.apply_rules is True,
                enforce=self.enforce is True,
                where=hook.describe(),
            )
        if report.created:
            self.log.info(
                "Bucket %r created with AES256 default encryption and a %s-day lifecycle rule.",
                self.bucket,
                self.lifecycle_days,
            )
        elif report.applied:
            self.log.info("Bucket %r: encryption and lifecycle rules applied.", self.bucket)
        for problem in report.problems:
            self.log.warning("Bucket rules not enforced, continuing: %s", problem)
        self.log.info("Bucket %r: %s.", self.bucket, "; ".join(report.facts) or "no rules found")
        return {"bucket": self.bucket, "created": report.created, "problems": report.problems}


class EgressManifestOperator(LineageMixin, BaseOperator):
    """Check every table's object, write `_manifest.json` last in the day's folder, and attach the day
    to the dump Asset's event (`outlets`), so a complete day is visible only once all of it is there.
    Lineage: the day's table objects -> the day's folder (what egress_sync reads) and its manifest."""

    template_fields: Sequence[str] = ("run", "results")

    def __init__(self, *, run: Any, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.results = results

    def execute(self, context: Any) -> dict[str, Any]:
        run = self.run
        results = [self.results[i] for i in range(len(self.results))]  # mapped XComs: no probe past the end
        client = ObjectStoreHook(run["s3_conn_id"]).client()
        verify_objects(client, run["bucket"], results)
        self.lineage(
            inputs=[s3_object(run["bucket"], str(r["key"])) for r in results],
            outputs=[
                s3_object(run["bucket"], run["day_prefix"]),
                s3_object(run["bucket"], run["manifest_key"]),
            ],
        )
        manifest = build_manifest(
            day=run["day"],
            bucket=run["bucket"],
            prefix=run["day_prefix"],
            tables=results,
            source=PostgresHook(run["postgres_conn_id"]).describe(),
            data_interval=run["data_interval"],
            run_id=context["run_id"],
            compression=run["compression"],
            created_at=datetime.now(UTC).isoformat(),
        )
        digest = put_manifest(client, run["bucket"], run["manifest_key"], manifest)
        event = {
            "bucket": run["bucket"],
            "prefix": run["day_prefix"],
            "date": run["day"],
            "manifest_key": run["manifest_key"],
            "manifest_sha256": digest,
            "tables": [t["table"] for t in results],
            "rows": manifest["totals"]["rows"],
        }
        for asset in self.outlets:
            context["outlet_events"][asset].extra = event
        self.log.info(
            "Manifest s3://%s/%s: %d table(s), %d rows, %d bytes.",
            run["bucket"],
            run["manifest_key"],
            len(results),
            manifest["totals"]["rows"],
            manifest["totals"]["compressed_bytes"],
        )
        self.log.info("Success.")
        return manifest["totals"]
