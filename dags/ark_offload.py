"""Offload Stage: onboard Ark Logs -> S3, resumable, with a 0.5 Hz status stream and catalog events."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowSkipException

from datamover.assets import ARK_LOGS
from datamover.dag_defaults import default_args
from datamover.operators.ark import (
    STATUS_TOPIC,
    ArkCredentialsOperator,
    ArkOffloadOperator,
    ArkScanOperator,
)

CONFIG_FIELDS = ("storage_base_path", "destination_bucket", "remove_after_offload", "server_endpoint")
OVERRIDES = {name: "{{ params." + name + " }}" for name in CONFIG_FIELDS}
CONFIG = {"config_path": "{{ params.config_path }}", "overrides": OVERRIDES}

with DAG(
    dag_id="ark_offload",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two offloads of the same storage would race on the same multipart uploads
    default_args=default_args(),
    render_template_as_native_obj=True,  # params keep their types (null, bool, list) in templates
    tags=["ark", "offload", "datamover"],
    params={
        "config_path": Param(
            None,
            type=["null", "string"],
            description="OffloadStageConfig YAML; empty = include/config/ark_offload.yaml",
        ),
        "storage_base_path": Param(None, type=["null", "string"], description="override: onboard log folder"),
        "destination_bucket": Param(None, type=["null", "string"], description="override: S3 bucket"),
        "remove_after_offload": Param(
            None, type=["null", "boolean"], description="override: delete local logs once verified in S3"
        ),
        "server_endpoint": Param(
            None, type=["null", "string"], description="override: S3 endpoint host:port (local testing)"
        ),
        "logs": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Ark Log names to offload; empty = every log found",
        ),
        "dry_run": Param(False, type="boolean", description="scan only (the Rescan button)"),
        "prefix": Param("logs", type="string", description="key prefix in the bucket"),
        "create_bucket": Param(
            False, type="boolean", description="create the bucket if missing (local demo only)"
        ),
    },
    doc_md=f"""
### Ark Log offload (the Offload Stage)

1. **ensure_status_topic** creates the Kafka topic `{STATUS_TOPIC}` if missing.
2. **check_credentials**: STS GetCallerIdentity and HeadBucket with `aws_default` (or
   `server_endpoint`); bad credentials fail here, before anything is read or sent.
3. **scan** `storage_base_path`: a table of Ark Logs (name, start, duration, size, files) and of
   the non-Ark data that is ignored, with the reason. XCom: the same as JSON.
4. **select** the `logs` param (empty = all); unknown names fail listing what was found.
   `dry_run` = Rescan: stop after the scan.
5. **offload**: one engine for all selected logs (parallel across logs, files and multipart
   parts, bounded memory); resumable (completed objects skipped after size+checksum, multipart
   uploads continued from ListParts); every object verified (size, sha256 metadata, ETag).
   Progress, per-log state and errors go to `{STATUS_TOPIC}` every 2 s (0.5 Hz); the last
   message says complete or error. With `remove_after_offload`, a log's local files are deleted
   only after all its objects are verified.
6. **register_log** (one mapped task per offloaded log) emits an event on the asset
   `ark_logs`, which schedules `catalog_ingest`.

Trigger with the form: pick logs, set overrides; rerun the same way after any interruption.
""",
):

    @task
    def ensure_status_topic() -> list[str]:
        from datamover.hooks.kafka import KafkaHook

        return KafkaHook().ensure_topics([STATUS_TOPIC])

    # A credential failure raises AirflowFailException: the run fails at once, retries are not used.
    credentials = ArkCredentialsOperator(
        task_id="check_credentials", create_bucket="{{ params.create_bucket }}", **CONFIG
    )
    scan = ArkScanOperator(task_id="scan", **CONFIG)

    @task
    def select(scan_result: dict[str, Any], params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        from datamover.ark.scan import select as select_logs

        params = params or {}
        selection = select_logs(scan_result, params.get("logs") or [])
        if params.get("dry_run"):
            raise AirflowSkipException(f"dry_run: scan only; {len(selection)} log(s) would be offloaded")
        if not selection:
            raise AirflowSkipException("no Ark Logs to offload")
        return selection

    selection = select(scan.output)
    offload = ArkOffloadOperator(
        task_id="offload", selection=selection, prefix="{{ params.prefix }}", pool="s3_transfers", **CONFIG
    )

    @task(outlets=[ARK_LOGS], retries=1)
    def register_log(record: dict[str, Any], outlet_events: Any = None) -> str:
        outlet_events[ARK_LOGS].extra = record
        return record["s3_uri"]

    ensure_status_topic() >> credentials >> scan
    register_log.expand(record=offload.output)
