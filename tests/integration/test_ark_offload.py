"""Ark Log offload against the real local services: moto (S3 + STS), Kafka, PostgreSQL, Airflow CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.ark import catalog
from datamover.ark.credentials import check_credentials
from datamover.ark.format import MANIFEST_NAME, detect, generate_junk, generate_log
from datamover.ark.offload import MiB, OffloadEngine, OffloadOptions, kill_at_fraction
from datamover.ark.progress import COMPLETE, Progress, StatusPublisher
from datamover.errors import ConnectionCheckError
from datamover.s3client import S3Endpoint
from datamover.s3lean import LeanS3
from datamover.streams.definition import decode, stream
from tests.conftest import moto_endpoint, run_airflow

pytestmark = pytest.mark.integration


def empty_bucket(client, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


@pytest.fixture
def s3() -> Iterator[tuple[object, str]]:
    client = moto_endpoint().client()
    bucket = f"ark-it-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    empty_bucket(client, bucket)  # moto keeps objects in RAM
    client.delete_bucket(Bucket=bucket)


def keys(client, bucket: str) -> set[str]:
    out: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out |= {o["Key"] for o in page.get("Contents", [])}
    return out


def test_offload_selection_objects_checksums_and_catalog(s3, tmp_path: Path) -> None:
    client, bucket = s3
    storage = tmp_path / "ark_logs"
    a = generate_log(storage, "log_a", [40 * MiB + 123, 70_000, 5], seed=1)
    generate_log(storage, "log_b", [100_000], seed=2)
    c = generate_log(storage, "log_c", [20 * MiB, 20 * MiB], seed=3)
    generate_junk(storage)
    logs, rejected = detect(storage, settle_seconds=0.2)
    assert len(rejected) == 8
    selected = [lg for lg in logs if lg.name in ("log_a", "log_c")]

    # the bytes go through the lean client here; the rerun below uses boto3 only (both paths covered)
    engine = OffloadEngine(
        client,
        bucket,
        OffloadOptions(prefix="it"),
        progress=Progress.for_logs(selected),
        lean=LeanS3(moto_endpoint()),
    )
    results = engine.run(selected)
    assert [r.state for r in results] == ["verified", "verified"]

    expected = {f"it/{lg.name}/{df.path}": df for lg in (a, c) for df in lg.files}
    assert keys(client, bucket) == set(expected) | {
        "it/log_a/ark.json",
        "it/log_c/ark.json",
    }  # no junk, no log_b
    for key, df in expected.items():
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == df.size and head["Metadata"]["sha256"] == df.sha256
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(MiB):
            digest.update(chunk)
        assert digest.hexdigest() == df.sha256
    assert (storage / "log_a" / MANIFEST_NAME).exists()  # remove_after_offload false: nothing removed

    # a second run sends nothing: every object is verified complete and skipped
    again = OffloadEngine(client, bucket, OffloadOptions(prefix="it"))
    again.run(selected)
    assert again.stats.bytes_sent == 0 and again.stats.files_skipped == 5

    table = f"ark_log_catalog_it_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        try:
            catalog.ensure_table(conn, table)
            manifests = sorted(catalog.manifest_keys(client, bucket, "it"))
            assert manifests == ["it/log_a/ark.json", "it/log_c/ark.json"]
            for _ in range(2):  # idempotent
                catalog.upsert(conn, [catalog.row_from_s3(client, bucket, k) for k in manifests], table)
            rows = conn.execute(
                f"SELECT name, size_bytes, file_count, s3_uri, checksums, start_time, duration_s "
                f"FROM {table} ORDER BY name"
            ).fetchall()
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    assert [r[:4] for r in rows] == [
        ("log_a", a.size, 3, f"s3://{bucket}/it/log_a/"),
        ("log_c", c.size, 2, f"s3://{bucket}/it/log_c/"),
    ]
    assert rows[0][4] == {df.path: df.sha256 for df in a.files}
    assert (rows[0][5], rows[0][6]) == (a.start_time, a.duration_s)


def test_removal_only_after_every_object_is_verified(s3, tmp_path: Path) -> None:
    client, bucket = s3
    good = generate_log(tmp_path, "good", [20 * MiB, 1000], seed=1)
    bad = generate_log(tmp_path, "bad", [20 * MiB, 1000], seed=2)
    # corrupt one byte of bad's big file: same size, so the scan accepts it; its sha256 no longer matches
    with open(bad.directory / bad.files[0].path, "r+b") as fh:
        fh.seek(5 * MiB)
        fh.write(b"\xff")
    logs, _ = detect(tmp_path, settle_seconds=0)
    engine = OffloadEngine(client, bucket, OffloadOptions(prefix="rm", remove_after_offload=True))
    results = {r.name: r for r in engine.run(logs)}
    assert results["good"].state == "removed"
    assert not good.directory.exists()
    assert results["bad"].state == "error" and "does not match its manifest sha256" in results["bad"].error
    for df in bad.files:  # partially offloaded: everything kept onboard
        assert (bad.directory / df.path).stat().st_size == df.size
    assert (bad.directory / MANIFEST_NAME).exists()
    assert "rm/bad/ark.json" not in keys(client, bucket)  # not marked complete in S3 either
    assert {"rm/good/ark.json", "rm/good/data/seg-00000.arkd"} <= keys(client, bucket)


def test_killed_run_resumes_and_resends_at_most_the_parts_in_flight(s3, tmp_path: Path) -> None:
    client, bucket = s3
    log = generate_log(tmp_path, "big", [240 * MiB, 30 * MiB, 5000], seed=7)
    total = log.size + log.manifest_size
    concurrency, part = 4, 8 * MiB
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "datamover.ark.offload",
            str(tmp_path),
            "--bucket",
            bucket,
            "--prefix",
            "kill",
            "--concurrency",
            str(concurrency),
            "--events",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    attempted, done = kill_at_fraction(proc, total)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed at 50%"
    assert 0.5 <= done / total < 0.9

    logs, _ = detect(tmp_path, settle_seconds=0)
    engine = OffloadEngine(
        client, bucket, OffloadOptions(prefix="kill", concurrency=concurrency), lean=LeanS3(moto_endpoint())
    )
    results = engine.run(logs)
    stats = engine.stats
    assert results[0].state == "verified"
    assert stats.uploads_resumed >= 1 and stats.parts_reused >= 1
    kept = stats.bytes_reused + stats.bytes_skipped
    assert kept >= done - log.manifest_size  # everything confirmed before the kill was kept
    assert stats.bytes_sent == total - kept  # the rerun sends exactly what S3 did not have
    resent = attempted + stats.bytes_sent - total
    assert 0 <= resent <= concurrency * part, f"re-sent {resent} bytes"
    for df in log.files:
        head = client.head_object(Bucket=bucket, Key=f"kill/big/{df.path}")
        assert head["ContentLength"] == df.size and head["Metadata"]["sha256"] == df.sha256


def test_status_messages_on_kafka_at_half_hertz(s3, tmp_path: Path) -> None:
    client, bucket = s3
    bootstrap = os.environ["DATAMOVER_KAFKA_BOOTSTRAP"]
    topic = f"ark.offload.status.it-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    try:
        generate_log(tmp_path, "slow", [96 * MiB], seed=4)
        logs, _ = detect(tmp_path, settle_seconds=0)
        producer = Producer({"bootstrap.servers": bootstrap})
        progress = Progress.for_logs(logs)
        definition = stream("ark_offload_status")
        offload_id = f"it-{uuid.uuid4().hex[:8]}"

        # One part at a time, each held back 0.6 s by the engine's own listener hook, so the offload
        # lasts >= 7 s (several 2 s status periods) however fast the machine is.
        def slow_down(kind: str, _name: str, _nbytes: int) -> None:
            if kind == "attempt":
                time.sleep(0.6)

        engine = OffloadEngine(
            client,
            bucket,
            OffloadOptions(prefix="st", concurrency=1, max_buffered_parts=1),
            progress=progress,
            listener=slow_down,
        )
        with StatusPublisher(
            progress, definition, lambda k, v: producer.produce(topic, key=k, value=v), offload_id
        ):
            engine.run(logs)
            progress.finish()
        producer.flush(10)

        consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": offload_id, "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([topic])
        events = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                if events and events[-1]["payload"]["state"] == COMPLETE:
                    break
                continue
            events.append(decode(msg.value(), definition))
        consumer.close()
    finally:
        admin.delete_topics([topic])
    ours = [e for e in events if e["correlation"]["offload_id"] == offload_id]
    assert len(ours) >= 4, f"only {len(ours)} status messages"
    percents = [e["payload"]["percent"] for e in ours]
    assert percents == sorted(percents) and percents[-1] == 100.0 and percents[1] < 100.0
    assert ours[-1]["payload"]["state"] == "complete" and json.loads(ours[-1]["payload"]["errors"]) == []
    gaps = [(b["timestamp"] - a["timestamp"]) / 1000 for a, b in itertools.pairwise(ours[:-1])]
    assert gaps and all(1.7 <= g <= 2.3 for g in gaps), gaps  # 0.5 Hz (the final message comes at once)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _private_moto(**env: str) -> tuple[subprocess.Popen[bytes], str]:
    """A moto server of this test's own (so it can check keys, or be killed) and its host:port."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"127.0.0.1:{port}"


