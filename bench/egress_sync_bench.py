"""egress_sync benchmark: this mirror engine vs `rclone sync` and `s5cmd`, moto S3 -> Ceph RGW.

Cases, one run side by side on the same endpoints:
  (a) 2,000 objects of 256 KiB   (b) 4 objects of 256 MiB   (c) no-op resync of 10,000 mirrored objects
(a)/(b) run in interleaved rounds (rotating order, best of each tool). Every tool starts from an
empty destination, which is emptied again afterwards (Ceph's memstore lives in RAM). s5cmd talks to one
endpoint per invocation, so it is measured as download to a local temp dir + upload (sum of both).
(c) compares the engine's no-op resync with the time to just list both sides (paginated ListObjectsV2,
no processing); rclone --checksum is shown for reference.

    python bench/egress_sync_bench.py [--cases a,b,c] [--scale 1.0] [--rounds 3]
Needs `scripts/services env` in the environment, rclone on PATH and .venv/bin/s5cmd.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_tools import services
from boto3.s3.transfer import TransferConfig

from datamover.mirror.engine import Mirror, MirrorOptions, Side
from datamover.s3client import S3Endpoint, S3Path

MIB = 1024 * 1024
SRC_BUCKET, DST_BUCKET = "sync-bench-src", "sync-bench-dst"
VENV_BIN = Path(sys.executable).parent


def endpoints() -> tuple[S3Endpoint, S3Endpoint]:
    env = os.environ
    try:
        src = S3Endpoint(
            env["DATAMOVER_S3_ENDPOINT"],
            access_key=env["DATAMOVER_S3_ACCESS_KEY"],
            secret_key=env["DATAMOVER_S3_SECRET_KEY"],
            label="moto",
        )
        dst = S3Endpoint(
            env["DATAMOVER_CEPH_ENDPOINT"],
            access_key=env["DATAMOVER_CEPH_ACCESS_KEY"],
            secret_key=env["DATAMOVER_CEPH_SECRET_KEY"],
            label="ceph",
        )
    except KeyError as exc:
        sys.exit(f'missing {exc}: run with `eval "$(bash scripts/services env)"` first')
    return src, dst


def ensure_bucket(client, bucket: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:
        client.create_bucket(Bucket=bucket)


def clear(client, bucket: str, prefix: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for up in client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", ()):
        client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])


def clear_destination(client, prefix: str) -> None:
    """Empty the Ceph side and run RGW garbage collection at once: memstore holds deleted objects in
    RAM until GC, and the rounds rewrite many GB within minutes."""
    clear(client, DST_BUCKET, prefix)
    services("ceph-gc")


def listing(client, bucket: str, prefix: str) -> tuple[int, int]:
    n = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            n += 1
            size += o["Size"]
    return n, size


def seed(client, prefix: str, count: int, size: int) -> None:
    if listing(client, SRC_BUCKET, prefix) == (count, count * size):
        return
    clear(client, SRC_BUCKET, prefix)
    blob = os.urandom(size)
    cfg = TransferConfig(multipart_threshold=16 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8)

    def put(i: int) -> None:
        body = i.to_bytes(8, "big") + blob[8:]  # distinct contents per object
        client.upload_fileobj(io.BytesIO(body), SRC_BUCKET, f"{prefix}obj-{i:06d}.bin", Config=cfg)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


_SIDES: dict[str, tuple[Side, Side]] = {}


def warm_engine(src: S3Endpoint, dst: S3Endpoint, prefix: str) -> None:
    """Make the engine's clients before timing (the CLI tools' start-up is timed, ~10 ms for Go)."""
    if prefix not in _SIDES:
        _SIDES[prefix] = (
            Side.connect(src, S3Path(SRC_BUCKET, prefix.rstrip("/")), "input"),
            Side.connect(dst, S3Path(DST_BUCKET, prefix.rstrip("/")), "output"),
        )


def run_engine(src: S3Endpoint, dst: S3Endpoint, prefix: str, workers: int = 32) -> None:
    warm_engine(src, dst, prefix)
    result = Mirror(*_SIDES[prefix], MirrorOptions(object_workers=workers)).run()
    if result.failed:
        raise SystemExit(f"engine failed: {result.failures[:3]}")


def clean_env() -> dict[str, str]:
    # rclone's S3 backend refuses a custom AWS_CA_BUNDLE on its transport; both endpoints are plain http.
    return {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}


def rclone_env(src: S3Endpoint, dst: S3Endpoint) -> dict[str, str]:
    env = clean_env()
    for name, ep in (("SRC", src), ("DST", dst)):
        env.update(
            {
                f"RCLONE_CONFIG_{name}_TYPE": "s3",
                f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
                f"RCLONE_CONFIG_{name}_ENDPOINT": ep.endpoint_url or "",
                f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": ep.access_key or "",
                f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": ep.secret_key or "",
                f"RCLONE_CONFIG_{name}_FORCE_PATH_STYLE": "true",
                f"RCLONE_CONFIG_{name}_REGION": "us-east-1",
            }
        )
    return env


def run_rclone(src: S3Endpoint, dst: S3Endpoint, prefix: str, *extra: str) -> None:
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
    subprocess.run(cmd, env=rclone_env(src, dst), check=True, capture_output=True)


def run_s5cmd(src: S3Endpoint, dst: S3Endpoint, prefix: str) -> tuple[float, float]:
    s5 = str(VENV_BIN / "s5cmd")
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    try:

        def call(ep: S3Endpoint, *args: str) -> None:
            env = {
                **os.environ,
                "AWS_ACCESS_KEY_ID": ep.access_key or "",
                "AWS_SECRET_ACCESS_KEY": ep.secret_key or "",
                "AWS_REGION": "us-east-1",
            }
            subprocess.run(
                [s5, "--endpoint-url", ep.endpoint_url or "", *args], env=env, check=True, capture_output=True
            )

        down = timed(lambda: call(src, "cp", f"s3://{SRC_BUCKET}/{prefix}*", f"{tmp}/"))
        up = timed(lambda: call(dst, "cp", f"{tmp}/", f"s3://{DST_BUCKET}/{prefix}"))
        return down, up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_tool(tool: str, src: S3Endpoint, dst: S3Endpoint, prefix: str) -> float:
    if tool == "engine":
        return timed(lambda: run_engine(src, dst, prefix))
    if tool == "rclone":
        return timed(lambda: run_rclone(src, dst, prefix))
    down, up = run_s5cmd(src, dst, prefix)
    print(f"    s5cmd = download {down:.2f}s + upload {up:.2f}s")
    return down + up


def transfer_case(name: str, count: int, size: int, src: S3Endpoint, dst: S3Endpoint, rounds: int) -> None:
    s, d = src.client(), dst.client()
    prefix = f"case-{name}/"
    seed(s, prefix, count, size)
    expected = (count, count * size)
    mib = count * size / MIB
    print(f"\n({name}) {count} objects x {size // 1024} KiB = {mib:.0f} MiB", flush=True)
    tools = ["engine", "rclone", "s5cmd"]
    best: dict[str, float] = {}
    warm_engine(src, dst, prefix)
    # Interleaved rounds, the order rotating so that no tool always runs first; each keeps its best.
    for round_no in range(rounds):
        for tool in tools[round_no % 3 :] + tools[: round_no % 3]:
            clear_destination(d, prefix)
            time.sleep(2)
            seconds = run_tool(tool, src, dst, prefix)
            best[tool] = min(seconds, best.get(tool, seconds))
            got = listing(d, DST_BUCKET, prefix)
            ok = "ok" if got == expected else f"MISMATCH {got} != {expected}"
            print(
                f"  round {round_no + 1}: {tool:<7} {seconds:7.2f}s  {mib / seconds:7.1f} MiB/s  dest {ok}",
                flush=True,
            )
            if got != expected:
                raise SystemExit(f"{tool} left the destination incomplete")
    clear_destination(d, prefix)
    print(f"  best of {rounds}: " + ", ".join(f"{t} {best[t]:.2f}s" for t in tools))
    best_other = min(best["rclone"], best["s5cmd"])
    print(
        f"  engine/fastest-other time ratio = {best['engine'] / best_other:.2f} "
        f"({'PASS' if best['engine'] <= best_other else 'FAIL'}: target <= 1.00)"
    )
    clear(s, SRC_BUCKET, prefix)


def noop_case(count: int, src: S3Endpoint, dst: S3Endpoint) -> None:
    s, d = src.client(), dst.client()
    prefix = "case-c/"
    seed(s, prefix, count, 1024)
    print(f"\n(c) no-op resync of {count} objects x 1 KiB", flush=True)
    clear_destination(d, prefix)
    run_engine(src, dst, prefix)  # the initial mirror, untimed (also makes the clients)
    assert listing(d, DST_BUCKET, prefix) == (count, count * 1024)
    lists = [
        timed(lambda: (listing(s, SRC_BUCKET, prefix), listing(d, DST_BUCKET, prefix))) for _ in range(3)
    ]
    engine = [timed(lambda: run_engine(src, dst, prefix)) for _ in range(3)]
    rclone = timed(lambda: run_rclone(src, dst, prefix, "--checksum"))
    ratio = min(engine) / min(lists)
    print(f"  list both sides  {min(lists):6.2f}s (best of 3: {', '.join(f'{t:.2f}' for t in lists)})")
    print(f"  engine no-op     {min(engine):6.2f}s (best of 3: {', '.join(f'{t:.2f}' for t in engine)})")
    print(f"  rclone --checksum no-op {rclone:6.2f}s (reference)")
    print(f"  engine/list ratio = {ratio:.2f} ({'PASS' if ratio <= 1.2 else 'FAIL'}: target <= 1.20)")
    clear_destination(d, prefix)
    clear(s, SRC_BUCKET, prefix)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="a,b,c")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply object counts (quick trials)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of (a)/(b); the best of each tool counts"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # no per-object lines: the other tools print none either
    if not shutil.which("rclone"):
        sys.exit("rclone missing: apt-get install -y rclone (bench/egress_sync.mk does it)")
    src, dst = endpoints()
    ensure_bucket(src.client(), SRC_BUCKET)
    ensure_bucket(dst.client(), DST_BUCKET)
    cases = args.cases.split(",")
    if "a" in cases:
        transfer_case("a", max(1, int(2000 * args.scale)), 256 * 1024, src, dst, args.rounds)
    if "b" in cases:
        transfer_case("b", max(1, int(4 * args.scale)), 256 * MIB, src, dst, args.rounds)
    if "c" in cases:
        noop_case(max(1, int(10_000 * args.scale)), src, dst)


if __name__ == "__main__":
    main()
