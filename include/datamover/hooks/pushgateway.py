"""Prometheus Pushgateway from an Airflow `http` connection (host, port, schema http/https). No provider
ships a Pushgateway hook; prometheus_client does the pushing."""

from __future__ import annotations

from collections.abc import Mapping

from airflow.sdk import BaseHook
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

from datamover.hooks.base import CheckedConnection


class PushgatewayHook(CheckedConnection, BaseHook):
    conn_name_attr = "pushgateway_conn_id"
    default_conn_name = "pushgateway_default"
    conn_type = "http"
    hook_name = "Prometheus Pushgateway"

    def __init__(self, pushgateway_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.pushgateway_conn_id = pushgateway_conn_id

    @property
    def url(self) -> str:
        c = self.require_connection()
        host = c.host or "localhost"
        if "://" in host:
            return host.rstrip("/")
        return f"{c.schema or 'http'}://{host}:{c.port or 9091}"

    def push(
        self, registry: CollectorRegistry, job: str, grouping_key: Mapping[str, str] | None = None
    ) -> None:
        """Replace the metrics of (job, grouping_key) with those in `registry`."""
        push_to_gateway(
            self.url, job=job, registry=registry, grouping_key=dict(grouping_key or {}), timeout=10
        )

    def push_add(
        self,
        registry: CollectorRegistry,
        job: str,
        grouping_key: Mapping[str, str] | None = None,
        timeout: float = 10,
    ) -> None:
        """Replace only the metrics of (job, grouping_key) that `registry` has (POST): another process
        can own the group's other metrics."""
        pushadd_to_gateway(
            self.url, job=job, registry=registry, grouping_key=dict(grouping_key or {}), timeout=timeout
        )

    def delete(self, job: str, grouping_key: Mapping[str, str] | None = None) -> None:
        """Remove the group (job, grouping_key) from the Pushgateway."""
        delete_from_gateway(self.url, job=job, grouping_key=dict(grouping_key or {}), timeout=10)

    def check(self) -> str:
        registry = CollectorRegistry()
        Gauge(
            "datamover_connectivity_check_timestamp_seconds",
            "Last successful connectivity check",
            registry=registry,
        ).set_to_current_time()
        try:
            self.push(registry, job="datamover_connectivity_check")
        except OSError as exc:
            raise self.failure(
                f"cannot push to the Pushgateway at {self.url}: {exc}",
                "check host, port and schema of the connection",
            ) from None
        return f"Pushgateway at {self.url}: push accepted"
