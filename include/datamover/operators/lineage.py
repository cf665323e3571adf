"""OpenLineage glue: operators record the datasets they really read and wrote while they run, and the
OpenLineage provider's listener collects them after the task (`get_openlineage_facets_on_complete`,
and `..._on_failure` for what a failed attempt had touched). Names come from datamover.lineage (pure).

Lineage is off unless an OpenLineage transport is configured (`[openlineage] transport`, e.g.
AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "file", "log_file_path": "/tmp/ol.json", "append": true}');
recording costs a few list appends, and never fails a task: a name that cannot be built is logged.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from datamover.lineage import DatasetName, kafka_topic, postgres_table

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from datamover.hooks.kafka import KafkaHook
    from datamover.hooks.postgres import PostgresHook


def this_host() -> str:
    """The host name local paths are namespaced by (the worker that read or wrote them)."""
    return socket.getfqdn() or socket.gethostname()


def postgres_dataset(hook: PostgresHook, table: str, schema: str | None = None) -> DatasetName:
    """A table behind an Airflow postgres connection (host, port, database from the connection)."""
    c = hook.require_connection()
    return postgres_table(c.host, c.port, hook.database or c.schema or "postgres", table, schema)


def kafka_dataset(hook: KafkaHook, topic: str) -> DatasetName:
    return kafka_topic(hook.servers(), topic)


class LineageMixin:
    """Mix into an operator: `self.lineage(inputs=[...], outputs=[...])` during execute."""

    def _lineage_lists(self) -> tuple[list[DatasetName], list[DatasetName]]:
        state = self.__dict__.setdefault("_datamover_lineage", ([], []))
        return state

    def lineage(
        self,
        inputs: Iterable[DatasetName | Callable[[], DatasetName]] = (),
        outputs: Iterable[DatasetName | Callable[[], DatasetName]] = (),
    ) -> None:
        """Record datasets (or callables building them: a failing one is logged, not raised)."""
        ins, outs = self._lineage_lists()
        for into, items in ((ins, inputs), (outs, outputs)):
            for item in items:
                try:
                    name = item() if callable(item) else item
                except Exception as exc:  # lineage must never fail the data path
                    getattr(self, "log").warning("OpenLineage: dataset name not recorded: %s", exc)  # noqa: B009
                    continue
                if name not in into:
                    into.append(name)

    @property
    def lineage_inputs(self) -> list[DatasetName]:
        return list(self._lineage_lists()[0])

    @property
    def lineage_outputs(self) -> list[DatasetName]:
        return list(self._lineage_lists()[1])

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        ins, outs = self._lineage_lists()
        return OperatorLineage(
            inputs=[Dataset(namespace=d.namespace, name=d.name) for d in ins],
            outputs=[Dataset(namespace=d.namespace, name=d.name) for d in outs],
        )

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage:
        return self.get_openlineage_facets_on_complete(task_instance)


__all__ = ["LineageMixin", "kafka_dataset", "postgres_dataset", "this_host"]
