"""Ark Log catalog: upsert one PostgreSQL row per offloaded log, scheduled on the ark_logs asset."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from datamover.assets import ARK_LOGS
from datamover.dag_defaults import default_args
from datamover.operators.ark import CatalogIngestOperator

with DAG(
    dag_id="catalog_ingest",
    schedule=[ARK_LOGS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["ark", "catalog", "datamover"],
    params={
        "config_path": Param(
            None,
            type=["null", "string"],
            description="OffloadStageConfig YAML (bucket, server_endpoint) for manual runs",
        ),
        "destination_bucket": Param(
            None, type=["null", "string"], description="override the config's bucket"
        ),
        "server_endpoint": Param(None, type=["null", "string"], description="override the S3 endpoint"),
        "prefix": Param("logs", type="string", description="key prefix the offload used"),
    },
    doc_md="""
### Ark Log catalog ingestion

Runs whenever `ark_offload` emits events on the asset `ark_logs` (one per offloaded log) and
upserts one row per log into `ark_log_catalog` on `catalog_postgres`: name, start time,
duration, size, file count, S3 URI, per-file sha256 checksums, manifest sha256, offloaded at.
The row is built from the log's manifest in S3 (`<prefix>/<name>/ark.json`, uploaded last, so it
exists only for complete logs). `ON CONFLICT (name) DO UPDATE`: re-ingesting is idempotent.

A manual run (no asset events) ingests every complete log under `s3://<bucket>/<prefix>/`.
""",
):

    @task
    def create_catalog_table() -> None:
        from datamover.ark.catalog import ensure_table
        from datamover.hooks.postgres import PostgresHook

        with PostgresHook("catalog_postgres").connect() as conn:
            ensure_table(conn)

    ingest = CatalogIngestOperator(
        task_id="ingest",
        config_path="{{ params.config_path }}",
        overrides={
            "destination_bucket": "{{ params.destination_bucket }}",
            "server_endpoint": "{{ params.server_endpoint }}",
        },
        prefix="{{ params.prefix }}",
    )
    create_catalog_table() >> ingest
