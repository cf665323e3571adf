"""transfer_monitoring at 10x Rubin's rate, on a real Airflow (api-server, scheduler with LocalExecutor,
dag-processor, triggerer; PostgreSQL metadata DB), against the local Kafka, Ceph RGW, PostgreSQL,
Pushgateway and Prometheus.

    python bench/transfer_monitoring_bench.py [--minutes 10] [--backlog 1000] [--per-exposure-minutes 3]
                                              [--put-objects]

1. live (micro-batch, the shipped design): the DAGs transfer_monitoring_ingest and
   transfer_monitoring_evaluate run continuously while a feeder plays the summit: every 3 s an End
   Readout on Kafka and an expected-sensors file PUT to Ceph, then over the next 1-6 s the bucket
   notifications of LSSTCam's 410 objects on Kafka (10% of the exposures lose one object, 1% of the
   objects come 12 s late). With --put-objects every object is also PUT to Ceph first. The DAGs never
   read data objects, and on a 2-core machine the feeder's ~137 PUT/s, the RGW and OSD share the
   cores with Airflow: the feed fell behind (37 exposures in 13 minutes instead of 260). Reported: every
   exposure evaluated, metric lag = time its result reached the Pushgateway minus its wait window's
   close (p50/p95/max), CPU seconds and peak RSS of the Airflow processes, of the services and of the
   feeder.
2. per-exposure (the event-driven alternative): the same feed, evaluation by one DAG run per End
   Readout (transfer_monitoring_exposure, triggered through the REST API as an AssetWatcher would),
   for a shorter time: lag and CPU side by side, as ratios.
3. backlog: the DAGs paused, `--backlog` exposures (notifications and End Readouts on Kafka, the
   expected-sensors files in Ceph: a night after an outage) are fed, then the DAGs are unpaused: time
   until every exposure is evaluated and its metrics pushed.
"""

from __future__ import annotations

import argparse
import heapq
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401 - the services' environment and AIRFLOW_CONN_* variables
from bench.airflow_stack import AirflowStack  # noqa: E402
from bench.bench_tools import machine_line  # noqa: E402
from datamover.hooks.kafka import KafkaHook  # noqa: E402
from datamover.hooks.s3 import ObjectStoreHook  # noqa: E402
from datamover.hooks.transfer_monitoring import TransferMonitoringHook  # noqa: E402
from datamover.monitoring.config import load  # noqa: E402
from datamover.s3 import create_bucket  # noqa: E402
from tests.monitoring_feed import Feed, empty_bucket, expected_file, lsstcam_sensors, object_names  # noqa: E402

TAI = timedelta(seconds=37)
CADENCE_S = 3.0
WAIT_S = 30.0
SLACK_S = 2.0
DAGS = ("transfer_monitoring_ingest", "transfer_monitoring_evaluate")


# ---- CPU and memory of process trees -------------------------------------------------------------


def tree_usage(pid: int, scope: str = "tree") -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of `pid` ("self"), of its live descendants ("children": for the scheduler,
    its LocalExecutor workers and the tasks they run) or of both ("tree"). The CPU of exited, reaped
    processes is in their parents' cumulative times, so every task process that ran is counted once."""
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True) if scope != "self" else []
        procs = children if scope == "children" else [root, *children]
    except psutil.NoSuchProcess:
        return 0.0, 0
    cpu, rss = 0.0, 0
    for p in procs:
        try:
            t = p.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
            rss += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return cpu, rss


Groups = dict[str, list[tuple[int, str]]]  # name -> (pid, scope) of the process trees it covers


def service_pids() -> Groups:
    groups: Groups = {"ceph": [], "kafka": [], "postgres": [], "pushgateway+prometheus": []}
    for p in psutil.process_iter(["name", "cmdline"]):
        name = p.info["name"] or ""
        cmd = " ".join(p.info["cmdline"] or [])
        if name in ("ceph-mon", "ceph-mgr", "ceph-osd", "radosgw"):
            groups["ceph"].append((p.pid, "tree"))
        elif name == "java" and "kafka" in cmd:
            groups["kafka"].append((p.pid, "tree"))
        elif name == "postgres" and "-D" in cmd:
            groups["postgres"].append((p.pid, "tree"))  # the postmaster: its tree holds every backend
        elif name in ("prometheus", "prometheus-push", "prometheus-pushgateway"):
            groups["pushgateway+prometheus"].append((p.pid, "tree"))
    return groups


