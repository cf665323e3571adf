"""The connections of transfer monitoring, turned into the ready clients its pure logic takes.

One config (include/config/transfer_monitoring.yaml) names five connections: PostgreSQL (the store), two
Kafka connections (file notifications and End Readouts may live on different clusters, as in production),
the object store (an `aws` connection to the Ceph RGW) and the Pushgateway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import cached_property
from typing import Any

from prometheus_client.metrics_core import Metric

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.pushgateway import PushgatewayHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.monitoring.config import TransferMonitoringConfig
from datamover.monitoring.ingest import Consumer
from datamover.monitoring.metrics import registry_of
from datamover.monitoring.objects import get_small_object, list_prefix
from datamover.monitoring.store import END_READOUTS, FILE_NOTIFICATIONS, Store


class TransferMonitoringHook:
    def __init__(self, cfg: TransferMonitoringConfig) -> None:
        self.cfg = cfg

    @contextmanager
    def store(self) -> Iterator[Store]:
        """A Store on its own autocommit connection (closed on exit)."""
        conn = PostgresHook(self.cfg.postgres.connection).connect()
        conn.autocommit = True
        try:
            yield Store(conn, self.cfg.postgres.schema_name)
        finally:
            conn.close()

    @contextmanager
    def consumers(self) -> Iterator[dict[str, Consumer]]:
        """One consumer per source (offsets come from PostgreSQL; auto commit off)."""
        with ExitStack() as stack:
            out: dict[str, Consumer] = {}
            for name, source in (
                (FILE_NOTIFICATIONS, self.cfg.file_notifications),
                (END_READOUTS, self.cfg.end_readouts),
            ):
                consumer = KafkaHook(source.kafka_connection).consumer(
                    f"{self.cfg.consumer_group}.{name}",
                    **{"enable.auto.offset.store": False, "fetch.wait.max.ms": 100},
                )
                stack.callback(consumer.close)
                out[name] = consumer
            yield out

    @cached_property
    def s3(self) -> Any:
        return ObjectStoreHook(self.cfg.object_store.connection).client(pool=16, retries=3)

    def get_object(self, key: str) -> bytes | None:
        return get_small_object(self.s3, self.cfg.object_store.bucket, key)

    def list_prefix(self, prefix: str) -> list[tuple[str, Any]]:
        return list_prefix(self.s3, self.cfg.object_store.bucket, prefix)

    @cached_property
    def _pushgateway(self) -> PushgatewayHook:
        return PushgatewayHook(self.cfg.metrics.pushgateway_connection)

    def push(self, families: list[Metric], grouping_key: Mapping[str, str]) -> None:
        """Replace these metrics in the group {job, **grouping_key} (the Pushgateway's POST)."""
        self._pushgateway.push_add(registry_of(families), self.cfg.metrics.job, grouping_key, timeout=5)
