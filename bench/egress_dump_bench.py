"""Benchmark: egress_dump's pipeline vs the seed's `psql \\copy | gzip | aws s3 cp -`, same table, same
endpoints, one run, side by side.

    make bench-dump            # or: python bench/egress_dump_bench.py [--sizes-mb 250,1000]

Generates egress_bench.dump_<N>mb tables once (reused while present), installs the AWS CLI into its own
venv under .state/tools/awscli (it cannot share the project venv: its botocore pin conflicts with boto3),
and prints MB/s of raw CSV for both, the ratio, and the operator's peak RSS (VmHWM of a fresh process
running only the pipeline). Objects are deleted after each measurement: moto keeps them in memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench_tools import AWSCLI_PIN, ensure_awscli, services

if TYPE_CHECKING:
    import psycopg
    from botocore.client import BaseClient

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "egress_bench"
BUCKET = "egress-bench"
BASE_TABLE_MB = 1000

# ~110 bytes of CSV per row: ids, a timestamp, short text, an md5 (barely compressible), numeric,
# a flag, and a text with quotes and commas that needs CSV quoting; every 5th note NULL.
GENERATE = """
CREATE TABLE {schema}.{table} AS
SELECT g AS id,
       timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' AS created_at,
       'acct-' || (g % 100003) AS account,
       md5(g::text) AS token,
       round((g % 100000) / 7.0, 2) AS amount,
       g % 17 = 0 AS flagged,
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || (g % 1000) || ', "quoted"' END AS note
FROM generate_series(1, {rows}) AS g
"""


def services_env() -> None:
    """Fill os.environ from `scripts/services env` when not run through make."""
    if os.environ.get("DATAMOVER_PG_DSN") and os.environ.get("DATAMOVER_S3_ENDPOINT"):
        return
    for line in services("env").splitlines():
        if line.startswith("export "):
            for assignment in shlex.split(line[len("export ") :]):
                key, _, value = assignment.partition("=")
                os.environ.setdefault(key, value)


def s3_client() -> BaseClient:
    from datamover.s3client import S3Endpoint

    return S3Endpoint(
        endpoint_url=os.environ["DATAMOVER_S3_ENDPOINT"],
        access_key=os.environ["DATAMOVER_S3_ACCESS_KEY"],
        secret_key=os.environ["DATAMOVER_S3_SECRET_KEY"],
        label="bench",
    ).client()


def csv_bytes(conn: psycopg.Connection, table: str) -> int:
    """Exact size of `COPY (SELECT * FROM t) TO STDOUT (FORMAT csv, HEADER)`, counted by streaming."""
    from psycopg import sql

    total = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT csv, HEADER)").format(
                sql.Identifier(SCHEMA, table)
            )
        ) as copy,
    ):
        for chunk in copy:
            total += len(chunk)
    return total


def ensure_table(conn: psycopg.Connection, size_mb: int) -> tuple[str, int]:
    """A table of at least size_mb MB (1e6 bytes) of CSV; its exact size is kept in the table comment."""
    from psycopg import sql

    table = f"dump_{size_mb}mb"
    comment = conn.execute(
        "SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{SCHEMA}.{table}",)
    ).fetchone()[0]
    if comment and comment.startswith("csv_bytes="):
        return table, int(comment.split("=", 1)[1])
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, table)))
    conn.execute(sql.SQL(GENERATE.format(schema=SCHEMA, table="bench_probe", rows=100_000)).format())
    per_row = csv_bytes(conn, "bench_probe") / 100_000
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, "bench_probe")))
    rows = int(size_mb * 1e6 / per_row * 1.01) + 1000
    print(f"generating {SCHEMA}.{table}: {rows} rows (~{size_mb} MB of CSV), once ...", flush=True)
    started = time.perf_counter()
    conn.execute(sql.SQL(GENERATE.format(schema=SCHEMA, table=table, rows=rows)).format())
    size = csv_bytes(conn, table)
    conn.execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            sql.Identifier(SCHEMA, table), sql.Literal(f"csv_bytes={size}")
        )
    )
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(SCHEMA, table)))  # hint bits set once
    print(f"  {size / 1e6:.0f} MB of CSV in {time.perf_counter() - started:.0f} s", flush=True)
    return table, size


def run_ours(table: str) -> None:
    """Child process: only the operator's pipeline, then print stats and VmHWM as JSON."""
    import psycopg

    from datamover.egress.config import TableSpec
    from datamover.egress.dump import dump_table, prepare_session
    from datamover.egress.pipeline import StreamTuning

    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"]) as conn:
        prepare_session(conn, "UTC")
        result = dump_table(
            conn,
            s3_client(),
            TableSpec(name=table, schema=SCHEMA),
            bucket=BUCKET,
            key=f"ours/{table}.csv.gz",
            interval=None,
            tuning=StreamTuning(),
            source="bench",
        )
    hwm_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(
        json.dumps(
            {
                "raw_bytes": result.raw_bytes,
                "compressed_bytes": result.compressed_bytes,
                "rows": result.rows,
                "pipeline_seconds": result.seconds,
                "vmhwm_mb": hwm_kb / 1024,
            }
        )
    )