class Sampler:
    """CPU seconds used between start() and stop(), and peak RSS, per named group of process trees."""

    def __init__(self, groups: Groups, interval: float = 2.0) -> None:
        self.groups = groups
        self.interval = interval
        self.start_cpu: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.peak_rss: dict[str, int] = {g: 0 for g in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[str, float]:
        out = {}
        for group, pids in self.groups.items():
            cpu = rss = 0
            for pid, scope in pids:
                c, r = tree_usage(pid, scope)
                cpu += c
                rss += r
            out[group] = cpu
            self.peak_rss[group] = max(self.peak_rss[group], rss)
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.cpu = self._sample()

    def start(self) -> None:
        self.start_cpu = self._sample()
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        end = self._sample()
        return {g: end[g] - self.start_cpu.get(g, 0.0) for g in self.groups}


def own_cpu() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


# ---- the feed ----------------------------------------------------------------------------------


def ceph_put_rate(n: int = 600, threads: int = 32) -> str:
    """What the local RGW takes: PUTs per second of 64-byte objects from `threads` threads."""
    client = ObjectStoreHook("transfer_monitoring_ceph").client(pool=threads)
    bucket = f"dtm-bench-probe-{random.randrange(16**6):06x}"
    create_bucket(client, bucket)
    try:
        started = time.time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: client.put_object(Bucket=bucket, Key=f"p/{i}", Body=b"x" * 64), range(n)))
        rate = n / (time.time() - started)
    finally:
        empty_bucket(client, bucket)
    needed = 410 / CADENCE_S
    return f"Ceph RGW here: {rate:.0f} PUT/s of 64-byte objects ({threads} threads); 10x Rubin: {needed:.0f}"


@dataclass
class Sent:
    obs_id: str
    eor_utc: datetime
    objects: int
    missing: bool
    done_at: datetime | None = None  # the last on-time object stored


