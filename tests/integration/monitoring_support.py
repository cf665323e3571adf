"""Shared set-up for the transfer monitoring integration tests: a private namespace on the real services
(bucket, topics, PostgreSQL schema, Pushgateway `app` label), the feed, and PromQL reads."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.transfer_monitoring import TransferMonitoringHook
from datamover.monitoring.config import TransferMonitoringConfig, load
from datamover.monitoring.evaluator import Evaluator, PassResult
from datamover.monitoring.ingest import Ingestor, IngestStats
from datamover.monitoring.publish import publish_exposures, publish_file_messages, publish_new_days
from datamover.s3 import create_bucket
from tests.conftest import tests_metadata_db
from tests.monitoring_feed import Feed, empty_bucket, prometheus_url, unique

TAI = timedelta(seconds=37)


def observing_day(tai: datetime) -> date:
    """The definition, restated for the tests: the TAI calendar date of the instant 12 hours earlier."""
    return (tai - timedelta(hours=12)).date()


def tai_seconds(tai: datetime) -> float:
    return tai.replace(tzinfo=UTC).timestamp()


@dataclass
class Monitor:
    cfg: TransferMonitoringConfig
    hook: TransferMonitoringHook
    feed: Feed
    overrides: dict[str, Any]

    @property
    def app(self) -> str:
        return self.cfg.metrics.app

    def ingest(self, idle_exit_s: float = 1.5, timeout_s: float = 90) -> IngestStats:
        self.feed.flush()
        with self.hook.store() as store, self.hook.consumers() as consumers:
            store.ensure_schema()
            ingestor = Ingestor(self.cfg, store, consumers, self.hook.get_object)
            stats = ingestor.run(time.time() + timeout_s, idle_exit_s=idle_exit_s)
            publish_file_messages(store, self.hook.push, self.app)
            publish_new_days(store, self.hook.push, self.app, self.cfg.metrics.transfer_time_buckets)
        return stats

    def evaluate(self) -> PassResult:
        with self.hook.store() as store:
            store.ensure_schema()
            result = Evaluator(self.cfg, store, self.hook.get_object, self.hook.list_prefix).run_pass()
            publish_exposures(store, self.hook.push, self.app, self.cfg.metrics.transfer_time_buckets)
        return result

    def records(self) -> dict[str, dict[str, Any]]:
        with self.hook.store() as store:
            return {r["obs_id"]: r for r in store.exposure_records()}


def monitor_namespace(share_inputs_of: Monitor | None = None, **extra: Any) -> Iterator[Monitor]:
    """A fresh namespace (yielded), removed afterwards: bucket, topics, schema, Pushgateway groups.
    With `share_inputs_of`, the same topics and bucket as that one (which owns and removes them), and
    its own schema, consumer group and `app`: a second monitor of the same inputs."""
    tag = unique("")
    overrides: dict[str, Any] = {
        "file_notifications.topic": f"dtm-test-{tag}-files",
        "end_readouts.topic": f"dtm-test-{tag}-eor",
        "object_store.bucket": f"dtm-test-{tag}",
    }
    if share_inputs_of is not None:
        overrides = {k: share_inputs_of.overrides[k] for k in overrides}
    overrides |= {
        "consumer_group": f"dtm-test-{tag}",
        "postgres.schema": f"dtm_test_{tag}",
        "metrics.app": f"dtm-test-{tag}",
        **extra,
    }
    cfg = load(overrides)
    hook = TransferMonitoringHook(cfg)
    kafka = KafkaHook(cfg.file_notifications.kafka_connection)
    topics = [cfg.file_notifications.topic, cfg.end_readouts.topic]
    owner = share_inputs_of is None
    if owner:
        kafka.ensure_topics(topics)
        create_bucket(hook.s3, cfg.object_store.bucket)
    producer = kafka.producer()
    feed = Feed(hook.s3, producer, cfg.object_store.bucket, topics[0], topics[1])
    try:
        yield Monitor(cfg, hook, feed, overrides)
    finally:
        producer.flush(10)
        with hook.store() as store:
            days = []
            with contextlib.suppress(Exception):
                days = [
                    r[0]
                    for r in store.conn.execute(
                        store.q("SELECT day FROM {s}.metric_days UNION SELECT day FROM {s}.file_messages")
                    ).fetchall()
                ]
            store.drop_schema()
        for day in days:
            hook._pushgateway.delete(cfg.metrics.job, {"app": cfg.metrics.app, "day": day.isoformat()})
        if owner:
            empty_bucket(hook.s3, cfg.object_store.bucket)
            admin = kafka.admin()
            for future in admin.delete_topics(topics, operation_timeout=15).values():
                future.result()


def promql(query: str, at: float | None = None) -> list[dict[str, Any]]:
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{prometheus_url()}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def by_labels(results: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(name, "") for name in labels): float(r["value"][1]) for r in results}


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 20, interval: float = 0.5) -> Any:
    """read() until it equals `expected` (Prometheus scrapes every second); returns the last value read."""
    deadline = time.time() + timeout
    value = read()
    while value != expected and time.time() < deadline:
        time.sleep(interval)
        value = read()
    return value


def start_dag_test(dag_id: str, conf: dict[str, Any], log_path: Any) -> subprocess.Popen[bytes]:
    """`airflow dags test DAG -c CONF` in its own process group (so a test can kill the task with it),
    on the tests' own metadata DB; output to `log_path`."""
    tests_metadata_db()
    out = open(log_path, "wb")  # noqa: SIM115 - closed by the caller through finish()
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, "-c", json.dumps(conf)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> int:
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            kill(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group: the task dies mid-work, as in a node crash."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = "") -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


def scalar(monitor: Monitor, query: str, *params: Any) -> Any:
    """One value from the monitor's schema (`{s}` is the schema); None if the schema is not there yet."""
    with monitor.hook.store() as store:
        try:
            row = store.conn.execute(store.q(query), params).fetchone()
        except Exception:
            return None
        return row[0] if row else None


def write_deployment_config(folder: Path, overrides: dict[str, Any]) -> Path:
    """`folder`/transfer_monitoring.yaml: the shipped file with `overrides` (dotted paths) applied, as a
    deployment's config folder (DATAMOVER_CONFIG_DIR) would hold it. Returns the file."""
    import yaml

    document = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "include/config/transfer_monitoring.yaml").read_text()
    )
    for dotted, value in overrides.items():
        node = document
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = folder / "transfer_monitoring.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
