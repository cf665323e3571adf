"""Preflight: prove that one Airflow connection works before any DAG relies on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseHook, BaseOperator

from datamover.errors import ConnectionCheckError
from datamover.hooks.registry import HOOKS_BY_CONN_TYPE
from datamover.operators.lineage import LineageMixin


class ConnectionCheckOperator(LineageMixin, BaseOperator):
    """Open the connection with the hook for its type and do one cheap real request:
    a query (postgres), ListBuckets (aws), cluster metadata (kafka), a metric push (http/pushgateway).
    Lineage: none (no data moves; the empty lists say so)."""

    template_fields: Sequence[str] = ("conn_id",)
    ui_color = "#d7f0e6"

    def __init__(self, *, conn_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def execute(self, context: Any) -> str:
        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception as exc:  # the SDK raises its own AirflowNotFoundException subclasses
            raise ConnectionCheckError(
                f"Connection {self.conn_id!r} is not defined ({type(exc).__name__}). Fix: add it under "
                "Admin > Connections, or load airflow_settings.yaml with `make settings`."
            ) from None
        hook_class = HOOKS_BY_CONN_TYPE.get(conn.conn_type or "")
        if hook_class is None:
            raise ConnectionCheckError(
                f"Connection {self.conn_id!r} has type {conn.conn_type!r}, which no check knows. Fix: use "
                f"one of {', '.join(sorted(HOOKS_BY_CONN_TYPE))}."
            )
        result = hook_class(self.conn_id).check()
        self.log.info("Connection %r OK: %s", self.conn_id, result)
        return result
