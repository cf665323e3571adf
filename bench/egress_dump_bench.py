"""Benchmark: egress_dump's pipeline vs the source's own limit and the seed's pipeline, same table,
same endpoints, one run, side by side.

    make bench-dump            # or: python bench/egress_dump_bench.py [--sizes-mb 250,1000] [--repeat 2]

Contenders, per table, in interleaved rounds (best of each):
  raw COPY  `psql \\copy (SELECT * FROM t) to stdout csv header > /dev/null`: the rate PostgreSQL
            produces the CSV at, no compression, no upload (the limit the dump is measured against);
  seed      `psql \\copy ... to stdout csv header | gzip | aws s3 cp -` (the seed CronJob);
  ours      the operator's code path (PostgresHook `egress_postgres` -> dump_table -> ObjectStoreHook) in
            a fresh process whose imports (Airflow, the hooks) are done before the clock starts, as in a
            worker; the clock covers reading the connections, the COPY, gzip, the upload, the publication.
S3 is a private moto (a copy of `aws_default` pointing at it), restarted before every upload run.
Prints MB/s of raw CSV, the ratios (ours / raw COPY, ours / seed), ours' peak RSS (VmHWM of the process)
and the CPU seconds of every process involved (the client(s), the PostgreSQL backend, moto), which say
what bounds each figure on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_tools import (
    AWSCLI_PIN,
    ChildCpu,
    PrivateMoto,
    cpu_seconds,
    cpu_text,
    ensure_awscli,
    ensure_bucket,
    load_env,
    machine_line,
    tool_credentials,
)

if TYPE_CHECKING:
    import psycopg

SCHEMA = "egress_bench"
BUCKET = "egress-bench"
PG_CONN = "egress_postgres"

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


def pg_connect(**kwargs: Any) -> psycopg.Connection:
    from datamover.hooks.postgres import PostgresHook

    conn = PostgresHook(PG_CONN).connect()
    for name, value in kwargs.items():
        setattr(conn, name, value)
    return conn


def psql_env(app: str) -> dict[str, str]:
    """libpq environment for psql from the same connection (egress_postgres)."""
    c = json.loads(os.environ[f"AIRFLOW_CONN_{PG_CONN.upper()}"])
    return {
        **os.environ,
        "PGHOST": str(c.get("host", "")),
        "PGPORT": str(c.get("port", 5432)),
        "PGUSER": str(c.get("login", "")),
        "PGPASSWORD": str(c.get("password", "")),
        "PGDATABASE": str(c.get("schema", "")),
        "PGAPPNAME": app,
    }


def csv_bytes(conn: psycopg.Connection, table: str) -> int:
    """Exact size of `COPY (SELECT * FROM t) TO STDOUT (FORMAT csv, HEADER)`, counted by streaming."""
    from psycopg import sql

    total = 0
    statement = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT csv, HEADER)").format(
        sql.Identifier(SCHEMA, table)
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
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
    probe = f"bench_probe_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL(GENERATE.format(schema=SCHEMA, table=probe, rows=100_000)).format())
    per_row = csv_bytes(conn, probe) / 100_000
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, probe)))
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


class BackendCpu(threading.Thread):
    """CPU seconds of the PostgreSQL backend serving the session named `app` (application_name): finds
    its pid in pg_stat_activity, then samples /proc/<pid>/stat until the session ends."""

    def __init__(self, app: str) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.seconds = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        with pg_connect(autocommit=True) as conn:
            pid = None
            while pid is None and not self._done.is_set():
                row = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.app,)
                ).fetchone()
                pid = row[0] if row else None
                if pid is None:
                    time.sleep(0.02)
        while pid is not None:
            now = cpu_seconds(pid)
            if now == 0.0 and self.seconds > 0:
                return
            self.seconds = max(self.seconds, now)
            if self._done.wait(0.05):
                self.seconds = max(self.seconds, cpu_seconds(pid))
                return

    def finish(self) -> float:
        self._done.set()
        self.join(5)
        return self.seconds


@dataclass
class Run:
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def copy_command(table: str, target: str = "stdout") -> str:
    return f"\\copy (SELECT * FROM {SCHEMA}.{table}) to {target} csv header"


def run_raw(table: str) -> Run:
    """The source's limit: COPY TO STDOUT into /dev/null by psql (C, no processing)."""
    app = f"bench-raw-{uuid.uuid4().hex[:8]}"
    backend = BackendCpu(app)
    backend.start()
    child = ChildCpu().start()
    started = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-c", copy_command(table)],
        check=True,
        env=psql_env(app),
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    return Run(seconds, {"psql": child.stop(), "postgres": backend.finish()})


