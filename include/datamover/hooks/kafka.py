"""Apache Kafka via confluent-kafka, from an Airflow `kafka` connection.

The connection's extra is the librdkafka client config; `bootstrap.servers` is mandatory
(the same convention as the apache-kafka provider, so one connection serves both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from datamover.errors import ConfigError
from datamover.hooks.base import DataMoverHook


class KafkaHook(DataMoverHook):
    conn_name_attr = "kafka_config_id"
    default_conn_name = "kafka_default"
    conn_type = "kafka"
    hook_name = "Apache Kafka (confluent-kafka)"

    def client_config(self) -> dict[str, Any]:
        config = dict(self.connection.extra_dejson or {})
        if not config.get("bootstrap.servers"):
            raise ConfigError(
                f"Connection {self.conn_id!r} has no 'bootstrap.servers' in its extra: "
                'add {"bootstrap.servers": "host:9092"}.'
            )
        return config

    def admin(self) -> AdminClient:
        return AdminClient(self.client_config())

    def producer(self, **overrides: Any) -> Producer:
        return Producer({"linger.ms": 5, "enable.idempotence": True, **self.client_config(), **overrides})

    def consumer(self, group_id: str, **overrides: Any) -> Consumer:
        return Consumer(
            {
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **self.client_config(),
                "group.id": group_id,
                **overrides,
            }
        )

    def ensure_topics(self, topics: Iterable[str], partitions: int = 1, timeout: float = 15) -> list[str]:
        """Create the topics that do not exist yet; return the ones created."""
        admin = self.admin()
        existing = set(admin.list_topics(timeout=timeout).topics)
        wanted = [t for t in dict.fromkeys(topics) if t not in existing]
        if not wanted:
            return []
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=-1) for t in wanted],
            operation_timeout=timeout,
        )
        for _topic, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another worker won the race
                    raise
        return wanted

    def check(self) -> str:
        try:
            servers = self.client_config()["bootstrap.servers"]
            metadata = self.admin().list_topics(timeout=10)
        except (KafkaException, ConfigError) as exc:
            raise self.failure(
                f"no Kafka metadata from the brokers: {exc}",
                "check bootstrap.servers and security settings in the extra",
            ) from None
        return f"Kafka at {servers}: {len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"
