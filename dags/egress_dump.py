"""egress_dump: daily PostgreSQL tables -> gzip CSV objects in S3, one mapped task per table."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from datamover.assets import EGRESS_DUMPS
from datamover.dag_defaults import default_args
from datamover.egress.config import cached_config
from datamover.operators.egress import (
    EgressManifestOperator,
    PostgresToS3CsvOperator,
    S3BucketPreflightOperator,
)

CFG = cached_config()  # a small local YAML: the schedule and the table list for the trigger form

DOC = f"""
### egress_dump

Dumps PostgreSQL tables (connection `{CFG.postgres_conn_id}`) to
`s3://{CFG.bucket}/{CFG.prefix}/<YYYY-MM-DD>/<table>.csv.gz`, then writes `_manifest.json` **last** in
the same folder and emits the Asset `{EGRESS_DUMPS.uri}` (name `{EGRESS_DUMPS.name}`), which egress_sync
is scheduled on. Config: `include/config/egress_dump.yaml`; the trigger form overrides it per run.

* **Folder date** = the data interval's start (the logical date of scheduled and backfill runs). A manual
  `airflow dags test egress_dump D` covers [D-1, D) and writes folder D-1.
* **Tasks**: `plan` (config + params) -> `bucket_preflight` (create-or-check the bucket: AES256 default
  encryption and a {CFG.lifecycle_days}-day lifecycle rule; param `setup_bucket` applies them) -> `open_day`
  (removes an old manifest of that day, since a rerun rewrites its objects) -> `dump_table` (one mapped task
  per table, pool `postgres_dumps`) -> `write_manifest`.
* **Modes**: `snapshot` dumps the whole table; `incremental` dumps `start <= timestamp_column < end` of the
  data interval, so backfills (`airflow backfill create --dag-id egress_dump --from-date ... --to-date ...`)
  give each past day's slice. A snapshot table refuses a backfill or a day that ended more than
  `snapshot_max_lag_hours` ago unless `allow_snapshot_backfill`.
* **Failures**: an unknown table or column fails that table's task (no retry) naming it; the other tables
  still dump, but `write_manifest` runs only when every table succeeded (default trigger rule), so a
  folder without `_manifest.json` is an incomplete day. Database/S3 errors retry with backoff; a failed
  upload is aborted (no partial object, no orphan multipart upload).
* **Consistency**: each table is read in its own REPEATABLE READ snapshot; the manifest records each
  table's snapshot time (cross-table exported snapshots are not implemented).
"""

with DAG(
    dag_id="egress_dump",
    schedule=CronDataIntervalTimetable(CFG.schedule, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["egress", "datamover"],
    doc_md=DOC,
    params={
        "tables": Param(
            [],
            type="array",
            items={"type": "string", "enum": CFG.table_names},
            examples=CFG.table_names,
            title="Tables",
            description="Subset to dump; empty = all.",
        ),
        "bucket": Param(None, type=["null", "string"], description=f"Override the bucket ({CFG.bucket})."),
        "prefix": Param(None, type=["null", "string"], description=f"Override the prefix ({CFG.prefix})."),
        "postgres_conn_id": Param(
            None, type=["null", "string"], description="Override the source connection."
        ),
        "s3_conn_id": Param(None, type=["null", "string"], description="Override the S3 connection."),
        "compression_level": Param(
            None,
            type=["null", "integer"],
            minimum=0,
            maximum=3,
            description=f"ISA-L gzip level 0-3 ({CFG.compression_level}).",
        ),
        "allow_snapshot_backfill": Param(
            None, type=["null", "boolean"], description="Let snapshot tables run for a past day."
        ),
        "enforce_bucket_rules": Param(
            None, type=["null", "boolean"], description="Fail when encryption/lifecycle is missing."
        ),
        "config_path": Param(
            None, type=["null", "string"], description="Another egress_dump YAML (default: the shipped one)."
        ),
        "setup_bucket": Param(
            False, type="boolean", description="Apply AES256 default encryption and the lifecycle rule first."
        ),
    },
) as dag:

    @task(multiple_outputs=True)
    def plan(
        params: dict[str, Any], data_interval_start: Any = None, data_interval_end: Any = None
    ) -> dict[str, Any]:
        from datamover.egress.config import DEFAULT_CONFIG, load_config
        from datamover.egress.plan import overrides_from_params, plan_run

        cfg = load_config(params.get("config_path") or DEFAULT_CONFIG)
        cfg = cfg.with_overrides(overrides_from_params(params))
        return plan_run(cfg, data_interval_start, data_interval_end)

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
        map_index_template="{{ task.table }}",
    ).expand_kwargs(tables)
    EgressManifestOperator(task_id="write_manifest", run=run, results=dumps.output, outlets=[EGRESS_DUMPS])
    preflight >> tables
