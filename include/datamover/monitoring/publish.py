"""Push the metrics of every observing day whose totals changed since its last push.

The values are recomputed from PostgreSQL (one consistent snapshot) and pushed as absolute totals to
the group {job, app, day} of the Pushgateway, with POST semantics: the ingest pushes
`dtm_file_messages_received_total` and the evaluator the three exposure metrics into the same group, each
replacing only its own metrics. What is pushed is marked with the version it reflects; a failed push
leaves the day marked for the next attempt. Metrics are a side channel: a push failure is logged, never
raised, so it cannot stop ingestion or evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from prometheus_client.metrics_core import Metric

from datamover.monitoring.metrics import (
    ExposureTotals,
    FileMessageTotals,
    Histogram,
    exposure_families,
    file_message_families,
)
from datamover.monitoring.store import EXPOSURES_GROUP, FILE_MESSAGES_GROUP, Store
from datamover.monitoring.timescale import day_label

log = logging.getLogger(__name__)

# (metric families, grouping key) -> None; raises OSError (or anything) when the push fails.
Push = Callable[[list[Metric], Mapping[str, str]], None]


@dataclass
class PublishResult:
    days: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _publish(
    store: Store,
    group: str,
    push: Push,
    app: str,
    families_of: Callable[[Store, object, list[date]], dict[date, list[Metric]]],
    logger: logging.Logger,
) -> tuple[PublishResult, dict[date, int], datetime | None]:
    result = PublishResult()
    with store.transaction() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT clock_timestamp()")
        snapshot_at = cur.fetchone()[0]  # type: ignore[index]
        dirty = store.dirty_days(cur, group)
        if not dirty:
            return result, {}, None
        families = families_of(store, cur, sorted(dirty))
    pushed: dict[date, int] = {}
    for day, version in sorted(dirty.items()):
        label = day_label(day)
        try:
            push(families[day], {"app": app, "day": label})
        except Exception as exc:  # a side channel never fails the data path
            result.failed.append(label)
            logger.warning("Metrics of day %s (%s) not pushed, will retry: %s", label, group, exc)
            continue
        pushed[day] = version
        result.days.append(label)
    if pushed:
        store.mark_pushed(group, pushed)
    return result, pushed, snapshot_at


def _file_message_families(store: Store, cur: object, days: list[date]) -> dict[date, list[Metric]]:
    totals = store.file_message_totals(cur, days)  # type: ignore[arg-type]
    return {d: file_message_families([FileMessageTotals(day_label(d), totals.get(d, 0))]) for d in days}


def publish_file_messages(
    store: Store, push: Push, app: str, logger: logging.Logger | None = None
) -> PublishResult:
    result, _pushed, _at = _publish(
        store, FILE_MESSAGES_GROUP, push, app, _file_message_families, logger or log
    )
    return result


def publish_new_days(
    store: Store, push: Push, app: str, buckets: list[float], logger: logging.Logger | None = None
) -> PublishResult:
    """Push the exposure metrics of days never pushed before and with no exposure evaluated yet: their
    true totals are zero. Run by the ingest as soon as a day's first End Readout is stored, so each day's
    series exist before its first observation and Prometheus' rate() counts that observation too.

    The day's metric_days row is locked while the zeros are pushed: an evaluation of that day, which bumps
    the same row, commits only afterwards, so a stale zero can never overwrite a real total."""
    logger = logger or log
    result = PublishResult()
    with store.transaction() as cur:
        days = store.lock_unpushed_days(cur, EXPOSURES_GROUP)
        for day, version in sorted(days.items()):
            label = day_label(day)
            zero = ExposureTotals(label, Histogram.of([], buckets), 0, 0)
            try:
                push(exposure_families([zero]), {"app": app, "day": label})
            except Exception as exc:  # a side channel never fails the data path
                result.failed.append(label)
                logger.warning("Metrics of day %s not pushed, will retry: %s", label, exc)
                continue
            store.set_pushed_version(cur, EXPOSURES_GROUP, day, version)
            result.days.append(label)
    return result


def publish_exposures(
    store: Store,
    push: Push,
    app: str,
    buckets: list[float],
    logger: logging.Logger | None = None,
) -> PublishResult:
    def families_of(store: Store, cur: object, days: list[date]) -> dict[date, list[Metric]]:
        totals = store.exposure_totals(cur, days)  # type: ignore[arg-type]
        out = {}
        for d in days:
            times, late, missing, n = totals[d]
            t = ExposureTotals(day_label(d), Histogram.of(times, buckets), late, missing, n)
            out[d] = exposure_families([t])
        return out

    result, pushed, snapshot_at = _publish(store, EXPOSURES_GROUP, push, app, families_of, logger or log)
    if pushed and snapshot_at is not None:
        store.mark_exposures_pushed(sorted(pushed), snapshot_at)
    return result
