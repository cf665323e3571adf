"""egress_sync and log_archival on the CeleryExecutor: 1 worker vs 2 workers (and 1 worker with the
2 workers' slots).

One real deployment (bench/airflow_stack.py: api-server, scheduler, dag-processor, triggerer on a metadata
database of its own) with `executor = CeleryExecutor` and the local Redis broker; the Celery workers are
started per phase. In each phase:
- sync: egress_sync mirrors the same source (moto S3, a bucket of this run) into an emptied Ceph
  destination (`scope=all`, 4 shards, pool `s3_transfers` = 4 slots);
- archival: log_archival archives `--streams` text streams (loaded into a PostgreSQL schema of their own
  before the phase, as the collector stores them) to Ceph, settle delay 0: one mapped sensor and one
  mapped archive task per stream (pool `logdog_archival` = 4 slots).
Both are triggered through the REST API; the figure is the run's duration as Airflow records it
(start -> end), plus the mapped tasks' host names and the CPU seconds of the services. Phases run in
interleaved rounds, best of each.

    python bench/celery_bench.py [--objects 160] [--big 4] [--streams 32] [--stream-mib 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tools import CpuMeter, ceph_pids, cpu_text, machine_line  # noqa: E402

import tests.conftest  # noqa: E402,F401 - the services' environment and AIRFLOW_CONN_* variables
from bench.airflow_stack import AIRFLOW, AirflowStack  # noqa: E402
from bench.log_archival_bench import drop_schema, load_stream, pg_conn, text_stream  # noqa: E402
from datamover.logdog.storage import Collector, ensure_schema  # noqa: E402
from tests.conftest import ceph_client, moto_client  # noqa: E402

MIB = 1024 * 1024
TAG = uuid.uuid4().hex[:8]
SRC, DST = f"celery-bench-src-{TAG}", f"celery-bench-dst-{TAG}"


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


def empty(client: Any, bucket: str, delete: bool = False) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=o["Key"])
    if delete:
        client.delete_bucket(Bucket=bucket)


def start_workers(stack: AirflowStack, count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    workers = []
    for i in range(1, count + 1):
        env = {
            **stack.env,
            "DATAMOVER_WORKER_HOSTNAME": f"bench-worker-{i}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        }
        log = open(stack.home / f"worker-{i}.log", "ab")  # noqa: SIM115 - lives as long as the process
        serve = [] if i == 1 else ["--skip-serve-logs"]
        workers.append(
            subprocess.Popen(
                [AIRFLOW, "celery", "worker", "--celery-hostname", f"bench-{i}-{TAG}@%h", *serve],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    for i in range(1, count + 1):
        deadline = time.time() + 180
        while "ready." not in (stack.home / f"worker-{i}.log").read_text(errors="replace"):
            if time.time() > deadline:
                raise RuntimeError(f"celery worker {i} not ready: see {stack.home}/worker-{i}.log")
            time.sleep(1)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        os.killpg(w.pid, signal.SIGTERM)
    for w in workers:
        try:
            w.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait(10)


def get(stack: AirflowStack, path: str, attempts: int = 10) -> Any:
    """GET, patient with an API server slowed down by a loaded machine."""
    for attempt in range(attempts):
        try:
            return stack.request("GET", path)
        except OSError:  # timeouts and refused connections (URLError is an OSError)
            if attempt == attempts - 1:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


def run_dag(stack: AirflowStack, dag_id: str, conf: dict[str, Any], mapped_task: str) -> dict[str, Any]:
    """Trigger `dag_id`, wait for its end; its duration and the hosts of `mapped_task`'s instances."""
    run_id = stack.trigger(dag_id, conf)
    path = f"dags/{dag_id}/dagRuns/{run_id}"
    while (run := get(stack, path))["state"] not in ("success", "failed"):
        time.sleep(1)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} {run_id} failed: see {stack.home}")
    tis = get(stack, f"{path}/taskInstances?limit=1000")["task_instances"]
    seconds = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    hosts = [t["hostname"] for t in tis if t["task_id"] == mapped_task]
    return {"seconds": seconds, "hosts": {h: hosts.count(h) for h in sorted(set(hosts))}}


def run_sync(stack: AirflowStack) -> dict[str, Any]:
    empty(ceph_client(), DST)
    return run_dag(stack, "egress_sync", {"scope": "all", "shards": 4, "remove_extraneous": False}, "copy")


