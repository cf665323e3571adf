"""The DAGs the way users run them: triggered and backfilled through the REST API, executed by the real
scheduler (LocalExecutor) over the Execution API, chained by asset events."""

from __future__ import annotations

import functools
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from datamover.hooks.s3 import ObjectStoreHook
from tests.conftest import ceph_client, moto_client
from tests.e2e.conftest import AirflowStack, wait_for
from tests.support.ark_samples import generate_junk, generate_log
from tests.support.egress_seed import seed

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
DUMP_BUCKET, DUMP_PREFIX = "egress-dumps", "daily"  # egress_input's path in airflow_settings.yaml
CEPH_BUCKET, CEPH_PREFIX = "datahub-egress", "dh-secure"  # egress_output's path


def head_bucket_or_none(client: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        return None


def midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


@functools.cache
def ceph() -> Any:
    return ceph_client()


def ceph_keys(prefix: str) -> set[str]:
    client = ceph()
    keys: set[str] = set()
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=CEPH_BUCKET, Prefix=prefix):
            keys |= {o["Key"] for o in page.get("Contents", [])}
    except client.exceptions.NoSuchBucket:
        pass
    return keys


def forget_day(day: str) -> None:
    """Remove a day from the dump bucket and the mirror, so the test sees this run's work only."""
    for client, bucket, prefix in (
        (moto_client(), DUMP_BUCKET, f"{DUMP_PREFIX}/{day}/"),
        (ceph_client(), CEPH_BUCKET, f"{CEPH_PREFIX}/{day}/"),
    ):
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    client.delete_object(Bucket=bucket, Key=obj["Key"])
        except client.exceptions.NoSuchBucket:
            pass


