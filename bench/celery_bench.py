"""egress_sync on the CeleryExecutor: 1 worker vs 2 workers (and 1 worker with the 2 workers' slots).

One real deployment (bench/airflow_stack.py: api-server, scheduler, dag-processor, triggerer on a metadata
database of its own) with `executor = CeleryExecutor` and the local Redis broker; the Celery workers are
started per phase. Each phase mirrors the same source (moto S3, a bucket of this run) into an emptied
Ceph destination with egress_sync (`scope=all`, 4 shards, pool `s3_transfers` = 4 slots), triggered
through the REST API; the figure is the run's duration as Airflow records it (start -> end), plus the
copy tasks' host names and the CPU seconds of the services. Phases run in interleaved rounds, best of each.

    python bench/celery_bench.py [--objects 160] [--big 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_sync(stack: AirflowStack) -> dict[str, Any]:
    empty(ceph_client(), DST)
    run_id = stack.trigger("egress_sync", {"scope": "all", "shards": 4, "remove_extraneous": False})
    path = f"dags/egress_sync/dagRuns/{run_id}"
    while (run := get(stack, path))["state"] not in ("success", "failed"):
        time.sleep(1)
    if run["state"] != "success":
        raise RuntimeError(f"egress_sync {run_id} failed: see {stack.home}")
    tis = get(stack, f"{path}/taskInstances?limit=100")["task_instances"]
    seconds = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    copy_hosts = sorted(t["hostname"] for t in tis if t["task_id"] == "copy")
    return {"seconds": seconds, "hosts": copy_hosts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--objects", type=int, default=160, help="objects of 1 MiB")
    parser.add_argument("--big", type=int, default=4, help="objects of 32 MiB (multipart)")
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
    stack = AirflowStack(
        ROOT / ".state" / "bench-celery" / "airflow",
        [ROOT / "dags" / "egress_sync.py"],
        extra_env={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "datamover.deploy.worker_hostname",
            "AIRFLOW_CONN_EGRESS_INPUT": aws_conn("moto", f"{SRC}/src"),
            "AIRFLOW_CONN_EGRESS_OUTPUT": aws_conn("ceph", f"{DST}/dst"),
        },
    )
    phases = {"1 worker x 2 slots": (1, 2), "2 workers x 2 slots": (2, 2), "1 worker x 4 slots": (1, 4)}
    best: dict[str, dict[str, Any]] = {}
    print("starting Airflow (api-server, scheduler, dag-processor, triggerer), CeleryExecutor", flush=True)
    stack.start()
    try:
        stack.wait_for_dags(["egress_sync"])
        stack.set_paused("egress_sync", False)
        for r in range(args.rounds):
            for name, (count, slots) in phases.items():
                workers = start_workers(stack, count, slots)
                try:
                    meter = CpuMeter(ceph_pids()).start()
                    result = run_sync(stack)
                    result["cpu"] = meter.stop()
                finally:
                    stop_workers(workers)
                print(
                    f"round {r + 1} {name}: {result['seconds']:.1f} s, "
                    f"{total / MIB / result['seconds']:.1f} MiB/s, copy shards on {result['hosts']}; "
                    f"{cpu_text(result['cpu'])}",
                    flush=True,
                )
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
    finally:
        stack.stop()
        empty(src, SRC, delete=True)
        empty(dst, DST, delete=True)
    base = best["1 worker x 2 slots"]["seconds"]
    print("\nbest of each (egress_sync run, start -> end):")
    for name, result in best.items():
        print(
            f"  {name:22s} {result['seconds']:6.1f} s  {total / MIB / result['seconds']:6.1f} MiB/s  "
            f"x{base / result['seconds']:.2f} vs 1 worker x 2 slots"
        )


if __name__ == "__main__":
    main()