def load_streams(schema: str, streams: int, size: int) -> int:
    """A fresh schema holding `streams` terminated text streams of `size` bytes; their log data bytes."""
    conn = pg_conn()
    try:
        drop_schema(conn, schema)
        ensure_schema(conn, schema)
        store = Collector(conn, schema)
        rng = random.Random(5)
        total = sum(
            load_stream(store, conn, schema, text_stream(rng, f"streams/s{i:03d}/stdout", size))[1]
            for i in range(streams)
        )
        conn.autocommit = True
        conn.execute(f'VACUUM ANALYZE "{schema}".log_entries')
        return total
    finally:
        conn.close()


def run_archival(stack: AirflowStack, schema: str) -> dict[str, Any]:
    conf = {"schema": schema, "settle_delay_s": 0, "poll_interval_s": 1}
    return run_dag(stack, "log_archival", conf, "stream.archive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--objects", type=int, default=160, help="objects of 1 MiB")
    parser.add_argument("--big", type=int, default=4, help="objects of 32 MiB (multipart)")
    parser.add_argument("--streams", type=int, default=32, help="log streams archived per phase")
    parser.add_argument("--stream-mib", type=float, default=2, help="log data per stream")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine_line(), flush=True)
    src, dst = moto_client(), ceph_client()
    src.create_bucket(Bucket=SRC)
    dst.create_bucket(Bucket=DST)
    total = 0
    for i in range(args.objects):
        src.put_object(Bucket=SRC, Key=f"src/{i:04d}.bin", Body=os.urandom(MIB))
        total += MIB
    for i in range(args.big):
        src.put_object(
            Bucket=SRC,
            Key=f"src/{i * args.objects // max(args.big, 1):04d}-big.bin",
            Body=os.urandom(32 * MIB),
        )
        total += 32 * MIB
    print(f"source: {args.objects} x 1 MiB + {args.big} x 32 MiB = {total / MIB:.0f} MiB", flush=True)
    schema = f"logdog_celery_bench_{TAG}"
    stack = AirflowStack(
        ROOT / ".state" / "bench-celery" / "airflow",
        [ROOT / "dags" / "egress_sync.py", ROOT / "dags" / "log_archival.py"],
        extra_env={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "datamover.deploy.worker_hostname",
            "AIRFLOW_CONN_EGRESS_INPUT": aws_conn("moto", f"{SRC}/src"),
            "AIRFLOW_CONN_EGRESS_OUTPUT": aws_conn("ceph", f"{DST}/dst"),
        },
    )
    phases = {"1 worker x 2 slots": (1, 2), "2 workers x 2 slots": (2, 2), "1 worker x 4 slots": (1, 4)}
    best: dict[tuple[str, str], dict[str, Any]] = {}
    print("starting Airflow (api-server, scheduler, dag-processor, triggerer), CeleryExecutor", flush=True)
    stack.start()
    log_bytes = 0
    try:
        stack.wait_for_dags(["egress_sync", "log_archival"])
        stack.set_paused("egress_sync", False)
        stack.set_paused("log_archival", False)
        for r in range(args.rounds):
            for name, (count, slots) in phases.items():
                log_bytes = load_streams(schema, args.streams, int(args.stream_mib * MIB))
                workers = start_workers(stack, count, slots)
                try:
                    for workload, run, size in (
                        ("sync", lambda: run_sync(stack), total),
                        ("archival", lambda: run_archival(stack, schema), log_bytes),
                    ):
                        meter = CpuMeter(ceph_pids()).start()
                        result = run()
                        result["cpu"] = meter.stop()
                        result["bytes"] = size
                        print(
                            f"round {r + 1} {name} {workload}: {result['seconds']:.1f} s, "
                            f"{size / MIB / result['seconds']:.1f} MiB/s, tasks per host {result['hosts']}; "
                            f"{cpu_text(result['cpu'])}",
                            flush=True,
                        )
                        key = (workload, name)
                        if key not in best or result["seconds"] < best[key]["seconds"]:
                            best[key] = result
                finally:
                    stop_workers(workers)
    finally:
        stack.stop()
        empty(src, SRC, delete=True)
        empty(dst, DST, delete=True)
        conn = pg_conn()
        drop_schema(conn, schema)
        conn.close()
    for workload, what in (
        ("sync", f"egress_sync, {total / MIB:.0f} MiB in 4 shards"),
        ("archival", f"log_archival, {args.streams} streams, {log_bytes / MIB:.0f} MiB of log data"),
    ):
        base = best[(workload, "1 worker x 2 slots")]["seconds"]
        print(f"\nbest of each ({what}; run start -> end):")
        for name in phases:
            seconds = best[(workload, name)]["seconds"]
            rate = best[(workload, name)]["bytes"] / MIB / seconds
            ratio = base / seconds
            print(f"  {name:22s} {seconds:6.1f} s  {rate:6.1f} MiB/s  x{ratio:.2f} vs 1 worker x 2 slots")


if __name__ == "__main__":
    main()
