"""The CeleryExecutor deployment (`make standalone-celery`) under test: the real api-server, scheduler,
dag-processor and triggerer with `executor = CeleryExecutor`, the local Redis broker and two
`airflow celery worker` processes with distinct hostnames. egress_sync with 4 shards, ark_offload with
several logs and log_archival with many streams run through the real scheduler on both workers; the
results equal what the same code writes in one process (what a LocalExecutor task runs): the same keys,
sizes and ETags; the archives equal what LogDog's own code writes."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from datamover.ark.format import detect
from datamover.ark.offload import OffloadEngine, OffloadOptions
from datamover.ark.progress import Progress
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.archive import IndexRules
from datamover.logdog.storage import ensure_schema
from datamover.mirror.engine import Mirror, MirrorOptions, Side
from datamover.s3 import S3Path
from tests.conftest import ceph_client, deployment_config, moto_client, services_env
from tests.e2e.conftest import AIRFLOW, AirflowStack, deployment, offload_config, wait_for
from tests.integration.logdog.helpers import check_archive, store_messages
from tests.logdog.butlers import butler_messages
from tests.logdog.streams import SAMPLES
from tests.support.ark_samples import generate_log

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
WORKERS = ("datamover-worker-1", "datamover-worker-2")
COPIES = 3  # log_archival: streams per sample kind


def aws_conn(service: str, path: str) -> str:
    kind = "S3" if service == "moto" else "CEPH"
    endpoint = os.environ["DATAMOVER_S3_ENDPOINT" if service == "moto" else "DATAMOVER_CEPH_ENDPOINT"]
    extra = {"endpoint_url": endpoint, "region_name": "us-east-1", "path": path}
    return json.dumps(
        {
            "conn_type": "aws",
            "login": os.environ[f"DATAMOVER_{kind}_ACCESS_KEY"],
            "password": os.environ[f"DATAMOVER_{kind}_SECRET_KEY"],
            "extra": extra,
        }
    )


def tree(client: Any, bucket: str, prefix: str = "") -> dict[str, tuple[int, str]]:
    """relative key -> (size, ETag) under bucket/prefix."""
    out: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix) :]] = (o["Size"], o["ETag"])
    return out


def drop_bucket(client: Any, bucket: str) -> None:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=o["Key"])
        client.delete_bucket(Bucket=bucket)
    except Exception as exc:  # a bucket the failed test never created
        print(f"cleanup of {bucket}: {exc}")


class CeleryStack(AirflowStack):
    tag: str = ""
    source_bucket: str = ""
    dest_bucket: str = ""

    def hostnames(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {f"{t['task_id']}[{t['map_index']}]": t["hostname"] for t in tis["task_instances"]}


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    tag = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("celery")
    storage = work / "ark_logs"
    storage.mkdir()
    ark_bucket, source_bucket, dest_bucket = f"celery-ark-{tag}", f"celery-src-{tag}", f"celery-dst-{tag}"
    config_env = deployment_config(
        work / "config",
        ark_offload=offload_config(storage, ark_bucket),
    )
    celery_env = {
        # what scripts/standalone-celery sets
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "datamover.deploy.worker_hostname",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # a task whose worker died is failed (and retried elsewhere) after a minute without heartbeats,
        # not five; a task stuck queued on a dead worker is re-queued after 3 minutes
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
        # this test's own mirror ends (environment connections win over the metadata DB's)
        "AIRFLOW_CONN_EGRESS_INPUT": aws_conn("moto", f"{source_bucket}/src"),
        "AIRFLOW_CONN_EGRESS_OUTPUT": aws_conn("ceph", f"{dest_bucket}/dst"),
    }
    broker = services_env({}).get("AIRFLOW__CELERY__BROKER_URL", "")
    assert broker.startswith("redis://"), "no broker in the services' environment"
    with socket.socket() as s:  # the broker must be up: fail, never skip
        host, _, broker_port = broker.split("//", 1)[1].split("/", 1)[0].rpartition(":")
        assert s.connect_ex((host, int(broker_port))) == 0, "Redis is down: bash scripts/services up redis"
    try:
        with deployment(work, config_env, storage, ark_bucket, celery_env, CeleryStack) as stack:
            stack.tag, stack.source_bucket, stack.dest_bucket = tag, source_bucket, dest_bucket
            for i, hostname in enumerate(WORKERS, 1):
                serve = [] if i == 1 else ["--skip-serve-logs"]
                command = [AIRFLOW, "celery", "worker", "--celery-hostname", f"worker-{i}-{tag}@%h", *serve]
                stack.start(f"worker-{i}", command, {"DATAMOVER_WORKER_HOSTNAME": hostname})
            for i in (1, 2):
                wait_for(
                    lambda i=i: "ready." in stack.component_log(f"worker-{i}"),
                    120,
                    f"celery worker {i} to be ready",
                    lambda i=i: stack.component_log(f"worker-{i}")[-2000:],
                )
            yield stack
    finally:
        drop_bucket(moto_client(), source_bucket)
        drop_bucket(moto_client(), ark_bucket)
        for bucket in (dest_bucket, f"{dest_bucket}-ref"):
            drop_bucket(ceph_client(), bucket)


def test_sync_with_four_shards_and_offload_of_several_logs_run_on_both_workers(
    celery_stack: CeleryStack,
) -> None:
    stack = celery_stack
    # the mirror's source: small objects in every shard's key range, and multipart ones (ETag "-N")
    src = moto_client()
    src.create_bucket(Bucket=stack.source_bucket)
    for i in range(48):
        src.put_object(Bucket=stack.source_bucket, Key=f"src/{i:02d}/obj-{i}.bin", Body=os.urandom(1000 + i))
    for i in (7, 31):
        key = f"src/{i:02d}/big-{i}.bin"
        upload = src.create_multipart_upload(Bucket=stack.source_bucket, Key=key)
        parts = [
            {
                "PartNumber": n,
                "ETag": src.upload_part(
                    Bucket=stack.source_bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    PartNumber=n,
                    Body=os.urandom(5 * MIB if n == 1 else 1 * MIB),
                )["ETag"],
            }
            for n in (1, 2)
        ]
        src.complete_multipart_upload(
            Bucket=stack.source_bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
    names = [f"cel_{stack.tag}_{c}" for c in "abc"]
    for n, name in enumerate(names):
        generate_log(stack.storage, name, [9 * MIB + n, 20_000 + n], seed=40 + n)

    for dag_id in ("egress_sync", "ark_offload"):
        stack.unpause(dag_id)
    sync_run = stack.trigger("egress_sync", stack.form_conf("egress_sync", scope="all", shards=4))
    offload_run = stack.trigger("ark_offload", stack.form_conf("ark_offload"))
    sync = stack.wait_run("egress_sync", sync_run, timeout=420)
    offload = stack.wait_run("ark_offload", offload_run, timeout=420)
    assert sync["state"] == "success", stack.task_states("egress_sync", sync_run)
    assert offload["state"] == "success", stack.task_states("ark_offload", offload_run)

    sync_hosts = stack.hostnames("egress_sync", sync_run)
    assert sum(k.startswith("copy[") for k in sync_hosts) == 4  # four shards, four mapped tasks
    hosts = set(sync_hosts.values()) | set(stack.hostnames("ark_offload", offload_run).values())
    assert hosts == set(WORKERS), (sync_hosts, hosts)  # every task ran on a Celery worker, both were used

    # egress_sync: the destination equals the source, and what the same mirror writes in one process
    mirrored = tree(ceph_client(), stack.dest_bucket, "dst/")
    source = tree(src, stack.source_bucket, "src/")
    assert mirrored == source and len(source) == 50
    assert sum(etag.endswith('-2"') for _, etag in mirrored.values()) == 2  # multipart layout kept
    ceph = ceph_client()
    ceph.create_bucket(Bucket=f"{stack.dest_bucket}-ref")
    reference = Mirror(
        Side(src, S3Path(stack.source_bucket, "src"), "egress_input", "input"),
        Side(ceph, S3Path(f"{stack.dest_bucket}-ref", "dst"), "egress_output", "output"),
        MirrorOptions(),
    ).run()
    assert not reference.failed
    assert tree(ceph, f"{stack.dest_bucket}-ref", "dst/") == mirrored

    # ark_offload: every log in S3, equal to a one-process offload of the same logs
    offloaded = tree(src, stack.ark_bucket, "logs/")
    assert {k.split("/", 1)[0] for k in offloaded} == set(names)
    logs, _ = detect(stack.storage, settle_seconds=0)
    engine = OffloadEngine(
        src,
        stack.ark_bucket,
        OffloadOptions(prefix="ref", concurrency=10, min_part_size=8 * MIB),
        progress=Progress.for_logs(logs),
    )
    assert {r.state for r in engine.run(logs)} == {"verified"}
    assert tree(src, stack.ark_bucket, "ref/") == offloaded


def test_log_archival_of_many_streams_runs_on_both_workers(celery_stack: CeleryStack, tmp_path: Path) -> None:
    stack = celery_stack
    schema = f"logdog_celery_{stack.tag}"
    conn = PostgresHook("logdog_postgres").connect()
    ensure_schema(conn, schema)
    # every complete sample stream (text with partial lines, binary, datagram, tags, a negative time) three
    # times, under prefixes of this run; incomplete ones (a gap, entries from 2**40, an empty stream whose
    # terminal index is 0) would wait for the completeness threshold
    names = [name for name in SAMPLES if name not in ("text-gap", "big-indices", "empty")]
    messages = []
    for copy in range(COPIES):
        for name in names:
            stream = SAMPLES[name]()
            stream.desc.prefix, stream.desc.name = f"celery/{stack.tag}/{copy}", f"steps/{name}"
            messages += butler_messages(stream, per_bundle=3)
    store_messages(conn, schema, messages)  # what log_collector stores; it runs in the scheduler-path tests

    stack.unpause("log_archival")
    conf = stack.form_conf("log_archival", schema=schema, settle_delay_s=0, poll_interval_s=1)
    run_id = stack.trigger("log_archival", conf)
    run = stack.wait_run("log_archival", run_id, timeout=600)
    assert run["state"] == "success", stack.task_states("log_archival", run_id)

    hosts = stack.hostnames("log_archival", run_id)
    archived_on = {k: h for k, h in hosts.items() if k.startswith("stream.archive[")}
    assert len(archived_on) == COPIES * len(names), hosts  # one mapped archive task per stream
    assert set(hosts.values()) == set(WORKERS), hosts  # both workers took streams

    rows = conn.execute(
        f'SELECT path, state, entries_url, index_url, data_url FROM "{schema}".log_streams ORDER BY path'
    ).fetchall()
    conn.commit()
    assert len(rows) == COPIES * len(names) and {r[1] for r in rows} == {"archived"}, rows
    client = ObjectStoreHook("logdog_archive").client()
    for i, (_path, _state, entries_url, index_url, data_url) in enumerate(rows):
        outcome = {"entries_url": entries_url, "index_url": index_url, "data_url": data_url}
        check_archive(client, outcome, IndexRules(), tmp_path / str(i))  # byte for byte as LogDog writes
    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.commit()
    conn.close()


def tree_of(pid: int) -> list[psutil.Process]:
    """The worker and every process under it (Airflow's task processes run in process groups of their own)."""
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def freeze(pid: int) -> list[psutil.Process]:
    """SIGSTOP the worker's whole tree (twice: a process forked meanwhile is caught the second time)."""
    frozen: dict[int, psutil.Process] = {}
    for _ in range(2):
        for proc in tree_of(pid):
            if proc.pid not in frozen:
                proc.send_signal(signal.SIGSTOP)
                frozen[proc.pid] = proc
    return list(frozen.values())


def test_a_worker_killed_mid_run_leaves_its_shard_to_the_other_after_a_retry(
    celery_stack: CeleryStack,
) -> None:
    stack = celery_stack
    src = moto_client()
    for i in range(0, 48, 2):  # new work in every shard's key range
        src.put_object(Bucket=stack.source_bucket, Key=f"src/{i:02d}/new-{i}.bin", Body=os.urandom(MIB))
    run_id = stack.trigger("egress_sync", stack.form_conf("egress_sync", scope="all", shards=4))

    victim: tuple[str, int] | None = None  # (hostname, map index) of the copy task we cut off
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        tis = stack.api("GET", f"/dags/egress_sync/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        running = [
            t
            for t in tis["task_instances"]
            if t["task_id"] == "copy" and t["state"] == "running" and t["hostname"] in WORKERS
        ]
        if not running:
            state = stack.run("egress_sync", run_id)["state"]
            assert state in ("queued", "running"), f"the run ended ({state}) before any kill"
            time.sleep(0.3)
            continue
        ti = running[0]
        worker = f"worker-{WORKERS.index(ti['hostname']) + 1}"
        frozen = freeze(stack.processes[worker].pid)
        path = f"/dags/egress_sync/dagRuns/{run_id}/taskInstances/copy/{ti['map_index']}"
        if stack.api("GET", path)["state"] == "running":  # frozen mid-run: it cannot finish there now
            for proc in frozen:
                proc.send_signal(signal.SIGKILL)
            victim = (ti["hostname"], ti["map_index"])
        else:  # it finished between our look and the freeze: let that worker go on, try the next task
            for proc in frozen:
                proc.send_signal(signal.SIGCONT)
    assert victim is not None, "no copy task was caught running on a worker"
    killed_host, index = victim
    survivor = next(w for w in WORKERS if w != killed_host)

    done = stack.wait_run("egress_sync", run_id, timeout=600)
    assert done["state"] == "success", stack.task_states("egress_sync", run_id)
    ti = stack.api("GET", f"/dags/egress_sync/dagRuns/{run_id}/taskInstances/copy/{index}")
    assert ti["state"] == "success" and ti["try_number"] >= 2 and ti["hostname"] == survivor, ti
    # nothing lost, nothing duplicated, nothing half-written
    assert tree(ceph_client(), stack.dest_bucket, "dst/") == tree(src, stack.source_bucket, "src/")
    assert len(tree(src, stack.source_bucket, "src/")) == 74
    pending = ceph_client().list_multipart_uploads(Bucket=stack.dest_bucket).get("Uploads", [])
    assert pending == []
