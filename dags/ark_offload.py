"""Offload Stage: onboard Ark Logs -> S3, resumable, with a 0.5 Hz status stream and catalog events."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from datamover import params
from datamover.assets import ARK_LOGS
from datamover.dag_defaults import default_args
from datamover.operators.ark import (
    FAILED_KEY,
    STATUS_TOPIC,
    ArkCredentialsOperator,
    ArkOffloadOperator,
    ArkScanOperator,
)
from datamover.operators.base import fails_fast

with DAG(
    dag_id="ark_offload",
    description="Offload onboard Ark Logs to S3 (resumable, verified, 0.5 Hz status), then catalog them",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # two offloads of the same storage would race on the same multipart uploads
    default_args=default_args(),
    render_template_as_native_obj=True,
    tags=["ark", "offload", "datamover"],
    params={
        "logs": params.optional_names("Ark Log names to offload; empty = every log found.", title="Logs"),
        "dry_run": params.switch("Scan only (the Rescan button): offload nothing."),
        "remove_after_offload": params.tri_state("Delete local logs once every object is verified in S3."),
        "destination_bucket": params.optional_text("Override the config's bucket; empty = as configured."),
        "prefix": params.optional_text("Override the key prefix in the bucket; empty = as configured."),
        "aws_conn_id": params.optional_text("Connection whose credentials upload; empty = as configured."),
    },
    doc_md=f"""
### Ark Log offload (the Offload Stage)

Config: `include/config/ark_offload.yaml` (the seed's `OffloadStageConfig`: storage folder, bucket,
remove_after_offload, optional server_endpoint; plus the connection, key prefix and bucket creation).
The form may override the bucket, prefix, connection and remove_after_offload, never a host or a path.

1. **check_credentials**: STS GetCallerIdentity and HeadBucket with the configured connection; refused
   credentials fail the run at once, before anything is read or sent.
2. **scan** `storage_base_path`: a table of Ark Logs (name, start, duration, size, files) and of the
   non-Ark data that is ignored, with the reason (also as XCom). `dry_run` (= Rescan) stops here.
3. **offload**: scans again, then one engine for all selected logs (parallel across logs, files and
   multipart parts, bounded memory); resumable (complete objects skipped after size+checksum, multipart
   uploads continued from ListParts); every object verified (size, sha256 metadata, ETag). A selected log
   no longer on disk counts as offloaded when an earlier run left it complete in S3; an unknown name fails
   at once listing the logs found. Progress, per-log state and errors go to Kafka `{STATUS_TOPIC}` every
   2 s (0.5 Hz; best effort: a Kafka outage never stops the offload). With `remove_after_offload`, a
   log's local files are deleted only after all its objects are verified.
4. **register_log** (one mapped task per log verified in S3) emits an event on the asset `ark_logs`,
   which schedules `catalog_ingest` - also when other logs of the run failed.
5. **report** fails the run, naming each failed log and why, when any failed; run again to resume.
""",
):
    credentials = ArkCredentialsOperator(task_id="check_credentials", overrides="{{ params }}")
    scan = ArkScanOperator(task_id="scan", overrides="{{ params }}")
    offload = ArkOffloadOperator(
        task_id="offload",
        overrides="{{ params }}",
        logs="{{ params.logs }}",
        dry_run="{{ params.dry_run }}",
        pool="s3_transfers",
    )

    @task(outlets=[ARK_LOGS], retries=1)
    def register_log(record: dict[str, Any], outlet_events: Any = None) -> str:
        outlet_events[ARK_LOGS].extra = record
        return record["s3_uri"]

    # Also when no log needed an event (register_log then has nothing to map); skipped, not failed, when
    # the offload was (dry_run = Rescan, or no logs found): its `failed` XCom does not exist then.
    @task(trigger_rule="none_failed_min_one_success")
    @fails_fast
    def report(offloaded: list[dict[str, Any]] | None, failed: list[dict[str, Any]] | None) -> str:
        from datamover.operators.ark import offload_report

        line = offload_report(offloaded, failed)
        print(line)
        return line

    credentials >> scan >> offload
    registered = register_log.expand(record=offload.output)
    registered >> report(offload.output, offload.output[FAILED_KEY])