def run_seed(aws: Path, table: str, moto: PrivateMoto) -> Run:
    creds = tool_credentials(moto.conn_id)
    endpoint = creds.pop("ENDPOINT")
    app = f"bench-seed-{uuid.uuid4().hex[:8]}"
    env = {**psql_env(app), **creds}
    pipeline = (
        f"psql -X -q -c {shlex.quote(copy_command(table))} | gzip | {shlex.quote(str(aws))} --endpoint-url "
        f"{shlex.quote(endpoint)} s3 cp - s3://{BUCKET}/seed/{table}.csv.gz"
    )
    backend = BackendCpu(app)
    backend.start()
    moto_before = cpu_seconds(moto.pid)
    child = ChildCpu().start()
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], check=True, env=env)
    seconds = time.perf_counter() - started
    cpu = {
        "psql+gzip+aws": child.stop(),
        "postgres": backend.finish(),
        "moto": cpu_seconds(moto.pid) - moto_before,
    }
    size = object_size(moto, f"seed/{table}.csv.gz")
    return Run(seconds, cpu, {"gz_bytes": size})


def object_size(moto: PrivateMoto, key: str) -> int:
    from datamover.hooks.s3 import ObjectStoreHook

    return int(ObjectStoreHook(moto.conn_id).client().head_object(Bucket=BUCKET, Key=key)["ContentLength"])


def run_ours_child(table: str, conn_id: str) -> None:
    """Child process: imports done first (a worker has Airflow and the hooks loaded before a task
    starts), then, on "go" from stdin, the operator's code path from reading the connections to the
    published object; prints its stats, CPU seconds, VmHWM and the backend's CPU as JSON."""
    import resource

    import airflow.sdk.execution_time.supervisor  # noqa: F401  (reads connections in a worker)

    from datamover.egress.config import TableSpec
    from datamover.egress.dump import dump_table, prepare_session
    from datamover.egress.pipeline import StreamTuning
    from datamover.hooks.postgres import PostgresHook  # noqa: F401  (a worker has these loaded)
    from datamover.hooks.s3 import ObjectStoreHook
    from datamover.operators.base import settle_heap

    print("ready", flush=True)
    sys.stdin.readline()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    settle_heap()  # (PostgresToS3CsvOperator.execute does it first)
    tuning = StreamTuning()
    s3 = ObjectStoreHook(conn_id).client(pool=tuning.upload_workers + 2)
    with pg_connect() as conn:
        backend_pid = conn.info.backend_pid
        prepare_session(conn, "UTC")
        result = dump_table(
            conn,
            s3,
            TableSpec(name=table, schema=SCHEMA),
            bucket=BUCKET,
            key=f"ours/{table}.csv.gz",
            interval=None,
            tuning=tuning,
            source="bench",
        )
        backend = cpu_seconds(backend_pid)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    hwm_kb = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    print(
        json.dumps(
            {
                "raw_bytes": result.raw_bytes,
                "gz_bytes": result.compressed_bytes,
                "rows": result.rows,
                "seconds": seconds,
                "client_cpu": after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime,
                "vmhwm_mb": hwm_kb / 1024,
                "backend_cpu": backend,
            }
        )
    )


