"""The original's Prometheus metrics, with its exact names, label and buckets, built from per-day totals.

    dtm_file_messages_received_total{day}      counter: file notifications received (duplicates counted)
    dtm_s3_transfer_duration_seconds{day}      histogram: per exposure, newest found object - end of readout
    dtm_s3_late_files_total{day}               counter: objects later than the late threshold
    dtm_s3_late_or_missing_total{day}          counter: expected objects not found when the window closed

The values are not incremented in memory: each push carries the absolute totals of one observing day,
recomputed from PostgreSQL (see `publish`), so a restart, a rerun or a replayed message cannot change them.
The Pushgateway keeps the last push per group (job, app, day); Prometheus scrapes it with honor_labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

FILE_MESSAGES = "dtm_file_messages_received"
TRANSFER_DURATION = "dtm_s3_transfer_duration_seconds"
LATE_FILES = "dtm_s3_late_files"
LATE_OR_MISSING = "dtm_s3_late_or_missing"
DEFAULT_BUCKETS: tuple[float, ...] = (3, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 45, 60)
DAY_LABEL = "day"

_HELP = {
    FILE_MESSAGES: "File notifications received (duplicates counted)",
    TRANSFER_DURATION: "Exposure transfer time: newest object time minus end of readout",
    LATE_FILES: "Objects whose transfer time exceeds the late file threshold",
    LATE_OR_MISSING: "Expected objects not present when the wait window closed",
}


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts (one per upper bound, then +Inf), sum and count of observations."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # len(bounds) + 1, the last is +Inf == count
    total: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]

    @classmethod
    def of(cls, observations: Iterable[float], bounds: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        """Prometheus bucketing: an observation goes to every bucket whose upper bound it does not exceed."""
        ordered = tuple(sorted(float(b) for b in bounds))
        per_bucket = [0] * (len(ordered) + 1)
        total = 0.0
        for value in observations:
            total += value
            for i, bound in enumerate(ordered):
                if value <= bound:
                    per_bucket[i] += 1
                    break
            else:
                per_bucket[-1] += 1
        cumulative, running = [], 0
        for n in per_bucket:
            running += n
            cumulative.append(running)
        return cls(ordered, tuple(cumulative), total)


@dataclass(frozen=True, slots=True)
class FileMessageTotals:
    day: str
    messages: int


@dataclass(frozen=True, slots=True)
class ExposureTotals:
    day: str
    transfer: Histogram
    late_files: int
    late_or_missing: int
    exposures: int = field(default=0, compare=False)  # evaluated exposures (for logs, not a metric)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def file_message_families(totals: Iterable[FileMessageTotals]) -> list[Metric]:
    family = CounterMetricFamily(FILE_MESSAGES, _HELP[FILE_MESSAGES], labels=[DAY_LABEL])
    for t in totals:
        family.add_metric([t.day], t.messages)
    return [family]


def exposure_families(totals: Iterable[ExposureTotals]) -> list[Metric]:
    transfer = HistogramMetricFamily(TRANSFER_DURATION, _HELP[TRANSFER_DURATION], labels=[DAY_LABEL])
    late = CounterMetricFamily(LATE_FILES, _HELP[LATE_FILES], labels=[DAY_LABEL])
    missing = CounterMetricFamily(LATE_OR_MISSING, _HELP[LATE_OR_MISSING], labels=[DAY_LABEL])
    for t in totals:
        h = t.transfer
        buckets = [(floatToGoString(b), n) for b, n in zip(h.bounds, h.cumulative, strict=False)]
        buckets.append(("+Inf", h.count))
        transfer.add_metric([t.day], buckets=buckets, sum_value=h.total)
        late.add_metric([t.day], t.late_files)
        missing.add_metric([t.day], t.late_or_missing)
    return [transfer, late, missing]


def registry_of(families: list[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return registry
