"""OpenLineage through the provider's file transport, on real `airflow dags test` runs: the events of the
dump -> sync -> Ceph chain and of the offload -> catalog chain name the right datasets, in order."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from datamover.ark.offload import MiB
from tests.conftest import ceph_client, deployment_config, moto_client, run_airflow
from tests.support.ark_samples import generate_log
from tests.support.egress_seed import seed

pytestmark = pytest.mark.integration

PG = "postgres://127.0.0.1:55432"  # egress_postgres and catalog_postgres (airflow_settings.yaml)


def openlineage_env(path: Path) -> dict[str, str]:
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "dm-test",
    }


def task_events(path: Path, state: str = "COMPLETE") -> list[dict[str, Any]]:
    """The task-level events (job `dag.task`) of one state, in the order they were written."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["eventType"] == state and "." in e["job"]["name"]]


def datasets(event: dict[str, Any], side: str) -> set[str]:
    return {f"{d['namespace']}|{d['name']}" for d in event.get(side) or []}


def named(events: list[dict[str, Any]], job: str) -> list[tuple[int, dict[str, Any]]]:
    found = [(i, e) for i, e in enumerate(events) if e["job"]["name"] == job]
    assert found, f"no COMPLETE event of {job}: {[e['job']['name'] for e in events]}"
    return found


def aws_conn(service: str, path: str) -> str:
    kind = "S3" if service == "moto" else "CEPH"
    endpoint = os.environ["DATAMOVER_S3_ENDPOINT" if service == "moto" else "DATAMOVER_CEPH_ENDPOINT"]
    return json.dumps(
        {
            "conn_type": "aws",
            "login": os.environ[f"DATAMOVER_{kind}_ACCESS_KEY"],
            "password": os.environ[f"DATAMOVER_{kind}_SECRET_KEY"],
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1", "path": path},
        }
    )


def empty(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def buckets() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    dump, mirror = f"lineage-dump-{tag}", f"lineage-ceph-{tag}"
    yield dump, mirror
    for client, bucket in ((moto_client(), dump), (ceph_client(), mirror)):
        with contextlib.suppress(Exception):  # a failed run may not have created it
            empty(client, bucket)


def test_dump_then_sync_to_ceph_names_table_objects_and_folders_in_order(
    buckets: tuple[str, str], tmp_path: Path
) -> None:
    dump_bucket, ceph_bucket = buckets
    log = tmp_path / "ol.json"
    env = openlineage_env(log)
    seed()
    today = datetime.now(UTC).date()
    day = (today - timedelta(days=1)).isoformat()  # a run for D covers [D-1, D) and files it under D-1
    conf = {"bucket": dump_bucket, "tables": ["tally_snapshots", "subscription_capacity"]}
    result = run_airflow(
        "dags", "test", "egress_dump", today.isoformat(), "--conf", json.dumps(conf), env=env
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    env |= {
        "AIRFLOW_CONN_EGRESS_INPUT": aws_conn("moto", f"{dump_bucket}/daily"),
        "AIRFLOW_CONN_EGRESS_OUTPUT": aws_conn("ceph", f"{ceph_bucket}/dh"),
    }
    result = run_airflow("dags", "test", "egress_sync", today.isoformat(), "--conf", '{"shards": 2}', env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    events = task_events(log)
    tables = {f"{PG}|datamover.egress_demo.{t}" for t in conf["tables"]}
    objects = {f"s3://{dump_bucket}|daily/{day}/{t}.csv.gz" for t in conf["tables"]}
    dumps = named(events, "egress_dump.dump_table")
    assert len(dumps) == 2  # one per mapped table
    assert set().union(*(datasets(e, "inputs") for _, e in dumps)) == tables
    assert set().union(*(datasets(e, "outputs") for _, e in dumps)) == objects
    for _, e in dumps:  # each task: its own table -> its own object
        (table,) = datasets(e, "inputs")
        (obj,) = datasets(e, "outputs")
        assert table.rsplit(".", 1)[1] == obj.rsplit("/", 1)[1].removesuffix(".csv.gz")

    ((manifest_at, manifest),) = named(events, "egress_dump.write_manifest")
    folder = f"s3://{dump_bucket}|daily/{day}"
    assert datasets(manifest, "inputs") == objects
    assert datasets(manifest, "outputs") == {folder, f"s3://{dump_bucket}|daily/{day}/_manifest.json"}

    copies = named(events, "egress_sync.copy")
    assert len(copies) == 2  # two shards of the day's folder
    for _, e in copies:
        assert datasets(e, "inputs") == {folder}
        assert datasets(e, "outputs") == {f"s3://{ceph_bucket}|dh/{day}"}
    ((_, plan),) = named(events, "egress_sync.plan")
    assert datasets(plan, "inputs") == {folder} and datasets(plan, "outputs") == set()
    # in order: every table dumped before the manifest, the manifest before any copy
    assert max(i for i, _ in dumps) < manifest_at < min(i for i, _ in copies)
    # and the data is really where the lineage says
    mirrored = ceph_client().list_objects_v2(Bucket=ceph_bucket, Prefix=f"dh/{day}/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in mirrored} == {
        "_manifest.json",
        *(f"{t}.csv.gz" for t in conf["tables"]),
    }


def test_offload_then_catalog_names_local_folders_s3_folders_and_the_catalog_table(tmp_path: Path) -> None:
    client, bucket = moto_client(), f"lineage-ark-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    log = tmp_path / "ol.json"
    tag = uuid.uuid4().hex[:6]
    names = [f"ol_{tag}_a", f"ol_{tag}_b"]
    storage = tmp_path / "logs"
    generate_log(storage, names[0], [6 * MiB, 3000], seed=21)
    generate_log(storage, names[1], [2 * MiB], seed=22)
    prefix = f"lineage-{tag}"
    doc = {"config": {"storage_base_path": str(storage), "destination_bucket": bucket, "prefix": prefix}}
    env = {**deployment_config(tmp_path / "config", ark_offload=doc), **openlineage_env(log)}
    try:
        result = run_airflow("dags", "test", "ark_offload", env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        result = run_airflow("dags", "test", "catalog_ingest", env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    finally:
        with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
            conn.execute("DELETE FROM ark_log_catalog WHERE name = ANY(%s)", [names])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)

    events = task_events(log)
    ((offload_at, offload),) = named(events, "ark_offload.offload")
    local = datasets(offload, "inputs")
    assert {n.split("|", 1)[1] for n in local} == {str(storage / n) for n in names}
    assert all(n.startswith("file://") for n in local)
    folders = {f"s3://{bucket}|{prefix}/{n}" for n in names}
    assert datasets(offload, "outputs") == folders
    ((scan_at, scan),) = named(events, "ark_offload.scan")
    assert {n.split("|", 1)[1] for n in datasets(scan, "inputs")} == {str(storage)}
    ((catalog_at, catalog),) = named(events, "catalog_ingest.ingest")
    assert datasets(catalog, "inputs") == folders
    assert datasets(catalog, "outputs") == {f"{PG}|datamover.public.ark_log_catalog"}
    assert scan_at < offload_at < catalog_at
