"""Per-exposure evaluation: a pure function of the end of readout, the expected objects and the first
arrival time of every object under the exposure's prefix.

Definitions (t0 = end of readout in UTC, W = t0 + S3_WAIT_TIME, L = the late threshold):
    found        expected objects whose first arrival is <= W
    missing      expected objects not found (never arrived, or arrived after W): the original's
                 "late or missing" (not present when checked at W)
    transfer     newest first arrival among the found objects - t0; observed in the histogram only when
                 > 0 (a negative value is logged as a warning naming the exposure)
    late         objects under the prefix whose first arrival - t0 > L, including those that arrive after
                 W: they are counted as late, not lost
    late_after_window   the subset of `late` that arrived after W

Only first arrivals count (a resent file's duplicate notification does not move its time), and the
expected-sensors file itself is not an exposure object. Because every figure depends on timestamps only,
evaluating at W, a minute later, or after a crash and restart gives the same result; the one figure that
grows afterwards is `late`, as objects keep arriving (see `count_late`).

When the expected-sensors file did not arrive by W, `expected` is None: the objects under the prefix that
arrived by W are `found`, nothing is `missing`, and the log line says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timing:
    wait_s: float  # S3_WAIT_TIME
    late_threshold_s: float  # MAX_FILE_LATE_TIME


@dataclass(frozen=True, slots=True)
class ExposureResult:
    obs_id: str
    expected: int | None
    found: int
    missing: int
    late: int
    late_after_window: int
    unexpected: int  # objects under the prefix that the expected-sensors file does not list
    transfer_time_s: float | None
    newest_key: str | None
    missing_keys: tuple[str, ...]

    @property
    def observed(self) -> bool:
        """Whether the transfer time goes into the histogram."""
        return self.transfer_time_s is not None and self.transfer_time_s > 0

    @property
    def complete(self) -> bool:
        return self.expected is not None and self.missing == 0

    def log_line(self, timing: Timing, listed: int = 5) -> str:
        """The line logged for an incomplete exposure (and, at debug level, for the others)."""
        if self.expected is None:
            head = (
                f"Exposure {self.obs_id}: no expected-sensors file within {timing.wait_s:g} s of end of "
                f"readout; {self.found} object(s) found"
            )
        else:
            head = (
                f"Exposure {self.obs_id}: {self.found} of {self.expected} expected object(s) found within "
                f"{timing.wait_s:g} s of end of readout, {self.missing} missing"
            )
            if self.missing_keys:
                names = ", ".join(k.rsplit("/", 1)[-1] for k in self.missing_keys[:listed])
                extra = len(self.missing_keys) - listed
                more = f" (+{extra} more)" if extra > 0 else ""
                head += f" ({names}{more})"
        transfer = f"{self.transfer_time_s:.3f} s" if self.transfer_time_s is not None else "none"
        return f"{head}; {self.late} late (> {timing.late_threshold_s:g} s); transfer time {transfer}"


def evaluate(
    obs_id: str,
    end_of_readout_utc: float,
    expected: Iterable[str] | None,
    arrivals: Mapping[str, float],
    timing: Timing,
) -> ExposureResult:
    """The exposure's result. `arrivals`: first arrival (Unix seconds, UTC) of every object under the
    exposure's prefix except the expected-sensors file."""
    window_close = end_of_readout_utc + timing.wait_s
    expected_set = frozenset(expected) if expected is not None else None
    candidates = arrivals.keys() if expected_set is None else expected_set
    found_times = {k: arrivals[k] for k in candidates if k in arrivals and arrivals[k] <= window_close}
    newest_key = max(found_times, key=lambda k: (found_times[k], k)) if found_times else None
    missing_keys = tuple(sorted(expected_set - found_times.keys())) if expected_set is not None else ()
    return ExposureResult(
        obs_id=obs_id,
        expected=len(expected_set) if expected_set is not None else None,
        found=len(found_times),
        missing=len(missing_keys),
        late=count_late(end_of_readout_utc, arrivals.values(), timing.late_threshold_s),
        late_after_window=sum(1 for t in arrivals.values() if t > window_close),
        unexpected=0 if expected_set is None else sum(1 for k in arrivals if k not in expected_set),
        transfer_time_s=(found_times[newest_key] - end_of_readout_utc) if newest_key is not None else None,
        newest_key=newest_key,
        missing_keys=missing_keys,
    )


def count_late(end_of_readout_utc: float, first_arrivals: Iterable[float], late_threshold_s: float) -> int:
    return sum(1 for t in first_arrivals if t - end_of_readout_utc > late_threshold_s)


def is_ready(
    now: float,
    window_close: float,
    ingested_until: float | None,
    slack_s: float,
    all_expected_arrived: bool,
) -> bool:
    """Whether an exposure can be evaluated now, with a result that waiting longer would not change.

    Either every expected object has arrived (nothing more can be found), or the wait window has closed
    and the file notifications are ingested up to `slack_s` past it (a notification for an object
    stored just before W may still be on its way from the object store to Kafka)."""
    if all_expected_arrived:
        return True
    settled = window_close + slack_s
    return now >= settled and ingested_until is not None and ingested_until >= settled
