"""Which hook checks which Airflow connection type (the connectivity_check DAG)."""

from __future__ import annotations

from datamover.hooks.base import CheckedConnection
from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.pushgateway import PushgatewayHook
from datamover.hooks.s3 import ObjectStoreHook

HOOKS_BY_CONN_TYPE: dict[str, type[CheckedConnection]] = {
    "postgres": PostgresHook,
    "aws": ObjectStoreHook,
    "kafka": KafkaHook,
    "http": PushgatewayHook,
}