@dataclass
class Summit:
    """Plays the camera and the data movers: End Readouts, objects and their notifications."""

    feed: Feed
    image_date: str
    workers: int = 32
    put_objects: bool = True  # False: the data objects are only notified, not stored (see --put-objects)
    sent: list[Sent] = field(default_factory=list)
    _late: list[tuple[float, int, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="put")
        self._slots = threading.BoundedSemaphore(4 * self.workers)  # queued PUTs: memory stays bounded
        self.sensors = lsstcam_sensors()
        self._stop = threading.Event()
        self._late_thread = threading.Thread(target=self._late_loop, daemon=True)
        self._late_thread.start()
        self._seq = 0

    def _late_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = self._late and self._late[0][0] <= time.time()
                item = heapq.heappop(self._late) if due else None
            if item is None:
                time.sleep(0.05)
                continue
            self._submit(self._arrive, item[2])

    def _arrive(self, key: str) -> None:
        """A data object arrives now: stored and notified, or (without put_objects) notified."""
        if self.put_objects:
            self.feed.object(key)
        else:
            self.feed.notify(key, datetime.now(UTC))

    def _later(self, delay_s: float, key: str) -> None:
        with self._lock:
            self._seq += 1
            heapq.heappush(self._late, (time.time() + delay_s, self._seq, key))

    def _submit(self, fn: Any, *args: Any) -> Any:
        self._slots.acquire()
        future = self.pool.submit(fn, *args)
        future.add_done_callback(lambda _f: self._slots.release())
        return future

    def exposure(self, number: int, *, rng: random.Random, eor_tai: datetime | None = None) -> Sent:
        """One exposure now (or, with `eor_tai`, set in the past with notifications timed after it)."""
        obs_id = f"MC_O_{self.image_date}_{number:06d}"
        live = eor_tai is None
        tai = eor_tai or datetime.now(UTC).replace(tzinfo=None) + TAI
        eor_utc = (tai - TAI).replace(tzinfo=UTC)
        self.feed.end_of_readout(obs_id, self.image_date, tai.replace(tzinfo=UTC).timestamp())
        prefix = self.feed.prefix(obs_id, self.image_date)
        names = object_names(obs_id, self.sensors)
        missing = rng.random() < 0.10
        if missing:
            names.pop(rng.randrange(len(names)))
        record = Sent(obs_id, eor_utc, len(names), missing)
        key = f"{prefix}/{obs_id}_expectedSensors.json"
        self.feed.put(key, expected_file(obs_id, self.sensors))  # always stored: the DAGs read it
        self.feed.notify(key, datetime.now(UTC) if live else eor_utc + timedelta(seconds=0.2))
        keys = [f"{prefix}/{name}" for name in names]
        if not live:  # a night in the past: notifications 1-6 s after its end of readout
            offsets = [rng.uniform(1.0, 6.0) for _ in keys]
            for k, o in zip(keys, offsets, strict=True):
                if self.put_objects:
                    self._submit(self.feed.object, k, eor_utc + timedelta(seconds=o))
                else:
                    self.feed.notify(k, eor_utc + timedelta(seconds=o))
            record.done_at = eor_utc + timedelta(seconds=max(offsets))
        else:  # 1% of the objects come 12 s late
            on_time = []
            for k in keys:
                if rng.random() < 0.01:
                    self._later(12.0, k)
                else:
                    on_time.append(k)
            if self.put_objects:  # stored as fast as the RGW takes them
                futures = [self._submit(self.feed.object, k) for k in on_time]

                def done(_f: Any) -> None:
                    if all(f.done() for f in futures):
                        record.done_at = datetime.now(UTC)

                for f in futures:
                    f.add_done_callback(done)
            else:  # notified 1-6 s after the end of readout, as the summit's transfers land
                offsets = [rng.uniform(1.0, 6.0) for _ in on_time]
                for k, o in zip(on_time, offsets, strict=True):
                    self._later(o, k)
                record.done_at = eor_utc + timedelta(seconds=max(offsets))
        self.sent.append(record)
        return record

    def close(self) -> None:
        while True:
            with self._lock:
                if not self._late:
                    break
            time.sleep(0.2)
        self._stop.set()
        self.pool.shutdown(wait=True)
        self.feed.flush()


# ---- one namespace per phase -------------------------------------------------------------------


class Namespace:
    def __init__(self, config_dir: Path, tag: str, **extra: Any) -> None:
        self.overrides: dict[str, Any] = {
            "file_notifications.topic": f"dtm-bench-{tag}-files",
            "end_readouts.topic": f"dtm-bench-{tag}-eor",
            "consumer_group": f"dtm-bench-{tag}",
            "object_store.bucket": f"dtm-bench-{tag}",
            "postgres.schema": f"dtm_bench_{tag.replace('-', '_')}",
            "metrics.app": f"dtm-bench-{tag}",
            "ingest.run_minutes": 2,  # runs roll over quickly between the phases
            "evaluation.max_run_minutes": 2,
            "evaluation.max_wait_minutes": 1,
            **extra,
        }
        self.cfg = load(self.overrides)
        self.hook = TransferMonitoringHook(self.cfg)
        self.kafka = KafkaHook(self.cfg.file_notifications.kafka_connection)
        self.topics = [self.cfg.file_notifications.topic, self.cfg.end_readouts.topic]
        self.kafka.ensure_topics(self.topics)
        create_bucket(self.hook.s3, self.cfg.object_store.bucket)
        self.producer = self.kafka.producer(**{"linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
        s3 = ObjectStoreHook(self.cfg.object_store.connection).client(pool=64)  # the feeder's 48 threads
        self.feed = Feed(s3, self.producer, self.cfg.object_store.bucket, *self.topics)
        # The deployment's config folder (DATAMOVER_CONFIG_DIR): the shipped YAML with this namespace.
        shipped = yaml.safe_load((ROOT / "include/config/transfer_monitoring.yaml").read_text())
        for dotted, value in self.overrides.items():
            node = shipped
            *parents, leaf = dotted.split(".")
            for p in parents:
                node = node[p]
            node[leaf] = value
        (config_dir / "transfer_monitoring.yaml").write_text(yaml.safe_dump(shipped))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.hook.store() as store:
            try:
                return store.conn.execute(store.q(sql)).fetchall()
            except Exception:
                return []

    def progress(self) -> tuple[int, int, int]:
        rows = self.query("SELECT count(*), count(evaluated_at), count(pushed_at) FROM {s}.exposures")
        return rows[0] if rows else (0, 0, 0)

    def cleanup(self) -> None:
        with self.hook.store() as store:
            days = [
                r[0]
                for r in self.query("SELECT day FROM {s}.metric_days UNION SELECT day FROM {s}.file_messages")
            ]
            store.drop_schema()
        for day in days:
            self.hook._pushgateway.delete(
                self.cfg.metrics.job, {"app": self.cfg.metrics.app, "day": day.isoformat()}
            )
        empty_bucket(self.hook.s3, self.cfg.object_store.bucket)
        admin = self.kafka.admin()
        for f in admin.delete_topics(self.topics, operation_timeout=30).values():
            f.result()


def percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = sorted(values)
    p = lambda q: v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]  # noqa: E731
    return f"p50 {statistics.median(v):6.1f} s   p95 {p(0.95):6.1f} s   max {v[-1]:6.1f} s"


def lags(ns: Namespace, sent: list[Sent]) -> dict[str, list[float]]:
    """Per exposure: result pushed - window close; and pushed - ready (all objects stored, or window
    close + slack for an incomplete exposure)."""
    rows = {
        r[0]: r for r in ns.query("SELECT obs_id, end_of_readout, evaluated_at, pushed_at FROM {s}.exposures")
    }
    after_close, after_ready, incomplete = [], [], []
    for s in sent:
        row = rows.get(s.obs_id)
        if row is None or row[3] is None:
            continue
        close = row[1] + timedelta(seconds=WAIT_S)
        pushed = row[3]
        after_close.append((pushed - close).total_seconds())
        ready = close + timedelta(seconds=SLACK_S) if s.missing or s.done_at is None else s.done_at
        after_ready.append((pushed - min(ready, close + timedelta(seconds=SLACK_S))).total_seconds())
        if s.missing:
            incomplete.append((pushed - close).total_seconds())
    return {"after_close": after_close, "after_ready": after_ready, "incomplete_after_close": incomplete}


def wait_drained(ns: Namespace, expected: int, timeout: float) -> float:
    start = time.time()
    while time.time() - start < timeout:
        total, _evaluated, pushed = ns.progress()
        if total >= expected and pushed >= expected:
            return time.time() - start
        time.sleep(1)
    raise SystemExit(f"not drained after {timeout:g} s: {ns.progress()} of {expected}")


def wait_idle(stack: AirflowStack, dag_ids: tuple[str, ...], timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        active = 0
        for dag in dag_ids:
            runs = stack.request("GET", f"dags/{dag}/dagRuns?state=running&state=queued&limit=100")
            active += runs["total_entries"]
        if not active:
            return
        time.sleep(2)
    raise SystemExit(f"DAG runs still active after {timeout:g} s")


def live_phase(
    stack: AirflowStack, config_dir: Path, minutes: float, mode: str, groups: Groups, put_objects: bool
) -> dict[str, Any]:
    tag = f"{mode[:4]}-{random.randrange(16**6):06x}"
    # A per-exposure run must wait as long as its exposure needs (the continuous runs roll over in 1 min).
    ns = Namespace(config_dir, tag, **({"evaluation.max_wait_minutes": 10} if mode == "per-exposure" else {}))
    rng = random.Random(7)
    summit = Summit(ns.feed, datetime.now(UTC).strftime("%Y%m%d"), put_objects=put_objects)
    dags = ("transfer_monitoring_ingest",) + (
        ("transfer_monitoring_evaluate",) if mode == "micro-batch" else ()
    )
    try:
        for dag in dags:
            stack.set_paused(dag, False)
        if mode == "per-exposure":
            stack.set_paused("transfer_monitoring_exposure", False)
        time.sleep(20)  # the first runs start
        sampler = Sampler(groups)
        sampler.start()
        feeder_cpu = own_cpu()
        started = time.time()
        count = int(minutes * 60 / CADENCE_S)
        for i in range(count):
            target = started + i * CADENCE_S
            time.sleep(max(0.0, target - time.time()))
            sent = summit.exposure(i + 1, rng=rng)
            if mode == "per-exposure":
                stack.trigger("transfer_monitoring_exposure", {"obs_id": sent.obs_id})
        feed_s = time.time() - started
        summit.close()
        drain_s = wait_drained(ns, count, WAIT_S + 600)
        cpu = sampler.stop()
        feeder = own_cpu() - feeder_cpu
        for dag in dags:
            stack.set_paused(dag, True)
        if mode == "per-exposure":
            stack.set_paused("transfer_monitoring_exposure", True)
        wait_idle(stack, (*dags, "transfer_monitoring_exposure"))
        elapsed = feed_s + drain_s
        evaluated = ns.progress()[1]
        return {
            "mode": mode,
            "exposures": count,
            "evaluated": evaluated,
            "objects": sum(s.objects for s in summit.sent),
            "objects_put": put_objects,
            "feed_s": feed_s,
            "elapsed_s": elapsed,
            "lags": lags(ns, summit.sent),
            "cpu": cpu,
            "feeder_cpu": feeder,
            "peak_rss": dict(sampler.peak_rss),
        }
    finally:
        ns.cleanup()


def backlog_phase(
    stack: AirflowStack, config_dir: Path, exposures: int, groups: Groups, put_objects: bool
) -> dict[str, Any]:
    ns = Namespace(config_dir, f"back-{random.randrange(16**6):06x}")
    rng = random.Random(11)
    day = datetime.now(UTC) - timedelta(days=1)
    summit = Summit(ns.feed, day.strftime("%Y%m%d"), workers=16, put_objects=put_objects)
    try:
        t = time.time()
        first = day.replace(hour=22, minute=0, second=0, microsecond=0, tzinfo=None) + TAI
        for i in range(exposures):
            summit.exposure(i + 1, rng=rng, eor_tai=first + timedelta(seconds=CADENCE_S * i))
        summit.close()
        feed_s = time.time() - t
        objects = sum(s.objects for s in summit.sent)
        print(f"backlog fed: {exposures} exposures, {objects} objects in {feed_s:.0f} s", flush=True)
        sampler = Sampler(groups)
        sampler.start()
        started = time.time()
        for dag in DAGS:
            stack.set_paused(dag, False)
        drain_s = wait_drained(ns, exposures, 3600)
        cpu = sampler.stop()
        for dag in DAGS:
            stack.set_paused(dag, True)
        wait_idle(stack, DAGS)
        return {
            "exposures": exposures,
            "objects": objects,
            "messages": objects + 2 * exposures,
            "catch_up_s": drain_s,
            "cpu": cpu,
            "peak_rss": dict(sampler.peak_rss),
            "feed_s": feed_s,
            "started": started,
            "objects_put": put_objects,
        }
    finally:
        ns.cleanup()


def report_live(r: dict[str, Any]) -> None:
    lag = r["lags"]
    print(
        f"\n== {r['mode']}: {r['exposures']} exposures in {r['feed_s']:.0f} s "
        f"({r['objects']} objects {'stored and ' if r['objects_put'] else ''}notified, 1 exposure per "
        f"{CADENCE_S:g} s), all results pushed after "
        f"{r['elapsed_s']:.0f} s; evaluated {r['evaluated']}/{r['exposures']}"
    )
    print(f"   metric lag after the window closes:   {percentiles(lag['after_close'])}")
    print(f"   ... exposures missing a file:         {percentiles(lag['incomplete_after_close'])}")
    print(f"   metric lag after ready:               {percentiles(lag['after_ready'])}")
    per = r["elapsed_s"]
    for group, cpu in r["cpu"].items():
        print(
            f"   CPU {group:24s} {cpu:8.1f} s ({100 * cpu / per:5.1f}% of one core)   "
            f"peak RSS {r['peak_rss'][group] / 2**20:7.0f} MiB"
        )
    print(f"   CPU feeder (PUTs + notifications)  {r['feeder_cpu']:8.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--per-exposure-minutes", type=float, default=3)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument(
        "--put-objects",
        action="store_true",
        help="also store every data object in Ceph (10x Rubin: ~137 PUT/s live, 411k PUTs for the backlog), "
        "not only notify it. The DAGs never read data objects; on a 2-core machine the feeder's PUTs, the "
        "RGW and Airflow compete for the cores and the feed falls behind (the RGW's own PUT rate is "
        "printed first). The expected-sensors files are always stored.",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the Airflow stack
    print(machine_line(), flush=True)
    print(ceph_put_rate(), flush=True)

    home = ROOT / ".state" / "bench-transfer-monitoring"
    config_dir = Path(tempfile.mkdtemp(prefix="dtm-bench-config-"))
    stack = AirflowStack(
        home / "airflow",
        [ROOT / "dags" / "transfer_monitoring.py"],
        extra_env={"DATAMOVER_CONFIG_DIR": str(config_dir)},
    )
    print(f"starting Airflow (api-server, scheduler, dag-processor, triggerer) in {home}", flush=True)
    stack.start()
    results: dict[str, Any] = {}
    try:
        stack.wait_for_dags([*DAGS, "transfer_monitoring_exposure"])
        pids = stack.pids()
        groups: Groups = {f"airflow {name}": [(pid, "tree")] for name, pid in pids.items()}
        groups["airflow scheduler"] = [(pids["scheduler"], "self")]
        groups["airflow tasks (executor)"] = [(pids["scheduler"], "children")]
        groups |= service_pids()
        put = args.put_objects
        results["micro"] = live_phase(stack, config_dir, args.minutes, "micro-batch", groups, put)
        report_live(results["micro"])
        if args.per_exposure_minutes > 0:
            minutes = args.per_exposure_minutes
            results["per"] = live_phase(stack, config_dir, minutes, "per-exposure", groups, put)
            report_live(results["per"])
        if args.backlog > 0:
            results["backlog"] = backlog_phase(stack, config_dir, args.backlog, groups, put)
            b = results["backlog"]
            print(
                f"\n== backlog: {b['exposures']} exposures ({b['messages']} Kafka messages, "
                f"{b['objects']} objects{'' if b['objects_put'] else ' notified, not stored'}) "
                f"caught up in {b['catch_up_s']:.0f} s = {b['exposures'] / b['catch_up_s']:.1f} exposures/s"
            )
            for group, cpu in b["cpu"].items():
                print(f"   CPU {group:24s} {cpu:8.1f} s   peak RSS {b['peak_rss'][group] / 2**20:7.0f} MiB")
    finally:
        stack.stop()
    summary(results)


def summary(results: dict[str, Any]) -> None:
    micro, per = results.get("micro"), results.get("per")
    if not micro:
        return
    airflow_cpu = lambda r: sum(v for k, v in r["cpu"].items() if k.startswith("airflow"))  # noqa: E731
    p95 = lambda r: sorted(r["lags"]["after_close"])[int(0.95 * (len(r["lags"]["after_close"]) - 1))]  # noqa: E731
    print("\n== summary")
    print(
        f"   micro-batch: p95 lag after window close {p95(micro):.1f} s (target <= 30 s); Airflow CPU "
        f"{airflow_cpu(micro) / micro['exposures']:.2f} s per exposure"
    )
    if per and per["lags"]["after_close"]:
        print(
            f"   per-exposure runs: p95 lag {p95(per):.1f} s; Airflow CPU "
            f"{airflow_cpu(per) / per['exposures']:.2f} s per exposure; "
            f"evaluated {per['evaluated']}/{per['exposures']}"
        )
        print(
            f"   ratio per-exposure / micro-batch: Airflow CPU per exposure "
            f"{(airflow_cpu(per) / per['exposures']) / (airflow_cpu(micro) / micro['exposures']):.1f}x"
        )


if __name__ == "__main__":
    main()
