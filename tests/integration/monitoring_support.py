"""Shared set-up for the transfer monitoring integration tests: a private namespace on the real services
(bucket, topics, PostgreSQL schema, Pushgateway `app` label), the feed, and PromQL reads."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.transfer_monitoring import TransferMonitoringHook
from datamover.monitoring.config import TransferMonitoringConfig, load
from datamover.monitoring.evaluator import Evaluator, PassResult
from datamover.monitoring.ingest import Ingestor, IngestStats
from datamover.monitoring.publish import publish_exposures, publish_file_messages
from datamover.s3 import create_bucket
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


def monitor_namespace(**extra: Any) -> Iterator[Monitor]:
    """A fresh namespace (yielded), removed afterwards: bucket, topics, schema, Pushgateway groups."""
    tag = unique("")
    overrides: dict[str, Any] = {
        "file_notifications.topic": f"dtm-test-{tag}-files",
        "end_readouts.topic": f"dtm-test-{tag}-eor",
        "consumer_group": f"dtm-test-{tag}",
        "object_store.bucket": f"dtm-test-{tag}",
        "postgres.schema": f"dtm_test_{tag}",
        "metrics.app": f"dtm-test-{tag}",
        **extra,
    }
    cfg = load(overrides)
    hook = TransferMonitoringHook(cfg)
    kafka = KafkaHook(cfg.file_notifications.kafka_connection)
    topics = [cfg.file_notifications.topic, cfg.end_readouts.topic]
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