def run_ours(table: str, moto: PrivateMoto) -> Run:
    """The operator's code path in a fresh process whose imports are done before the clock starts (as
    in an Airflow worker); the clock covers connections, COPY, gzip, upload and the object's publication."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--run-ours", table, "--conn-id", moto.conn_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    while (line := proc.stdout.readline()) and line.strip() != "ready":
        pass
    moto_before = cpu_seconds(moto.pid)
    started = time.perf_counter()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = proc.stdout.read()
    seconds = time.perf_counter() - started
    if proc.wait() != 0:
        raise SystemExit(f"the pipeline failed (exit {proc.returncode})")
    info = json.loads(out.strip().splitlines()[-1])
    cpu = {
        "client": info["client_cpu"],
        "postgres": info["backend_cpu"],
        "moto": cpu_seconds(moto.pid) - moto_before,
    }
    return Run(seconds, cpu, info)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="250,1000", help="table sizes in MB of CSV (comma separated)")
    parser.add_argument("--repeat", type=int, default=2, help="interleaved rounds per size; best is kept")
    parser.add_argument("--only", default="raw,seed,ours", help="contenders to run (comma separated)")
    parser.add_argument("--run-ours", help=argparse.SUPPRESS)
    parser.add_argument("--conn-id", help=argparse.SUPPRESS)
    args = parser.parse_args()
    load_env()
    if args.run_ours:
        run_ours_child(args.run_ours, args.conn_id)
        return

    from psycopg import sql

    from datamover.hooks.s3 import ObjectStoreHook

    only = args.only.split(",")
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    aws = ensure_awscli() if "seed" in only else Path("aws")
    with pg_connect(autocommit=True) as conn:
        tables = [ensure_table(conn, mb) for mb in sizes]
    print(machine_line(), flush=True)

    moto = PrivateMoto()
    rows = []
    try:
        for table, raw in tables:
            with pg_connect(autocommit=True) as conn:  # warm the cache for every contender
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table)))
            runs: dict[str, list[Run]] = {name: [] for name in only}
            for attempt in range(1, args.repeat + 1):  # interleaved, best of N: the machine is shared
                order = only[attempt - 1 :] + only[: attempt - 1]
                for name in order:
                    if name == "raw":
                        run = run_raw(table)
                    else:
                        moto.start()  # a fresh moto for every upload run: it slows as it fills
                        ensure_bucket(ObjectStoreHook(moto.conn_id).client(), BUCKET)
                        run = run_seed(aws, table, moto) if name == "seed" else run_ours(table, moto)
                        if name == "ours" and run.info["raw_bytes"] != raw:
                            raise SystemExit(
                                f"{table}: the pipeline read {run.info['raw_bytes']} bytes, the table {raw}"
                            )
                    runs[name].append(run)
                    extra = f", peak RSS {run.info['vmhwm_mb']:.0f} MB" if name == "ours" else ""
                    print(
                        f"{table} round {attempt}: {name:<5} {run.seconds:6.2f} s "
                        f"{raw / 1e6 / run.seconds:7.1f} MB/s"
                        f"  CPU s: {cpu_text(run.cpu)}{extra}  [{machine_line().split('; ')[1]}]",
                        flush=True,
                    )
            rows.append((table, raw, runs))
    finally:
        moto.stop()

    print()
    print(
        f"egress_dump: MB/s of raw CSV, wall clock, best of {args.repeat} interleaved rounds; "
        f"{machine_line()}"
    )
    head = f"{'table':<14}{'CSV MB':>8}"
    for name in only:
        head += f"{name + ' MB/s':>13}"
    if "ours" in only:
        head += f"{'ours/raw':>10}{'ours/seed':>11}{'ours RSS MB':>13}"
    print(head)
    for table, raw, runs in rows:
        best = {name: min(runs[name], key=lambda r: r.seconds) for name in only}
        line = f"{table:<14}{raw / 1e6:>8.0f}"
        for name in only:
            line += f"{raw / 1e6 / best[name].seconds:>13.1f}"
        if "ours" in only:
            ours = best["ours"]
            vs_raw = best["raw"].seconds / ours.seconds if "raw" in best else float("nan")
            vs_seed = best["seed"].seconds / ours.seconds if "seed" in best else float("nan")
            rss = max(r.info["vmhwm_mb"] for r in runs["ours"])
            line += f"{vs_raw:>9.2f}x{vs_seed:>10.2f}x{rss:>13.0f}"
        print(line)
        for name in only:
            b = best[name]
            gz = f", gzip {b.info['gz_bytes'] / 1e6:.1f} MB" if "gz_bytes" in b.info else ""
            print(f"    {name:<5} best run: {b.seconds:.2f} s; CPU seconds: {cpu_text(b.cpu)}{gz}")
    if "ours" in only:
        print(
            "targets: ours/raw >= 0.75x, ours/seed >= 3.5x, peak RSS flat across sizes. ours: ISA-L gzip "
            f"level 1, 8 MiB parts, 4 upload threads; seed: gzip -6, aws-cli {AWSCLI_PIN}"
        )


if __name__ == "__main__":
    main()
