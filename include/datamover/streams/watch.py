"""The health watch: alerts from the health stream, as the Stratos real-time engine raises them for the
autoscaler (a member that stopped publishing for a timeout; a member whose load or memory stays bad).

`HealthWatch` is fed the stream's events (`observe`) and asked for alerts (`check`). Each condition is
alerted once: a silent member again only after it published again, a threshold again only after a good
reading ended the streak. `raised` (what was alerted) can be saved and given back after a restart.

Silence needs the watch itself to be in touch with Kafka: `contact(now)` is called whenever the consumer
answers; members are only called silent after a full timeout of uninterrupted contact, so a broker
outage (or a watch that just started) never makes every member look dead.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

from datamover.streams.health import LOAD, MEMORY
from datamover.streams.settings import WatchConfig

SILENT = "silent"
KINDS = {LOAD: "high_load", MEMORY: "low_memory"}


@dataclass(frozen=True)
class Alert:
    member_id: str
    kind: str  # silent | high_load | low_memory
    reason: str
    since_ms: int  # silent: the last event; thresholds: the first bad reading of the streak
    at_ms: int
    value: float | None = None
    cluster_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Member:
    last_seen_ms: int = 0
    cluster_id: str = ""
    bad_since: dict[str, int] = field(default_factory=dict)  # health_description -> first bad reading
    last_value: dict[str, float] = field(default_factory=dict)


class HealthWatch:
    def __init__(self, config: WatchConfig, raised: dict[str, int] | None = None) -> None:
        self.config = config
        self.members: dict[str, _Member] = {}
        self.raised: dict[str, int] = dict(raised or {})  # "member|kind" -> since_ms alerted
        self._contact_since: int | None = None
        self._last_contact: int | None = None

    def watched(self, member_id: str) -> bool:
        return any(fnmatch.fnmatchcase(member_id, p) for p in self.config.members)

    def exempt_from_silence(self, member_id: str) -> bool:
        return any(fnmatch.fnmatchcase(member_id, p) for p in self.config.silence_exempt)

    def contact(self, now_ms: int, max_gap_ms: int = 10_000) -> None:
        """The consumer answered at `now_ms` (a gap longer than `max_gap_ms` restarts the contact)."""
        if self._last_contact is None or now_ms - self._last_contact > max_gap_ms:
            self._contact_since = now_ms
        self._last_contact = now_ms

    def observe(self, payload: dict[str, Any], timestamp_ms: int) -> None:
        member_id = str(payload.get("member_id", ""))
        if not member_id or not self.watched(member_id):
            return
        member = self.members.setdefault(member_id, _Member())
        member.cluster_id = str(payload.get("cluster_id", ""))
        if timestamp_ms > member.last_seen_ms:
            member.last_seen_ms = timestamp_ms
            self.raised.pop(f"{member_id}|{SILENT}", None)  # it speaks again
        what = str(payload.get("health_description", ""))
        value = payload.get("value")
        threshold = self.config.thresholds.get(what)  # type: ignore[call-overload]
        if threshold is None or not isinstance(value, (int, float)):
            return
        member.last_value[what] = float(value)
        if threshold.bad(float(value)):
            member.bad_since.setdefault(what, timestamp_ms)
        else:
            member.bad_since.pop(what, None)
            self.raised.pop(f"{member_id}|{KINDS.get(what, what)}", None)  # the streak is over

    def check(self, now_ms: int) -> list[Alert]:
        alerts: list[Alert] = []
        timeout_ms = int(self.config.silence_timeout_s * 1000)
        in_touch = (
            self._contact_since is not None
            and self._last_contact is not None
            and now_ms - self._contact_since >= timeout_ms
        )
        for member_id, member in self.members.items():
            key = f"{member_id}|{SILENT}"
            silent_ms = now_ms - member.last_seen_ms
            if (
                in_touch
                and silent_ms > timeout_ms
                and not self.exempt_from_silence(member_id)
                and self.raised.get(key) != member.last_seen_ms
            ):
                self.raised[key] = member.last_seen_ms
                alerts.append(
                    Alert(
                        member_id,
                        SILENT,
                        f"member {member_id} stopped publishing health statistics: nothing for "
                        f"{silent_ms / 1000:.0f} s (timeout {self.config.silence_timeout_s:g} s)",
                        member.last_seen_ms,
                        now_ms,
                        cluster_id=member.cluster_id,
                    )
                )
            for what, since in member.bad_since.items():
                threshold = self.config.thresholds[what]  # type: ignore[index]
                kind = KINDS.get(what, what)
                key = f"{member_id}|{kind}"
                if now_ms - since < threshold.for_s * 1000 or key in self.raised:
                    continue
                self.raised[key] = since
                value = member.last_value.get(what)
                bound = (
                    f"above {threshold.above:g}"
                    if threshold.above is not None
                    else f"below {threshold.below:g}"
                )
                alerts.append(
                    Alert(
                        member_id,
                        kind,
                        f"member {member_id}: {what} {bound} for {(now_ms - since) / 1000:.0f} s "
                        f"(now {value:g}, threshold {bound} for {threshold.for_s:g} s)",
                        since,
                        now_ms,
                        value=value,
                        cluster_id=member.cluster_id,
                    )
                )
        return alerts