@pytest.fixture
def moto_with_auth() -> Iterator[str]:
    """A second moto that checks credentials (the shared one accepts any key)."""
    proc, address = _private_moto(INITIAL_NO_AUTH_ACTION_COUNT="0")
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_endpoint_gone_mid_upload_fails_clearly_and_keeps_everything_local(tmp_path: Path) -> None:
    """The S3 endpoint dies at ~40%: the log fails with a message saying the completed parts are kept
    for the next run, after retries; nothing onboard is removed, even with remove_after_offload."""
    proc, address = _private_moto()
    try:
        log = generate_log(tmp_path, "doomed", [96 * MiB], seed=7)
        before = {
            df.path: hashlib.sha256((log.directory / df.path).read_bytes()).hexdigest() for df in log.files
        }
        endpoint = S3Endpoint(f"http://{address}", access_key="a", secret_key="b")
        client = endpoint.client(retries=2, connect_timeout=2, read_timeout=10)
        client.create_bucket(Bucket="gone")
        logs, _ = detect(tmp_path, settle_seconds=0)
        sent = 0

        def kill_at_40_percent(kind: str, _name: str, nbytes: int) -> None:
            nonlocal sent
            if kind == "sent":
                sent += nbytes
                if sent >= 0.4 * 96 * MiB and proc.poll() is None:
                    proc.kill()

        engine = OffloadEngine(
            client,
            "gone",
            OffloadOptions(prefix="p", concurrency=2, max_buffered_parts=2, remove_after_offload=True),
            listener=kill_at_40_percent,
            lean=LeanS3(endpoint, pool=4, connect_timeout=2, read_timeout=10, max_attempts=3),
        )
        started = time.monotonic()
        [result] = engine.run(logs)
        assert time.monotonic() - started < 120
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert result.state == "error", result
    assert "after retries; completed parts are kept for the next run" in (result.error or "")
    assert _local_digests(log) == before and (log.directory / MANIFEST_NAME).exists()


