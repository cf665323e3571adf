"""One evaluation pass: every exposure that is ready (its wait window closed and notifications ingested
past it, or all its expected objects arrived) is evaluated once, and its result stored in its row.

Per pass:
  1. pick the ready exposures (at most `evaluation.max_exposures`);
  2. outside any transaction: list each one's prefix in the object store (objects whose notification was
     lost still count, with their LastModified as arrival) and read expected-sensors files that were never
     notified;
  3. in one transaction: lock the rows (SKIP LOCKED), store listed objects and expected files, read the
     first arrivals, evaluate (datamover.monitoring.evaluation), store the results, and count late
     arrivals of exposures evaluated earlier (the sweep), marking the days whose metrics changed.

A crash anywhere leaves either the whole pass or nothing; the next pass does the same work again and,
since results depend on timestamps only, gets the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import psycopg

from datamover.monitoring.config import TransferMonitoringConfig
from datamover.monitoring.evaluation import ExposureResult, Timing, evaluate
from datamover.monitoring.ingest import GetObject, read_expected
from datamover.monitoring.store import ExpectedRow, Pending, Store
from datamover.monitoring.timescale import utc_datetime

log = logging.getLogger(__name__)

ListPrefix = Callable[[str], list[tuple[str, datetime]]]


@dataclass
class PassResult:
    results: list[ExposureResult] = field(default_factory=list)
    listed_only: int = 0  # objects found by listing with no notification
    swept: int = 0  # evaluated exposures whose late count grew
    days: set[date] = field(default_factory=set)

    @property
    def evaluated(self) -> int:
        return len(self.results)

    @property
    def incomplete(self) -> int:
        return sum(1 for r in self.results if not r.complete)


class Evaluator:
    def __init__(
        self,
        cfg: TransferMonitoringConfig,
        store: Store,
        get_object: GetObject,
        list_prefix: ListPrefix | None,
        *,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.get_object = get_object
        self.list_prefix = list_prefix if cfg.evaluation.list_prefix else None
        self.clock = clock
        self.log = logger or log
        t = cfg.timing
        self.timing = Timing(wait_s=t.s3_wait_time_s, late_threshold_s=t.max_file_late_time_s)
        self.wait = timedelta(seconds=t.s3_wait_time_s)
        self.slack = timedelta(seconds=t.notification_slack_s)
        self.late = timedelta(seconds=t.max_file_late_time_s)

    def run_pass(self, obs_id: str | None = None) -> PassResult:
        """Evaluate what is ready now (only `obs_id`, if given) and sweep late arrivals."""
        now = utc_datetime(self.clock())
        ready = self.store.ready_obs_ids(
            now, self.wait, self.slack, self.cfg.evaluation.max_exposures, obs_id
        )
        with self.store.transaction() as cur:
            candidates = self.store.pending(cur, ready, lock=False)
        listed, fetched = self._read_object_store(candidates)
        for attempt in range(5):
            try:
                return self._evaluate(ready, listed, fetched)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def _read_object_store(
        self, candidates: Sequence[Pending]
    ) -> tuple[dict[str, list[tuple[str, datetime]]], dict[str, ExpectedRow]]:
        if not candidates:
            return {}, {}
        workers = self.cfg.evaluation.list_workers
        listed: dict[str, list[tuple[str, datetime]]] = {}
        with ThreadPoolExecutor(workers, thread_name_prefix="list") as pool:
            if self.list_prefix is not None:
                listed = dict(
                    zip(
                        (c.prefix for c in candidates),
                        pool.map(self.list_prefix, (c.prefix for c in candidates)),
                        strict=True,
                    )
                )
            with self.store.transaction() as cur:
                have = set(self.store.expected_for(cur, [c.prefix for c in candidates]))
                known = self.store.keys_known(cur, [c.expected_key for c in candidates])
            # An expected-sensors file whose notification never came, but which is in the bucket.
            missing = [
                c
                for c in candidates
                if c.prefix not in have
                and (c.expected_key in known or c.expected_key in {k for k, _ in listed.get(c.prefix, ())})
            ]
            rows = pool.map(
                lambda c: read_expected(self.get_object, c.prefix, c.expected_key, c.obs_id), missing
            )
            fetched = {row.prefix: row for row in rows}
        return listed, fetched

    def _evaluate(
        self,
        ready: Sequence[str],
        listed: dict[str, list[tuple[str, datetime]]],
        fetched: dict[str, ExpectedRow],
    ) -> PassResult:
        out = PassResult()
        with self.store.transaction() as cur:
            pending = self.store.pending(cur, ready, lock=True)
            prefixes = [p.prefix for p in pending]
            self.store.insert_expected(cur, [fetched[p] for p in prefixes if p in fetched])
            known = self.store.keys_known(cur, [k for p in prefixes for k, _ in listed.get(p, ())])
            unnotified = [(k, p, t) for p in prefixes for k, t in listed.get(p, ()) if k not in known]
            out.listed_only = self.store.insert_listed(cur, unnotified)
            arrivals = self.store.first_arrivals(cur, prefixes)
            expected = self.store.expected_for(cur, prefixes)
            for exposure in pending:
                out.results.append(
                    self._one(exposure, arrivals[exposure.prefix], expected.get(exposure.prefix))
                )
            if pending:
                self.store.save_results(cur, out.results, {p.day for p in pending})
                out.days.update(p.day for p in pending)
            out.swept, swept_days = self.store.sweep_late(cur, self.wait, self.late)
            out.days.update(swept_days)
        for result in out.results:
            if not result.complete:
                self.log.warning("%s", result.log_line(self.timing))
            if result.transfer_time_s is not None and result.transfer_time_s <= 0:
                self.log.warning(
                    "Exposure %s: transfer time %.3f s is not positive (newest object %s is not newer "
                    "than the end of readout); not observed",
                    result.obs_id,
                    result.transfer_time_s,
                    result.newest_key,
                )
        if unnotified:
            self.log.warning(
                "%d object(s) in the bucket had no file notification; timed by their LastModified",
                out.listed_only,
            )
        return out

    def _one(
        self, exposure: Pending, arrivals: dict[str, datetime], expected: ExpectedRow | None
    ) -> ExposureResult:
        t0 = exposure.end_of_readout.timestamp()
        window_close = t0 + self.timing.wait_s
        # The expected-sensors file is not an exposure object; its list counts if it came within the window.
        expected_at = arrivals.pop(exposure.expected_key, None)
        usable = expected is not None and expected.keys is not None and expected_at is not None
        keys = expected.keys if usable and expected_at.timestamp() <= window_close else None  # type: ignore[union-attr]
        times = {k: t.timestamp() for k, t in arrivals.items()}
        return evaluate(exposure.obs_id, t0, keys, times, self.timing)