def run_ours_measured(table: str) -> tuple[float, dict]:
    """Wall clock of a fresh process (interpreter start and imports included, like the seed's CLIs)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--run-ours", table], check=True, capture_output=True, text=True
    ).stdout
    return time.perf_counter() - started, json.loads(out.strip().splitlines()[-1])


def run_seed(aws: Path, table: str) -> tuple[float, int]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ["DATAMOVER_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["DATAMOVER_S3_SECRET_KEY"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    copy = f"\\copy (SELECT * FROM {SCHEMA}.{table}) to stdout csv header"
    pipeline = (
        f"psql -X -q -c {shlex.quote(copy)} | gzip | {shlex.quote(str(aws))} --endpoint-url "
        f"{shlex.quote(os.environ['DATAMOVER_S3_ENDPOINT'])} s3 cp - s3://{BUCKET}/seed/{table}.csv.gz"
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], check=True, env=env)
    seconds = time.perf_counter() - started
    size = s3_client().head_object(Bucket=BUCKET, Key=f"seed/{table}.csv.gz")["ContentLength"]
    return seconds, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="250,1000", help="table sizes in MB of CSV (comma separated)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per contender and size; best is kept")
    parser.add_argument("--run-ours", help=argparse.SUPPRESS)
    args = parser.parse_args()
    services_env()
    if args.run_ours:
        run_ours(args.run_ours)
        return

    import psycopg

    sizes = [int(s) for s in args.sizes_mb.split(",")]
    aws = ensure_awscli()
    client = s3_client()
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        tables = [ensure_table(conn, mb) for mb in sizes]

    rows = []
    for table, raw in tables:
        with psycopg.connect(os.environ["DATAMOVER_PG_DSN"]) as conn:  # warm the cache for both contenders
            conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(SCHEMA, table))
            )
        seed_runs, ours_runs = [], []
        for attempt in range(1, args.repeat + 1):  # interleaved, best of N: the machine is shared
            seed_s, seed_size = run_seed(aws, table)
            client.delete_object(Bucket=BUCKET, Key=f"seed/{table}.csv.gz")
            seed_runs.append(seed_s)
            ours_s, ours = run_ours_measured(table)
            client.delete_object(Bucket=BUCKET, Key=f"ours/{table}.csv.gz")
            if ours["raw_bytes"] != raw:
                raise SystemExit(f"{table}: the pipeline read {ours['raw_bytes']} bytes, the table has {raw}")
            ours_runs.append((ours_s, ours))
            print(
                f"{table} run {attempt}: seed {raw / 1e6 / seed_s:.1f} MB/s, "
                f"ours {raw / 1e6 / ours_s:.1f} MB/s "
                f"(pipeline alone {raw / 1e6 / ours['pipeline_seconds']:.1f}), "
                f"peak RSS {ours['vmhwm_mb']:.0f} MB",
                flush=True,
            )
        ours_s, ours = min(ours_runs, key=lambda r: r[0])
        ours["vmhwm_mb"] = max(r[1]["vmhwm_mb"] for r in ours_runs)
        rows.append((table, raw, min(seed_runs), seed_size, ours_s, ours))

    print()
    print(
        f"egress_dump pipeline vs seed `psql \\copy | gzip | aws s3 cp -` (MB/s of raw CSV, wall clock, "
        f"best of {args.repeat}; RSS: the highest)"
    )
    print(
        f"{'table':<16}{'CSV MB':>8}{'seed MB/s':>11}{'ours MB/s':>11}{'ratio':>7}{'ours RSS MB':>13}"
        f"{'seed gz MB':>12}{'ours gz MB':>12}"
    )
    for table, raw, seed_s, seed_size, ours_s, ours in rows:
        print(
            f"{table:<16}{raw / 1e6:>8.0f}{raw / 1e6 / seed_s:>11.1f}{raw / 1e6 / ours_s:>11.1f}"
            f"{seed_s / ours_s:>6.2f}x{ours['vmhwm_mb']:>13.0f}{seed_size / 1e6:>12.1f}"
            f"{ours['compressed_bytes'] / 1e6:>12.1f}"
        )
    print(f"ours: ISA-L gzip level 1, 8 MiB parts, 4 upload threads; seed: gzip -6, aws-cli {AWSCLI_PIN}")


if __name__ == "__main__":
    main()
