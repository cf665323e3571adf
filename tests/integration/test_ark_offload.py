"""Ark Log offload against the real local services: moto (S3 + STS), Kafka, PostgreSQL, Airflow CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
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
from datamover.ark.format import MANIFEST_NAME, detect
from datamover.ark.offload import MiB, OffloadEngine, OffloadOptions
from datamover.ark.progress import COMPLETE, Progress, StatusPublisher
from datamover.errors import ConnectionCheckError, CredentialsError
from datamover.hooks.s3 import ObjectStoreHook
from datamover.streams.definition import decode, stream
from tests.conftest import (
    aws_connection,
    define_connection,
    deployment_config,
    moto_client,
    run_airflow,
    tests_metadata_db,
)
from tests.support.ark_samples import generate_junk, generate_log
from tests.support.offload_cli import kill_at_fraction

pytestmark = pytest.mark.integration


def empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


@pytest.fixture
def s3() -> Iterator[tuple[Any, str]]:
    client = moto_client()
    bucket = f"ark-it-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    empty_bucket(client, bucket)  # moto keeps objects in RAM
    client.delete_bucket(Bucket=bucket)


def keys(client: Any, bucket: str) -> set[str]:
    out: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out |= {o["Key"] for o in page.get("Contents", [])}
    return out


def ark_env(tmp_path: Path, storage: Path, bucket: str, **config: Any) -> dict[str, str]:
    """A deployment config whose ark_offload.yaml points at `storage` and `bucket`."""
    doc = {"config": {"storage_base_path": str(storage), "destination_bucket": bucket, **config}}
    return deployment_config(tmp_path / "config", ark_offload=doc)


def failed_fast(out: str) -> bool:
    """The task failed without using its retries (AirflowFailException), as `airflow dags test` logs it."""
    return "up_for_retry" not in out.lower() and "AirflowFailException" in out


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

    engine = OffloadEngine(client, bucket, OffloadOptions(prefix="it"), progress=Progress.for_logs(selected))
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
    assert results["bad"].permanent  # corrupt local data: retrying cannot help
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
    command = [sys.executable, "-m", "tests.support.offload_cli", str(tmp_path), "--bucket", bucket]
    proc = subprocess.Popen(
        [*command, "--prefix", "kill", "--concurrency", str(concurrency), "--events"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    attempted, done = kill_at_fraction(proc, total)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed at 50%"
    assert 0.5 <= done / total < 0.9

    logs, _ = detect(tmp_path, settle_seconds=0)
    engine = OffloadEngine(client, bucket, OffloadOptions(prefix="kill", concurrency=concurrency))
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
        before = _local_digests(log)
        hook = ObjectStoreHook(aws_connection("ark_doomed_s3", endpoint_url=f"http://{address}"))
        client = hook.client(pool=4, retries=2, connect_timeout=2, read_timeout=10)
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
        )
        [result] = engine.run(logs)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert result.state == "error" and not result.permanent, result  # the endpoint may come back
    assert "after retries; completed parts are kept for the next run" in (result.error or "")
    assert _local_digests(log) == before and (log.directory / MANIFEST_NAME).exists()


def _local_digests(log: Any) -> dict[str, str]:
    return {df.path: hashlib.sha256((log.directory / df.path).read_bytes()).hexdigest() for df in log.files}


def test_invalid_credentials_fail_naming_the_connection(moto_with_auth: str) -> None:
    url = f"http://{moto_with_auth}"
    bad = aws_connection("ark_expired", endpoint_url=url, login="AKIAEXPIRED000000000", password="nope")
    with pytest.raises(CredentialsError) as err:
        check_credentials(ObjectStoreHook(bad), "ark-logs-rhq")
    assert "Connection 'ark_expired'" in str(err.value) and "InvalidClientTokenId" in str(err.value)
    assert "Fix:" in str(err.value)
    anonymous = define_connection(
        "ark_no_keys", "aws", extra={"endpoint_url": url, "region_name": "us-east-1"}
    )
    env_keys = {
        k: os.environ.pop(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k in os.environ
    }
    try:
        with pytest.raises(CredentialsError, match="no AWS credentials found"):
            check_credentials(ObjectStoreHook(anonymous), "ark-logs-rhq")
    finally:
        os.environ.update(env_keys)
    with pytest.raises(ConnectionCheckError) as err:  # unreachable: not permanent, worth a retry
        check_credentials(
            ObjectStoreHook(aws_connection("ark_nowhere", endpoint_url="http://127.0.0.1:9")), "b"
        )
    assert not isinstance(err.value, CredentialsError) and "cannot reach" in str(err.value)


def test_role_arn_assumes_the_role_through_sts(s3) -> None:
    """A provider `aws` connection with role_arn: the hook assumes the role (moto's STS) and uses the
    temporary credentials it gets, as on a real deployment."""
    client, bucket = s3
    url = os.environ["DATAMOVER_S3_ENDPOINT"]
    conn = aws_connection(
        "ark_assume_role",
        role_arn="arn:aws:iam::123456789012:role/datamover-offload",
        assume_role_kwargs={"RoleSessionName": "datamover-test"},
        service_config={"sts": {"endpoint_url": url}},
    )
    hook = ObjectStoreHook(conn)
    identity = hook.sts_client().get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/datamover-offload/")
    frozen = hook.get_session().get_credentials().get_frozen_credentials()
    assert frozen.token and frozen.access_key != os.environ["DATAMOVER_S3_ACCESS_KEY"]  # temporary keys
    hook.client().put_object(Bucket=bucket, Key="via-role", Body=b"x")
    assert "via-role" in keys(client, bucket)


def test_verify_reaches_the_client_as_a_ca_bundle_path(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    hook = ObjectStoreHook(aws_connection("ark_ca_bundle", verify=str(bundle)))
    client = hook.client()
    assert hook.verify == str(bundle)
    assert client._endpoint.http_session._verify == str(bundle)  # what botocore hands to urllib3


def test_dag_with_invalid_credentials_fails_before_any_upload(
    moto_with_auth: str, s3, tmp_path: Path
) -> None:
    client, bucket = s3
    storage = tmp_path / "logs"
    generate_log(storage, f"never_{uuid.uuid4().hex[:6]}", [1000], seed=1)
    env = ark_env(tmp_path, storage, bucket, server_endpoint=moto_with_auth)
    result = run_airflow("dags", "test", "ark_offload", env=env)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "credentials refused by STS GetCallerIdentity" in out and "aws_default" in out
    assert failed_fast(out)  # at once: no retries with backoff
    assert "Offloading" not in out  # the offload task never started
    assert keys(client, bucket) == set()


def test_airflow_dags_test_offload_then_catalog(s3, tmp_path: Path) -> None:
    client, bucket = s3
    tag = uuid.uuid4().hex[:6]
    names = [f"it_{tag}_a", f"it_{tag}_b"]
    storage = tmp_path / "logs"
    generate_log(storage, names[0], [18 * MiB, 3000], seed=11)
    generate_log(storage, names[1], [5 * MiB], seed=12)
    generate_junk(storage)
    prefix = f"dagtest-{tag}"
    env = ark_env(tmp_path, storage, bucket, prefix=prefix, remove_after_offload=True)
    result = run_airflow("dags", "test", "ark_offload", "--conf", json.dumps({"logs": [names[0]]}), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{prefix}/{names[0]}/ark.json" in keys(client, bucket)
    assert not (storage / names[0]).exists()  # removed after verification
    assert (storage / names[1] / MANIFEST_NAME).exists()  # not selected: untouched
    assert (storage / "corrupt_manifest").exists()

    # a manual catalog_ingest (no asset events) ingests the manifests under the configured prefix
    result = run_airflow("dags", "test", "catalog_ingest", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        try:
            rows = conn.execute(
                "SELECT name, file_count, s3_uri FROM ark_log_catalog WHERE name = ANY(%s)", [names]
            ).fetchall()
        finally:
            conn.execute("DELETE FROM ark_log_catalog WHERE name = ANY(%s)", [names])
    assert rows == [(names[0], 2, f"s3://{bucket}/{prefix}/{names[0]}/")]


def test_one_corrupt_log_fails_the_run_at_once_and_the_others_get_their_events(s3, tmp_path: Path) -> None:
    """A sha256 mismatch against the manifest cannot heal: no retry, no re-upload loop; the run fails
    naming the log, and the verified log still gets its asset event."""
    client, bucket = s3
    storage = tmp_path / "logs"
    generate_log(storage, "fine", [6 * MiB], seed=21)
    bad = generate_log(storage, "corrupt", [30 * MiB], seed=22)
    with open(bad.directory / bad.files[0].path, "r+b") as fh:
        fh.seek(MiB)
        fh.write(b"\x00")
    env = ark_env(tmp_path, storage, bucket)
    result = run_airflow("dags", "test", "ark_offload", env=env)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "1 log(s) offloaded and verified in S3 (fine kept locally)" in out
    assert "1 failed" in out and "corrupt: data/seg-00000.arkd: IntegrityError: local file" in out
    assert "does not match its manifest" in out
    assert failed_fast(out)
    assert "end task task_id=register_log map_index=0" in out and "register_log map_index=1" not in out
    assert "logs/fine/ark.json" in keys(client, bucket) and "logs/corrupt/ark.json" not in keys(
        client, bucket
    )


def test_unknown_log_name_fails_at_once_listing_the_logs_found(s3, tmp_path: Path) -> None:
    client, bucket = s3
    storage = tmp_path / "logs"
    generate_log(storage, "present", [1000], seed=31)
    env = ark_env(tmp_path, storage, bucket)
    result = run_airflow("dags", "test", "ark_offload", "--conf", json.dumps({"logs": ["presnet"]}), env=env)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and failed_fast(out)
    assert "'presnet' (not found)" in out and "Ark Logs found: present" in out
    assert keys(client, bucket) == set()


def test_a_killed_offload_is_rerun_and_reported_truthfully(s3, tmp_path: Path) -> None:
    """SIGKILL mid-offload with remove_after_offload, then the same run again: the logs the first run
    offloaded and removed count as offloaded (found verified in S3) and get their events; nothing is
    reported as failed that is not."""
    client, bucket = s3
    storage = tmp_path / "logs"
    names = [f"kill_{i}" for i in range(4)]
    for i, (name, size) in enumerate(zip(names, (6, 12, 64, 96), strict=True)):  # done one after another
        generate_log(storage, name, [size * MiB], seed=40 + i)
    env = ark_env(tmp_path, storage, bucket, remove_after_offload=True)
    conf = json.dumps({"logs": names})
    tests_metadata_db()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "ark_offload", "--conf", conf],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and sum(not (storage / n).exists() for n in names) < 1:
            time.sleep(0.05)
        assert proc.poll() is None, "the first run ended before any log was removed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    removed = [n for n in names if not (storage / n).exists()]
    assert 1 <= len(removed) < len(names), removed
    result = run_airflow("dags", "test", "ark_offload", "--conf", conf, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    for name in removed:
        assert f"{name}: offloaded by an earlier run" in out
    assert f"{len(names)} log(s) offloaded and verified in S3 ({', '.join(names)} removed locally)" in out
    assert {f"logs/{n}/ark.json" for n in names} <= keys(client, bucket)
    assert not any((storage / n).exists() for n in names)
    assert len(re.findall(r"end task task_id=register_log map_index=\d", out)) == len(names)


def test_kafka_down_the_offload_completes_with_one_warning(s3, tmp_path: Path, root: Path) -> None:
    """The status stream is a side channel: with the real broker stopped, the offload still moves every
    byte, and one warning names the connection and counts what was dropped."""
    client, bucket = s3
    storage = tmp_path / "logs"
    generate_log(storage, "while_kafka_is_down", [12 * MiB, 4000], seed=51)
    env = ark_env(tmp_path, storage, bucket)
    services = ["bash", str(root / "scripts" / "services")]
    subprocess.run([*services, "down", "kafka"], check=True, capture_output=True)
    try:
        result = run_airflow("dags", "test", "ark_offload", env=env)
    finally:
        subprocess.run([*services, "up", "kafka"], check=True, capture_output=True)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "logs/while_kafka_is_down/ark.json" in keys(client, bucket)
    assert "via connection 'kafka_default' (127.0.0.1:59092) are not getting through" in out
    assert re.search(r"\d+ event\(s\) for topic 'ark.offload.status' via connection 'kafka_default'", out)
    assert out.count("Connection refused") < 20, "librdkafka's log is not rate-limited"
