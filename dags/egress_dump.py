"""egress_dump: daily PostgreSQL tables -> gzip CSV objects in S3, one mapped task per table."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, task

from datamover import params
from datamover.assets import EGRESS_DUMPS
from datamover.dag_defaults import default_args
from datamover.operators.base import fails_fast
from datamover.operators.egress import (
    EgressManifestOperator,
    PostgresToS3CsvOperator,
    S3BucketPreflightOperator,
)

DOC = """
### egress_dump

Dumps PostgreSQL tables to `s3://<bucket>/<prefix>/<YYYY-MM-DD>/<table>.csv.gz`, then writes
`_manifest.json` **last** in the same folder and emits an event on the Asset `egress_dumps` (its extra names
the day), which egress_sync is scheduled on. Config: `include/config/egress_dump.yaml` (tables, connections,
bucket, prefix, rules, tuning); the trigger form overrides parts of it per run, validated by the same model.

* **Schedule**: daily at 00:00 UTC. **Folder date** = the data interval's start (the logical date of
  scheduled and backfill runs). A manual `airflow dags test egress_dump D` covers [D-1, D) and writes D-1.
* **Tasks**: `plan` (config + params) -> `bucket_preflight` (create-or-check the bucket: AES256 default
  encryption and the lifecycle rule; param `setup_bucket` applies them) -> `open_day` (removes an old
  manifest of that day, since a rerun rewrites its objects) -> `dump_table` (one mapped task per table,
  pool `postgres_dumps`) -> `write_manifest`.
* **Modes**: `snapshot` dumps the whole table; `incremental` dumps `start <= timestamp_column < end` of the
  data interval, so backfills (Trigger -> Backfill, or `airflow backfill create --dag-id egress_dump ...`)
  give each past day's slice. A snapshot table refuses a backfill or a day that ended more than
  `snapshot_max_lag_hours` ago unless `allow_snapshot_backfill`.
* **Failures**: a bad config, an unknown table or column, refused credentials fail at once, without
  retries, naming the thing and the fix; the other tables still dump, but `write_manifest` runs only when
  every table succeeded, so a folder without `_manifest.json` is an incomplete day. Database/S3 errors
  retry with backoff; a failed upload is aborted (no partial object, no orphan multipart upload).
* **Consistency**: each table is read in its own REPEATABLE READ snapshot; the manifest records each
  table's snapshot time.
"""

with DAG(
    dag_id="egress_dump",
    description="Daily PostgreSQL tables to S3 as <table>.csv.gz under a date folder, with a manifest",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["egress", "datamover"],
    doc_md=DOC,
    params={
        "tables": params.optional_names("Tables of the config to dump; empty = all.", title="Tables"),
        "bucket": params.optional_text("Override the config's bucket; empty = as configured."),
        "prefix": params.optional_text("Override the config's key prefix; empty = as configured."),
        "postgres_conn_id": params.optional_text("Source connection id; empty = as configured."),
        "s3_conn_id": params.optional_text("S3 connection id; empty = as configured."),
        "compression_level": params.optional_number("ISA-L gzip level 0-3; empty = as configured.", 0, 3),
        "allow_snapshot_backfill": params.tri_state("Let snapshot tables run for a past day."),
        "enforce_bucket_rules": params.tri_state("Fail when encryption/lifecycle rules are missing."),
        "setup_bucket": params.switch("Apply AES256 default encryption and the lifecycle rule first."),
    },
) as dag:

    @task(multiple_outputs=True)
    @fails_fast
    def plan(
        params: dict[str, Any], data_interval_start: Any = None, data_interval_end: Any = None
    ) -> dict[str, Any]:
        from datamover.egress.config import config_for_run
        from datamover.egress.plan import plan_run

        return plan_run(config_for_run(params), data_interval_start, data_interval_end)

    @task
    def open_day(bucket: str, s3_conn_id: str, manifest_key: str, tables: list[dict[str, Any]]) -> list[dict]:
        from datamover.egress.manifest import delete_manifest
        from datamover.hooks.s3 import ObjectStoreHook

        if delete_manifest(ObjectStoreHook(s3_conn_id).client(), bucket, manifest_key):
            print(f"Removed the previous s3://{bucket}/{manifest_key}: this run rewrites the day.")
        return tables

    run = plan()
    preflight = S3BucketPreflightOperator(
        task_id="bucket_preflight",
        bucket=run["bucket"],
        s3_conn_id=run["s3_conn_id"],
        prefix=run["prefix"],
        lifecycle_days=run["lifecycle_days"],
        enforce=run["enforce_bucket_rules"],
        create_missing=run["create_missing_bucket"],
        apply_rules="{{ params.setup_bucket }}",
    )
    tables = open_day(run["bucket"], run["s3_conn_id"], run["manifest_key"], run["tables"])
    dumps = PostgresToS3CsvOperator.partial(
        task_id="dump_table",
        pool="postgres_dumps",
        map_index_template="{{ task.table['name'] }}",
    ).expand_kwargs(tables)
    EgressManifestOperator(task_id="write_manifest", run=run, results=dumps.output, outlets=[EGRESS_DUMPS])
    preflight >> tables
