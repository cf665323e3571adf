"""The health watch's rules: silence after a timeout, thresholds held for a while, each alert once."""

from __future__ import annotations

from datamover.streams.settings import Threshold, WatchConfig
from datamover.streams.watch import HealthWatch

S = 1000  # ms


def reading(member: str, what: str, value: float) -> dict:
    return {"member_id": member, "cluster_id": "c1", "health_description": what, "value": value}


def watch(**config: object) -> HealthWatch:
    w = HealthWatch(WatchConfig(silence_timeout_s=60, **config))
    w.contact(0)
    return w


def in_touch(w: HealthWatch, until_ms: int) -> None:
    for t in range(0, until_ms + 1, 5 * S):
        w.contact(t)


def test_a_silent_member_is_alerted_once_and_again_after_it_spoke() -> None:
    w = watch()
    w.observe(reading("h.scheduler", "load_average", 0.5), 10 * S)
    w.observe(reading("h.triggerer", "load_average", 0.5), 10 * S)
    in_touch(w, 100 * S)
    w.observe(reading("h.triggerer", "load_average", 0.5), 65 * S)
    assert w.check(69 * S) == []
    alerts = w.check(71 * S)
    assert [(a.member_id, a.kind, a.since_ms) for a in alerts] == [("h.scheduler", "silent", 10 * S)]
    assert "stopped publishing" in alerts[0].reason and alerts[0].cluster_id == "c1"
    assert w.check(90 * S) == []  # once
    w.observe(reading("h.scheduler", "load_average", 0.5), 95 * S)
    in_touch(w, 200 * S)
    assert [a.member_id for a in w.check(156 * S)] == ["h.scheduler", "h.triggerer"]


def test_no_silence_alert_without_a_full_timeout_of_contact_with_kafka() -> None:
    w = HealthWatch(WatchConfig(silence_timeout_s=60))
    w.observe(reading("h.scheduler", "load_average", 0.5), 0)
    w.contact(100 * S)  # the watch (or the broker) just came back
    assert w.check(120 * S) == []
    in_touch_from = range(100 * S, 170 * S, 5 * S)
    for t in in_touch_from:
        w.contact(t)
    assert [a.kind for a in w.check(165 * S)] == ["silent"]


def test_exempt_and_unwatched_members_are_never_called_silent() -> None:
    w = watch(members=["prod-*"], silence_exempt=["*.worker"])
    w.observe(reading("prod-1.worker", "load_average", 0.5), 0)
    w.observe(reading("test-1.scheduler", "load_average", 0.5), 0)
    in_touch(w, 300 * S)
    assert w.check(300 * S) == []


def test_thresholds_must_hold_for_their_time_and_alert_once_per_streak() -> None:
    w = watch(
        thresholds={
            "load_average": Threshold(above=4.0, for_s=30),
            "memory_consumption": Threshold(below=10.0, for_s=0),
        }
    )
    w.observe(reading("h.s", "load_average", 5.0), 0)
    w.observe(reading("h.s", "load_average", 6.0), 15 * S)
    assert w.check(20 * S) == []
    w.observe(reading("h.s", "load_average", 7.0), 30 * S)
    alerts = w.check(31 * S)
    assert [(a.kind, a.value, a.since_ms) for a in alerts] == [("high_load", 7.0, 0)]
    assert "above 4" in alerts[0].reason
    w.observe(reading("h.s", "load_average", 9.0), 45 * S)
    assert w.check(46 * S) == []
    w.observe(reading("h.s", "load_average", 1.0), 60 * S)  # the streak ends
    w.observe(reading("h.s", "load_average", 8.0), 75 * S)
    w.observe(reading("h.s", "load_average", 8.0), 105 * S)
    assert [a.since_ms for a in w.check(106 * S)] == [75 * S]
    w.observe(reading("h.s", "memory_consumption", 3.5), 106 * S)  # percent FREE below 10
    assert [(a.kind, a.value) for a in w.check(107 * S)] == [("low_memory", 3.5)]


def test_saved_alerts_are_not_raised_again_after_a_restart() -> None:
    first = watch()
    first.observe(reading("h.s", "load_average", 1.0), 0)
    in_touch(first, 100 * S)
    assert len(first.check(100 * S)) == 1
    again = HealthWatch(WatchConfig(silence_timeout_s=60), first.raised)
    again.observe(reading("h.s", "load_average", 1.0), 0)  # read back from the lookback window
    in_touch(again, 200 * S)
    assert again.check(200 * S) == []