def _local_digests(log: Any) -> dict[str, str]:
    return {df.path: hashlib.sha256((log.directory / df.path).read_bytes()).hexdigest() for df in log.files}


def test_invalid_credentials_fail_naming_the_connection(moto_with_auth: str) -> None:
    bad = S3Endpoint(
        f"http://{moto_with_auth}", access_key="AKIAEXPIRED000000000", secret_key="nope", label="aws_default"
    )
    with pytest.raises(ConnectionCheckError) as err:
        check_credentials(bad, "ark-logs-rhq")
    assert "Connection 'aws_default'" in str(err.value) and "InvalidClientTokenId" in str(err.value)
    assert "Fix:" in str(err.value)
    missing = S3Endpoint(f"http://{moto_with_auth}", label="aws_default")
    with pytest.raises(ConnectionCheckError, match="no AWS credentials found"):
        check_credentials(missing, "ark-logs-rhq")


def test_dag_with_invalid_credentials_fails_before_any_upload(
    moto_with_auth: str, s3, tmp_path: Path
) -> None:
    client, bucket = s3
    generate_log(tmp_path, f"never_{uuid.uuid4().hex[:6]}", [1000], seed=1)
    conf = {
        "storage_base_path": str(tmp_path),
        "destination_bucket": bucket,
        "server_endpoint": moto_with_auth,
    }
    result = run_airflow("dags", "test", "ark_offload", "--conf", json.dumps(conf))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "credentials refused by STS GetCallerIdentity" in out and "aws_default" in out
    assert "Offloading" not in out  # the offload task never started
    assert keys(client, bucket) == set()


def test_airflow_dags_test_offload_then_catalog(s3, tmp_path: Path) -> None:
    client, bucket = s3
    tag = uuid.uuid4().hex[:6]
    names = [f"it_{tag}_a", f"it_{tag}_b"]
    generate_log(tmp_path, names[0], [18 * MiB, 3000], seed=11)
    generate_log(tmp_path, names[1], [5 * MiB], seed=12)
    generate_junk(tmp_path)
    prefix = f"dagtest-{tag}"
    conf = {
        "storage_base_path": str(tmp_path),
        "destination_bucket": bucket,
        "prefix": prefix,
        "remove_after_offload": True,
        "logs": [names[0]],
    }
    result = run_airflow("dags", "test", "ark_offload", "--conf", json.dumps(conf))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{prefix}/{names[0]}/ark.json" in keys(client, bucket)
    assert not (tmp_path / names[0]).exists()  # removed after verification
    assert (tmp_path / names[1] / MANIFEST_NAME).exists()  # not selected: untouched
    assert (tmp_path / "corrupt_manifest").exists()

    # a manual catalog_ingest (no asset events) ingests the manifests under the prefix
    result = run_airflow(
        "dags",
        "test",
        "catalog_ingest",
        "--conf",
        json.dumps({"destination_bucket": bucket, "prefix": prefix}),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        try:
            rows = conn.execute(
                "SELECT name, file_count, s3_uri FROM ark_log_catalog WHERE name = ANY(%s)", [names]
            ).fetchall()
        finally:
            conn.execute("DELETE FROM ark_log_catalog WHERE name = ANY(%s)", [names])
    assert rows == [(names[0], 2, f"s3://{bucket}/{prefix}/{names[0]}/")]
