"""log_archival benchmarks, each against the tool a user would otherwise pick, in one run, printed as ratios:

(a) collector: Butler bundles from Kafka into PostgreSQL (consume, decompress, parse, validate, re-encode,
    COPY, commit offsets) vs a plain `psql \\copy` of the same entry rows into the same table;
(b) archival: many streams (>= 1 GB of log data) from PostgreSQL to Ceph (stage, move, coordinator,
    expunge; 4 streams at a time, like 4 worker slots) vs `aws s3 cp --recursive` of the same archive
    bytes as local files; peak RSS per stream size;
(c) encoding: the archive writer vs `logdogref write` (LUCI's archive.Archive) on the same stream.

    python bench/log_archival_bench.py [a] [b] [c]      (default: all; sizes via LOGDOG_BENCH_* below)
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

import tests.conftest  # noqa: E402,F401  (services' environment and connections, as the tests get them)
from bench.bench_tools import (  # noqa: E402
    ChildCpu,
    CpuMeter,
    ceph_pids,
    cpu_text,
    ensure_awscli,
    tree_cpu_seconds,
)
from datamover.hooks.kafka import KafkaHook  # noqa: E402
from datamover.hooks.postgres import PostgresHook  # noqa: E402
from datamover.hooks.s3 import ObjectStoreHook  # noqa: E402
from datamover.logdog.archive import ArchiveWriter, IndexRules, StoredEntry  # noqa: E402
from datamover.logdog.butler import encode_message  # noqa: E402
from datamover.logdog.collector import DrainLimits, drain  # noqa: E402
from datamover.logdog.coordinator import Delays  # noqa: E402
from datamover.logdog.proto import log_pb2  # noqa: E402
from datamover.logdog.storage import Collector, ensure_schema  # noqa: E402
from datamover.operators.base import settle_heap  # noqa: E402
from datamover.s3 import S3Path, create_bucket  # noqa: E402
from tests.logdog.butlers import SECRET, bundle  # noqa: E402
from tests.logdog.refs import logdogref_path  # noqa: E402
from tests.logdog.streams import Stream, descriptor, stored_entry  # noqa: E402

MB = 1_000_000
A_MB = int(os.environ.get("LOGDOG_BENCH_COLLECT_MB", "100"))  # (a) log data through the collector
B_MB = int(os.environ.get("LOGDOG_BENCH_ARCHIVE_MB", "1100"))  # (b) log data archived
C_MB = int(os.environ.get("LOGDOG_BENCH_ENCODE_MB", "100"))  # (c) one stream encoded
WORKERS = int(os.environ.get("LOGDOG_BENCH_WORKERS", "4"))  # (b) streams archived at a time
RSS_MB = [int(x) for x in os.environ.get("LOGDOG_BENCH_RSS_MB", "8,64,256").split(",")]  # (b) RSS pass
ROUNDS = int(os.environ.get("LOGDOG_BENCH_ROUNDS", "3"))
LINES = int(os.environ.get("LOGDOG_BENCH_LINES", "10"))  # (a) text lines per log entry
WORDS = b"the build step compiled linked tested archived uploaded warning error ok".split(b" ")


def _line_pool(size: int = 4096) -> list[bytes]:
    rng = random.Random(0)
    return [b" ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 18))) for _ in range(size)]


LINE_POOL = _line_pool()


def log_line(rng: random.Random, n: int) -> bytes:
    """A log line: its number, then words (varied, cheap to make in bulk)."""
    return b"%08d %s" % (n, LINE_POOL[(n * 2654435761 + rng.getrandbits(12)) % len(LINE_POOL)])


def text_entry(rng: random.Random, index: int, lines: int, line_no: int) -> log_pb2.LogEntry:
    e = log_pb2.LogEntry(stream_index=index, prefix_index=index, sequence=line_no)
    e.time_offset.seconds = index // 10
    e.time_offset.nanos = (index % 10) * 100_000_000
    for i in range(lines):
        e.text.lines.add(value=log_line(rng, line_no + i), delimiter="\n")
    return e


def text_stream(rng: random.Random, name: str, size: int, lines_per_entry: int = 20) -> Stream:
    s = Stream(descriptor(name=name, prefix="bench/run"))
    total = index = line_no = 0
    while total < size:
        e = text_entry(rng, index, lines_per_entry, line_no)
        total += e.ByteSize()
        s.entries.append(e)
        index += 1
        line_no += lines_per_entry
    return s


def pg_conn() -> psycopg.Connection:
    return PostgresHook("logdog_postgres").connect()


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.commit()


def psql(*args: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", *args], check=True, capture_output=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- (a)


def bench_collect() -> dict[str, Any]:
    rng = random.Random(1)
    uid = uuid.uuid4().hex[:8]
    topic, schema = f"logdog.bench.{uid}", f"logdog_bench_{uid}"
    kafka = KafkaHook("kafka_default")
    kafka.ensure_topics([topic], partitions=2)
    producer = kafka.producer(**{"linger.ms": 20, "compression.type": "none"})
    messages = entries = data_bytes = 0
    streams_per_bundle, per_stream = 4, 25
    prefix_no = 0
    print(
        f"(a) producing ~{A_MB} MB of Butler bundles "
        f"({streams_per_bundle} streams x {per_stream} entries of {LINES} lines each)"
    )
    while data_bytes < A_MB * MB:
        prefix = f"bench/build{prefix_no}"
        streams = [descriptor(name=f"steps/s{i}/stdout", prefix=prefix) for i in range(streams_per_bundle)]
        for block in range(8):
            parts = []
            for desc in streams:
                logs = [text_entry(rng, block * per_stream + i, LINES, 0) for i in range(per_stream)]
                entries += len(logs)
                data_bytes += sum(e.ByteSize() for e in logs)
                parts.append((desc, logs, block * per_stream + per_stream - 1 if block == 7 else None))
            value = encode_message(bundle("chromium", prefix, parts, SECRET), compress=True)
            producer.produce(topic, value=value, key=prefix.encode())
            producer.poll(0)
            messages += 1
        prefix_no += 1
    assert producer.flush(60) == 0
    conn = pg_conn()
    drop_schema(conn, schema)
    ensure_schema(conn, schema)
    dump = Path(tempfile.mkdtemp()) / "entries.copy"
    table = f'"{schema}".log_entries'
    limits = DrainLimits(batch_messages=200, idle_timeout=5, max_runtime=3600)
    runs, copies = [], []
    for r in range(ROUNDS):  # interleaved rounds, best of each (the machine is shared)
        for t_name in ("log_entries", "log_streams"):
            conn.execute(sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(t_name)))
        conn.commit()
        consumer = kafka.consumer(f"logdog-bench-{uid}-{r}", **{"enable.partition.eof": True})
        settle_heap()  # (LogDogCollectOperator.execute does it first)
        if os.environ.get("LOGDOG_BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                stats = drain(consumer, conn, schema, topic, limits)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        else:
            stats = drain(consumer, conn, schema, topic, limits)
        consumer.close()
        assert stats.entries_written == entries, stats
        # From the first message received to the last offsets committed (the consumer group's join is
        # not ingest time; the whole run is reported too).
        runs.append(stats)
        # The same rows, dumped and loaded back with psql's \copy (binary): the plain COPY a user would run.
        if r == 0:
            psql("-c", f"\\copy {table} TO '{dump}' (FORMAT binary)")
        conn.execute(sql.SQL("TRUNCATE {}.log_entries").format(sql.Identifier(schema)))
        conn.commit()
        t = time.perf_counter()
        psql("-c", f"\\copy {table} FROM '{dump}' (FORMAT binary)")
        copies.append(time.perf_counter() - t)
        print(
            f"    round {r + 1}: collector {stats.ingest_seconds:.2f} s, psql \\copy {copies[-1]:.2f} s",
            flush=True,
        )
    best = min(runs, key=lambda st: st.ingest_seconds)
    ours_ingest, copy_time = best.ingest_seconds, min(copies)
    size = dump.stat().st_size
    shutil.rmtree(dump.parent)
    drop_schema(conn, schema)
    conn.close()
    kafka.admin().delete_topics([topic], operation_timeout=10)
    return {
        "messages": messages,
        "entries": entries,
        "log_data_mb": round(data_bytes / MB, 1),
        "copy_file_mb": round(size / MB, 1),
        "collector_s": round(ours_ingest, 2),
        "collector_entries_per_s": round(entries / ours_ingest),
        "collector_mb_per_s": round(data_bytes / MB / ours_ingest, 1),
        "psql_copy_s": round(copy_time, 2),
        "ratio_time": round(ours_ingest / copy_time, 2),
        "rounds_collector_s": [round(st.ingest_seconds, 2) for st in runs],
        "rounds_psql_copy_s": [round(x, 2) for x in copies],
        "wall_with_group_join_s": round(best.seconds, 2),
        "decode_s": round(best.decode_seconds, 2),
        "write_s": round(best.write_seconds, 2),
        "entry_bytes": round(data_bytes / entries),
    }


# ---------------------------------------------------------------------------------------------- (b)


def _settings(staging: str, base: str) -> Any:
    from datamover.logdog.archivist import ArchivistSettings

    return ArchivistSettings(
        staging_base=S3Path.parse(staging),
        base=S3Path.parse(base),
        rules=IndexRules(),
        delays=Delays(timedelta(0), timedelta(days=1), timedelta(0)),
    )


def _archive(schema: str, staging: str, base: str, stream_id: int, client: Any) -> dict[str, Any]:
    from datamover.logdog.archivist import Archivist

    settle_heap()  # (LogStreamArchiveOperator.execute does it first)
    conn, data_conn = pg_conn(), pg_conn()
    try:
        archivist = Archivist(
            conn, data_conn, schema, client, _settings(staging, base), owner=f"bench-{stream_id}"
        )
        return archivist.archive(stream_id).as_dict()
    finally:
        conn.close()
        data_conn.close()


def _archive_in_child(args: tuple[str, str, str, int]) -> dict[str, Any]:
    """One stream in a fresh interpreter: its peak RSS while archiving (VmHWM, reset after the imports
    and the client are set up); stream_id 0: nothing archived, the baseline."""
    schema, staging, base, stream_id = args
    client = ObjectStoreHook("logdog_archive").client()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    outcome = _archive(schema, staging, base, stream_id, client) if stream_id else {}
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    return {**outcome, "peak_rss_mb": peak_kb / 1024}


_WORKER_CLIENT: Any = None


def _worker_init() -> None:
    """A worker slot's process: the archival storage client, made once (as a task's hook would)."""
    global _WORKER_CLIENT
    _WORKER_CLIENT = ObjectStoreHook("logdog_archive").client()


def _ready(_: int) -> bool:
    time.sleep(0.5)  # (each of the pool's processes takes one: all of them are up before the clock)
    return _WORKER_CLIENT is not None


def _archive_timed(args: tuple[str, str, str, int]) -> dict[str, Any]:
    """One stream archived in a worker process; with the CPU seconds it took there."""
    schema, staging, base, stream_id = args
    before = resource.getrusage(resource.RUSAGE_SELF)
    outcome = _archive(schema, staging, base, stream_id, _WORKER_CLIENT)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {**outcome, "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime}


def load_stream(store: Collector, conn: psycopg.Connection, schema: str, stream: Stream) -> tuple[int, int]:
    """Store `stream` as the collector would; (stream id, log data bytes)."""
    from datamover.logdog.butler import StreamPart, entry_row

    name = stream.desc.name
    part = StreamPart("chromium", stream.desc.prefix, name, 0, stream.descriptor_bytes, b"\0" * 32, None, [])
    for start in range(0, len(stream.entries), 5000):
        chunk = stream.entries[start : start + 5000]
        part.rows = [entry_row(*e) for e in stream_entries(Stream(stream.desc, chunk))]
        part.first_index = start
        part.terminal_index = len(stream.entries) - 1 if start + 5000 >= len(stream.entries) else None
        store.write([part])
    row = conn.execute(
        sql.SQL("SELECT id FROM {}.log_streams WHERE path = %s").format(sql.Identifier(schema)),
        (f"{stream.desc.prefix}/+/{name}",),
    ).fetchone()
    conn.commit()
    return row[0], sum(e.ByteSize() for e in stream.entries)


def bench_archive() -> dict[str, Any]:
    rng = random.Random(2)
    uid = uuid.uuid4().hex[:8]
    schema = f"logdog_bench_{uid}"
    staging, archive, plain = f"bench-stg-{uid}", f"bench-arc-{uid}", f"bench-cp-{uid}"
    client = ObjectStoreHook("logdog_archive").client(pool=64)
    for b in (staging, archive, plain):
        create_bucket(client, b)
    # The timed set: many small and mid-size streams plus a few large ones.
    sizes_mb = [256, 128, 64, 64] + [32] * 8 + [16] * 16 + [4] * 32
    scale = B_MB / sum(sizes_mb)
    sizes = [max(1, int(x * scale * MB)) for x in sizes_mb]
    rss_sizes = [int(x * MB) for x in RSS_MB]
    conn = pg_conn()
    drop_schema(conn, schema)
    ensure_schema(conn, schema)
    store = Collector(conn, schema)
    files_dir = Path(tempfile.mkdtemp(prefix="logdog-bench-"))
    print(
        f"(b) loading {len(sizes)} streams ({sum(sizes) / MB:.0f} MB) + {RSS_MB} MB into PostgreSQL",
        flush=True,
    )
    ids, total_log, archive_bytes = [], 0, 0
    for i, size in enumerate(sizes):
        stream = text_stream(rng, f"streams/s{i:03d}/stdout", size)
        folder = files_dir / f"s{i:03d}"  # the same archive bytes as local files, for the AWS CLI
        folder.mkdir()
        with open(folder / "logstream.entries", "wb") as ef, open(folder / "logstream.index", "wb") as xf:
            w = ArchiveWriter(stream.descriptor_bytes, ef, xf)
            w.add_all(stream_entries(stream))
            st = w.finish()
        archive_bytes += st.entries_size + st.index_size
        sid, log_bytes = load_stream(store, conn, schema, stream)
        ids.append(sid)
        total_log += log_bytes
    rss_ids = [load_stream(store, conn, schema, text_stream(rng, f"rss/{n}/stdout", n))[0] for n in rss_sizes]
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE " + f'"{schema}".log_entries')
    # The load's dirty pages flushed now: else a checkpoint spread over the next minutes writes them
    # while the timed runs go, and PostgreSQL's CPU for it would count against the archival.
    conn.execute("CHECKPOINT")
    conn.autocommit = False

    # Peak RSS by stream size: each stream alone in a fresh interpreter (0 = imports and clients only).
    spawn = multiprocessing.get_context("spawn")
    rss = {}
    with spawn.Pool(1, maxtasksperchild=1) as pool:
        for size_mb, sid in [(0, 0), *zip(RSS_MB, rss_ids, strict=True)]:
            out = pool.apply(_archive_in_child, ((schema, f"{staging}/rss", f"{archive}/rss", sid),))
            assert sid == 0 or out["action"] == "archived", out
            rss[size_mb] = round(out["peak_rss_mb"])
    print(f"(b) peak RSS by stream size (MB of log data -> MB RSS): {rss}", flush=True)

    aws = ensure_awscli()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": os.environ["DATAMOVER_CEPH_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": os.environ["DATAMOVER_CEPH_SECRET_KEY"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    # What bounds (b): the CPU seconds of every process of a timed run (the archivists or the AWS CLI,
    # radosgw, ceph-osd, and PostgreSQL's backends, also those of connections closed during the run).
    postmaster = psutil.Process(conn.info.backend_pid).ppid()

    def metered(run: Callable[[], float]) -> tuple[float, dict[str, float]]:
        ceph, tool, pg_before = (
            CpuMeter(ceph_pids()).start(),
            ChildCpu().start(),
            tree_cpu_seconds(postmaster),
        )
        seconds = run()
        cpu = {"client": tool.stop(), "postgres": tree_cpu_seconds(postmaster) - pg_before, **ceph.stop()}
        return seconds, {name: round(value, 1) for name, value in cpu.items()}

    def aws_round(n: int) -> float:
        t = time.perf_counter()
        subprocess.run(
            [
                str(aws),
                "--endpoint-url",
                os.environ["DATAMOVER_CEPH_ENDPOINT"],
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                str(files_dir),
                f"s3://{plain}/round{n}/",
            ],
            check=True,
            env=env,
        )
        return time.perf_counter() - t

    print("(b) aws s3 cp round 1 ...", flush=True)
    aws_runs = [metered(lambda: aws_round(1))]
    print(f"(b) archival, {WORKERS} streams at a time, each worker its own process ...", flush=True)
    order = sorted(range(len(ids)), key=lambda i: -sizes[i])  # large streams first
    # As the DAG runs it: one archive task per stream, in WORKERS worker slots, each slot a process of
    # its own (started, imports done and client made before the clock, like a worker's pool).
    with spawn.Pool(WORKERS, initializer=_worker_init) as pool:
        pool.map(_ready, range(WORKERS), chunksize=1)
        results: list[dict[str, Any]] = []

        def archive_all() -> float:
            t = time.perf_counter()
            results.extend(
                pool.imap_unordered(
                    _archive_timed,
                    [(schema, f"{staging}/svc", f"{archive}/svc", ids[i]) for i in order],
                    chunksize=1,
                )
            )
            return time.perf_counter() - t

        ours, ours_cpu = metered(archive_all)
    cpu = sum(r["cpu_s"] for r in results)
    ours_cpu["client"] = round(cpu, 1)  # (the pool's processes are not waited for: their own sums)
    print("(b) aws s3 cp round 2 ...", flush=True)
    aws_runs.append(metered(lambda: aws_round(2)))
    aws_times = [seconds for seconds, _ in aws_runs]
    bad = [r for r in results if r["action"] != "archived" or not r["complete"]]
    assert not bad, bad
    ours_bytes = sum(r["entries_size"] + r["index_size"] for r in results)
    assert ours_bytes == archive_bytes, (ours_bytes, archive_bytes)
    shutil.rmtree(files_dir)
    for b in (staging, archive, plain):
        empty_bucket(client, b)
    drop_schema(conn, schema)
    conn.close()
    best_aws = min(aws_times)
    return {
        "streams": len(sizes),
        "log_data_mb": round(total_log / MB),
        "archive_mb": round(archive_bytes / MB),
        "archival_s": round(ours, 2),
        "archival_mb_per_s": round(archive_bytes / MB / ours, 1),
        "aws_s3_cp_s": [round(x, 2) for x in aws_times],
        "aws_mb_per_s": round(archive_bytes / MB / best_aws, 1),
        "ratio_time": round(ours / best_aws, 2),
        "archival_cpu_s": round(cpu, 2),
        "cpu_s_ours": ours_cpu,
        "cpu_s_aws_best": min(aws_runs)[1],
        "phase_seconds_sum": {
            k: round(sum(r["phase_seconds"].get(k, 0) for r in results), 2)
            for k in ("staged", "moved", "recorded", "expunged")
        },
        "peak_rss_mb_by_stream_mb": rss,
    }


def stream_entries(stream: Stream) -> list[StoredEntry]:
    return [stored_entry(e) for e in stream.entries]


def empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


# ---------------------------------------------------------------------------------------------- (c)


def bench_encode() -> dict[str, Any]:
    rng = random.Random(3)
    stream = text_stream(rng, "encode/stdout", C_MB * MB)
    rows = stream_entries(stream)
    work = Path(tempfile.mkdtemp(prefix="logdog-enc-"))
    spec = work / "stream.json"
    spec.write_text(json.dumps(stream.tool_json()))
    ours_times, ref_times = [], []
    for _ in range(3):
        entries, index = io.BytesIO(), io.BytesIO()
        t = time.perf_counter()
        w = ArchiveWriter(stream.descriptor_bytes, entries, index)
        w.add_all(rows)
        w.finish()
        ours_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(
            [
                str(logdogref_path()),
                "write",
                "--in",
                str(spec),
                "--entries",
                str(work / "r.entries"),
                "--index",
                str(work / "r.index"),
            ],
            check=True,
            capture_output=True,
        )
        ref_times.append(time.perf_counter() - t)
    assert entries.getvalue() == (work / "r.entries").read_bytes()
    assert index.getvalue() == (work / "r.index").read_bytes()
    # Ours including the LogEntry encoding (what the collector does once per entry on ingest).
    t = time.perf_counter()
    w = ArchiveWriter(stream.descriptor_bytes, io.BytesIO(), io.BytesIO())
    w.add_all(stored_entry(e) for e in stream.entries)
    w.finish()
    with_proto = time.perf_counter() - t
    shutil.rmtree(work)
    ours, ref = min(ours_times), min(ref_times)
    size = len(entries.getvalue())
    return {
        "entries": len(rows),
        "archive_mb": round(size / MB, 1),
        "ours_s": round(ours, 3),
        "ours_mb_per_s": round(size / MB / ours, 1),
        "ours_with_entry_encoding_s": round(with_proto, 3),
        "logdogref_write_s": round(ref, 3),
        "ratio_time": round(ours / ref, 2),
        "note": "logdogref's time includes reading its JSON input (base64 lines) and process start",
    }


def cleanup_leftovers(older_than: timedelta = timedelta(hours=3)) -> None:
    """Remove what a failed run of this benchmark left, hours ago (a run in progress elsewhere is younger):
    its schemas and its buckets."""
    conn = pg_conn()
    query = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'logdog\\_bench\\_%'"
    for (name,) in conn.execute(query).fetchall():
        last = conn.execute(
            sql.SQL("SELECT coalesce(max(updated_at), '-infinity') < now() - %s FROM {}.log_streams").format(
                sql.Identifier(name)
            ),
            (older_than,),
        ).fetchone()
        conn.commit()
        if last and last[0]:
            drop_schema(conn, name)
    conn.close()
    client = ObjectStoreHook("logdog_archive").client()
    now = datetime.now(UTC)
    for bucket in client.list_buckets().get("Buckets", []):
        mine = bucket["Name"].startswith(("bench-stg-", "bench-arc-", "bench-cp-"))
        if mine and now - bucket["CreationDate"] > older_than:
            empty_bucket(client, bucket["Name"])


def main() -> None:
    parts = sys.argv[1:] or ["a", "b", "c"]
    results = {}
    cleanup_leftovers()
    for part, fn in (("c", bench_encode), ("a", bench_collect), ("b", bench_archive)):
        if part in parts:
            results[part] = fn()
            print(f"({part})", json.dumps(results[part], indent=2), flush=True)
    print("\nSummary (time ratio ours / other tool; < 1 means faster):")
    if "a" in results:
        r = results["a"]
        print(
            f"  (a) collector {r['collector_s']} s vs psql \\copy {r['psql_copy_s']} s: "
            f"{r['ratio_time']}x (target <= 2x)"
        )
    if "b" in results:
        r = results["b"]
        print(
            f"  (b) archival {r['archival_s']} s vs aws s3 cp {min(r['aws_s3_cp_s'])} s: "
            f"{r['ratio_time']}x (target <= 1.5x);"
            f" peak RSS by stream size {r['peak_rss_mb_by_stream_mb']}"
        )
        print(f"      CPU s, ours: {cpu_text(r['cpu_s_ours'])}; aws s3 cp: {cpu_text(r['cpu_s_aws_best'])}")
    if "c" in results:
        r = results["c"]
        print(
            f"  (c) encoding {r['ours_s']} s vs logdogref write {r['logdogref_write_s']} s: "
            f"{r['ratio_time']}x"
        )


if __name__ == "__main__":
    main()