def test_connectivity_check_on_the_scheduler(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    stack.unpause("connectivity_check")
    run_id = stack.trigger("connectivity_check", stack.form_conf("connectivity_check"))
    run = stack.wait_run("connectivity_check", run_id, timeout=240)
    assert run["state"] == "success", stack.task_states("connectivity_check", run_id)
    log = stack.log("connectivity_check", run_id, "check_egress_postgres")
    assert "Connection 'egress_postgres' OK: PostgreSQL" in log


def test_egress_dump_then_sync_of_that_day(airflow_stack: AirflowStack) -> None:
    """A manual run from the form files yesterday's data under yesterday; the asset event it emits starts
    egress_sync, which mirrors that day to Ceph."""
    stack = airflow_stack
    seed(os.environ["DATAMOVER_PG_DSN"])
    today = datetime.now(UTC).date()
    day = (today - timedelta(days=1)).isoformat()
    forget_day(day)
    stack.unpause("egress_sync")
    stack.unpause("egress_dump")
    run_id = stack.trigger("egress_dump", stack.form_conf("egress_dump"), logical_date=midnight(today))
    run = stack.wait_run("egress_dump", run_id, timeout=300)
    assert run["state"] == "success", stack.task_states("egress_dump", run_id)
    log = stack.logs_of("egress_dump", run_id)
    for table in ("tally_snapshots", "subscription_capacity"):
        assert f"Table '{table}': Data collection started." in log
        assert f"Table '{table}': Dump uploaded to intermediate storage." in log
    assert "Success." in log
    wait_for(
        lambda: f"{CEPH_PREFIX}/{day}/_manifest.json" in ceph_keys(f"{CEPH_PREFIX}/{day}/"),
        300,
        f"egress_sync to mirror {day} to Ceph",
        lambda: [(r["run_type"], r["state"]) for r in stack.runs("egress_sync")],
    )
    assert {
        f"{CEPH_PREFIX}/{day}/{t}.csv.gz" for t in ("tally_snapshots", "subscription_capacity")
    } <= ceph_keys(f"{CEPH_PREFIX}/{day}/")
    synced = [r for r in stack.runs("egress_sync") if r["run_type"] == "asset_triggered"]
    assert synced and any(f"Scope '{day}'" in stack.logs_of("egress_sync", r["dag_run_id"]) for r in synced)


def test_three_day_backfill_is_dumped_and_every_day_mirrored(airflow_stack: AirflowStack) -> None:
    """POST /api/v2/backfills for three days: each day gets its dump, its manifest and its asset event,
    and every one of them reaches Ceph, however egress_sync's runs batch the events."""
    stack = airflow_stack
    seed(os.environ["DATAMOVER_PG_DSN"])
    logical = [date(2025, 12, 1) + timedelta(days=i) for i in range(3)]
    days = [d.isoformat() for d in logical]  # a backfill run's logical date is its interval's start
    for day in days:
        forget_day(day)
    stack.unpause("egress_sync")
    stack.unpause("egress_dump")
    backfill = stack.api(
        "POST",
        "/backfills",
        json={
            "dag_id": "egress_dump",
            "from_date": midnight(logical[0]),
            "to_date": midnight(logical[-1]),
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
            "dag_run_conf": {},
        },
    )
    runs = wait_for(
        lambda: (
            len(
                done := [
                    r
                    for r in stack.runs("egress_dump", run_type="backfill")
                    if r["state"] in ("success", "failed")
                ]
            )
            >= 3
            and done
        ),
        600,
        f"backfill {backfill['id']} to finish three runs",
        lambda: [(r["logical_date"], r["state"]) for r in stack.runs("egress_dump", run_type="backfill")],
    )
    assert all(r["state"] == "success" for r in runs), [(r["logical_date"], r["state"]) for r in runs]
    events = stack.api("GET", "/assets/events", params={"limit": 100, "source_dag_id": "egress_dump"})
    dated = {e["extra"].get("date") for e in events["asset_events"]}
    assert set(days) <= dated, dated
    for day in days:
        wait_for(
            lambda day=day: f"{CEPH_PREFIX}/{day}/_manifest.json" in ceph_keys(f"{CEPH_PREFIX}/{day}/"),
            600,
            f"egress_sync to mirror {day}",
            lambda: [(r["run_type"], r["state"]) for r in stack.runs("egress_sync")],
        )
    # (A scheduled run that started before any dump existed may have failed, naming the missing bucket.)
    synced = stack.runs("egress_sync", run_type="asset_triggered")
    assert synced and all(r["state"] != "failed" for r in synced), [(r["run_id"], r["state"]) for r in synced]


def test_offload_emits_events_that_fill_the_catalog(airflow_stack: AirflowStack) -> None:
    stack = airflow_stack
    tag = datetime.now(UTC).strftime("%H%M%S")
    names = [f"e2e_{tag}_a", f"e2e_{tag}_b", f"e2e_{tag}_c"]
    generate_log(stack.storage, names[0], [12 * MIB, 3000], seed=61)
    generate_log(stack.storage, names[1], [2 * MIB], seed=62)
    generate_log(stack.storage, names[2], [1000], seed=63)
    generate_junk(stack.storage)
    stack.unpause("catalog_ingest")
    stack.unpause("ark_offload")
    run_id = stack.trigger("ark_offload", stack.form_conf("ark_offload", logs=names[:2]))
    run = stack.wait_run("ark_offload", run_id, timeout=300)
    assert run["state"] == "success", stack.task_states("ark_offload", run_id)
    assert "2 log(s) offloaded and verified in S3" in stack.log("ark_offload", run_id, "report")
    scan_log = stack.log("ark_offload", run_id, "scan")
    assert names[2] in scan_log and "corrupt_manifest" in scan_log and "Non-Ark data" in scan_log
    client = ObjectStoreHook("aws_default").client()
    stored = {
        o["Key"] for o in client.list_objects_v2(Bucket=stack.ark_bucket, Prefix="logs/").get("Contents", [])
    }
    assert {f"logs/{n}/ark.json" for n in names[:2]} <= stored and f"logs/{names[2]}/ark.json" not in stored

    def catalog_rows() -> list[tuple[str, int]]:
        with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
            if not conn.execute("SELECT to_regclass('ark_log_catalog')").fetchone()[0]:
                return []
            return conn.execute(
                "SELECT name, file_count FROM ark_log_catalog WHERE name = ANY(%s) ORDER BY name", [names]
            ).fetchall()

    rows = wait_for(
        lambda: len(rows := catalog_rows()) == 2 and rows,
        300,
        "catalog_ingest to upsert both logs",
        lambda: [(r["run_type"], r["state"]) for r in stack.runs("catalog_ingest")],
    )
    assert rows == [(names[0], 2), (names[1], 1)]
    assert any(r["run_type"] == "asset_triggered" for r in stack.runs("catalog_ingest"))


def test_manual_runs_of_the_asset_scheduled_dags(airflow_stack: AirflowStack) -> None:
    """egress_sync and catalog_ingest also run from their trigger forms, with no asset event: the sync of
    a day already mirrored copies nothing and skips every object; the catalog ingests what the configured
    bucket holds."""
    stack = airflow_stack
    seed(os.environ["DATAMOVER_PG_DSN"])
    # A day of its own: Airflow allows one run per logical date, and the other tests' manual runs and the
    # scheduled runs made at unpause hold today's and yesterday's.
    logical = datetime.now(UTC).date() - timedelta(days=10)
    day = (logical - timedelta(days=1)).isoformat()
    forget_day(day)
    stack.unpause("egress_sync")
    stack.unpause("egress_dump")
    dump = stack.trigger("egress_dump", stack.form_conf("egress_dump"), logical_date=midnight(logical))
    assert stack.wait_run("egress_dump", dump, timeout=300)["state"] == "success"
    wait_for(
        lambda: f"{CEPH_PREFIX}/{day}/_manifest.json" in ceph_keys(f"{CEPH_PREFIX}/{day}/"),
        300,
        f"egress_sync to mirror {day}",
    )
    wait_for(
        lambda: all(r["state"] in ("success", "failed") for r in stack.runs("egress_sync")),
        300,
        "egress_sync's asset-triggered runs to finish",
    )
    sync = stack.trigger("egress_sync", stack.form_conf("egress_sync"), logical_date=midnight(logical))
    assert stack.wait_run("egress_sync", sync, timeout=300)["state"] == "success"
    summary = stack.log("egress_sync", sync, "summary")
    assert f"Scope '{day}'" in summary and "Copied: 0," in summary and "Skipped: 0," not in summary

    client = ObjectStoreHook("aws_default").client()  # as ark_offload would have made it (run alone)
    if not head_bucket_or_none(client, stack.ark_bucket):
        client.create_bucket(Bucket=stack.ark_bucket)
    stack.unpause("catalog_ingest")
    ingest = stack.trigger("catalog_ingest", stack.form_conf("catalog_ingest"))
    assert stack.wait_run("catalog_ingest", ingest, timeout=300)["state"] == "success"
    assert "No triggering asset events: ingesting the" in stack.log("catalog_ingest", ingest, "ingest")
