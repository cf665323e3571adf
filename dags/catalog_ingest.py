"""Ark Log catalog: upsert one PostgreSQL row per offloaded log, scheduled on the ark_logs asset."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from datamover.assets import ARK_LOGS
from datamover.dag_defaults import default_args
from datamover.operators.ark import CatalogIngestOperator

with DAG(
    dag_id="catalog_ingest",
    description="Upsert one catalog row per offloaded Ark Log into PostgreSQL, on each ark_logs event",
    schedule=[ARK_LOGS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["ark", "catalog", "datamover"],
    doc_md="""
### Ark Log catalog ingestion

Runs whenever `ark_offload` emits events on the asset `ark_logs` (one per offloaded log) and upserts one
row per log into `ark_log_catalog` on `catalog_postgres`: name, start time, duration, size, file count,
S3 URI, per-file sha256 checksums, manifest sha256, offloaded at. The row is built from the log's manifest
in S3 (`<prefix>/<name>/ark.json`, uploaded last, so it exists only for complete logs).
`ON CONFLICT (name) DO UPDATE`: re-ingesting is idempotent.

Logs are read one by one: a log whose bucket or manifest is gone is named (bucket, key, log) and the rows
of the others are written first; then the task fails (at once when nothing can heal, e.g. a stale event
of a deleted bucket). A manual run (no asset events) ingests every complete log under the configured
bucket and prefix of `include/config/ark_offload.yaml`. Every run also ingests the logs of the last 50
`ark_logs` events that have no catalog row yet: Airflow 3.3 can leave an event that arrives while a run is
already queued unconsumed until the next event (apache/airflow#56050). Those are best effort: one that
cannot be read any more is logged, never fails the run.
""",
):
    # inlets: recent ark_logs events are read back, so a log whose event went unconsumed is not missed.
    CatalogIngestOperator(task_id="ingest", overrides="{{ params }}", inlets=[ARK_LOGS])
