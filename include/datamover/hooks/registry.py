"""Which hook serves which Airflow connection type."""

from __future__ import annotations

from datamover.hooks.base import DataMoverHook
from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.pushgateway import PushgatewayHook
from datamover.hooks.s3 import ObjectStoreHook

HOOKS_BY_CONN_TYPE: dict[str, type[DataMoverHook]] = {
    "postgres": PostgresHook,
    "aws": ObjectStoreHook,
    "kafka": KafkaHook,
    "http": PushgatewayHook,
}
