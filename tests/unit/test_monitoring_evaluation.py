"""Per-exposure evaluation and the metric families, computed by hand from the definitions."""

from __future__ import annotations

import pytest
from prometheus_client.exposition import generate_latest

from datamover.monitoring.evaluation import Timing, evaluate, is_ready
from datamover.monitoring.metrics import (
    DEFAULT_BUCKETS,
    ExposureTotals,
    FileMessageTotals,
    Histogram,
    exposure_families,
    file_message_families,
    registry_of,
)

T0 = 1_746_185_353.0  # end of readout, UTC seconds
TIMING = Timing(wait_s=30, late_threshold_s=10)
P = "LSSTCam/20250502/MC_O_20250502_000010/MC_O_20250502_000010_"
EXPECTED = [f"{P}R{i}.fits" for i in range(4)]


def test_complete_exposure() -> None:
    arrivals = {EXPECTED[0]: T0 + 2, EXPECTED[1]: T0 + 3.5, EXPECTED[2]: T0 + 4, EXPECTED[3]: T0 + 6.25}
    r = evaluate("E", T0, EXPECTED, arrivals, TIMING)
    assert (r.expected, r.found, r.missing, r.late, r.late_after_window, r.unexpected) == (4, 4, 0, 0, 0, 0)
    assert r.transfer_time_s == pytest.approx(6.25) and r.newest_key == EXPECTED[3]
    assert r.complete and r.observed


def test_late_missing_and_after_window() -> None:
    arrivals = {
        EXPECTED[0]: T0 + 5,
        EXPECTED[1]: T0 + 12,  # late, within the window
        EXPECTED[2]: T0 + 45,  # after the window: missing when checked, and late
        f"{P}extra.json": T0 + 11,  # not expected: late, never found or missing
    }
    r = evaluate("E", T0, EXPECTED, arrivals, TIMING)
    assert (r.expected, r.found, r.missing) == (4, 2, 2)
    assert r.missing_keys == (EXPECTED[2], EXPECTED[3])
    assert (r.late, r.late_after_window, r.unexpected) == (3, 1, 1)
    assert r.transfer_time_s == pytest.approx(12)  # the newest *found* object
    line = r.log_line(TIMING)
    assert line.startswith(
        "Exposure E: 2 of 4 expected object(s) found within 30 s of end of readout, 2 missing"
    )
    assert "MC_O_20250502_000010_R2.fits, MC_O_20250502_000010_R3.fits" in line and "3 late (> 10 s)" in line


def test_window_edge_is_inclusive_and_threshold_exclusive() -> None:
    r = evaluate("E", T0, EXPECTED[:2], {EXPECTED[0]: T0 + 30, EXPECTED[1]: T0 + 10}, TIMING)
    assert (r.found, r.missing, r.late, r.late_after_window) == (2, 0, 1, 0)


def test_nothing_arrived() -> None:
    r = evaluate("E", T0, EXPECTED, {}, TIMING)
    assert (r.found, r.missing, r.late) == (0, 4, 0)
    assert r.transfer_time_s is None and not r.observed
    assert "transfer time none" in r.log_line(TIMING)


def test_negative_transfer_time_is_not_observed() -> None:
    r = evaluate("E", T0, EXPECTED[:1], {EXPECTED[0]: T0 - 1}, TIMING)
    assert r.transfer_time_s == pytest.approx(-1) and not r.observed and r.complete


def test_no_expected_sensors_file() -> None:
    r = evaluate("E", T0, None, {EXPECTED[0]: T0 + 3, EXPECTED[1]: T0 + 40}, TIMING)
    assert (r.expected, r.found, r.missing, r.late, r.late_after_window) == (None, 1, 0, 1, 1)
    assert r.transfer_time_s == pytest.approx(3) and not r.complete
    assert "no expected-sensors file within 30 s" in r.log_line(TIMING)


def test_readiness() -> None:
    w = T0 + 30
    assert is_ready(T0 + 5, w, None, 2, all_expected_arrived=True)
    assert not is_ready(w + 1, w, w + 5, 2, all_expected_arrived=False)  # within the slack
    assert not is_ready(w + 3, w, w + 1, 2, all_expected_arrived=False)  # ingest not caught up
    assert not is_ready(w + 3, w, None, 2, all_expected_arrived=False)
    assert is_ready(w + 3, w, w + 2, 2, all_expected_arrived=False)


def test_histogram_bucketing() -> None:
    # The seed: with buckets 20 and 25, a 22 s transfer is reported at 25. A value on a bound is in it.
    h = Histogram.of([22, 25, 2.5, 61, 3], DEFAULT_BUCKETS)
    by_bound = dict(zip(h.bounds, h.cumulative, strict=False))
    assert by_bound[3] == 2 and by_bound[20] == 2 and by_bound[25] == 4 and by_bound[60] == 4
    assert h.count == 5 and h.total == pytest.approx(113.5)


def test_exposition_has_the_original_names_labels_and_buckets() -> None:
    totals = ExposureTotals("2025-05-01", Histogram.of([4.2, 22]), late_files=7, late_or_missing=3)
    families = file_message_families([FileMessageTotals("2025-05-01", 812)]) + exposure_families([totals])
    text = generate_latest(registry_of(families)).decode()
    assert 'dtm_file_messages_received_total{day="2025-05-01"} 812.0' in text
    assert 'dtm_s3_late_files_total{day="2025-05-01"} 7.0' in text
    assert 'dtm_s3_late_or_missing_total{day="2025-05-01"} 3.0' in text
    assert "# TYPE dtm_s3_transfer_duration_seconds histogram" in text
    les = [line.split('le="')[1].split('"')[0] for line in text.splitlines() if "_bucket{" in line]
    assert les == [*(f"{b:.1f}" for b in DEFAULT_BUCKETS), "+Inf"]  # prometheus_client's own le format
    assert 'dtm_s3_transfer_duration_seconds_bucket{day="2025-05-01",le="5.0"} 1.0' in text
    assert 'dtm_s3_transfer_duration_seconds_bucket{day="2025-05-01",le="25.0"} 2.0' in text
    assert 'dtm_s3_transfer_duration_seconds_count{day="2025-05-01"} 2.0' in text
    assert 'dtm_s3_transfer_duration_seconds_sum{day="2025-05-01"} 26.2' in text
    assert "_created" not in text
