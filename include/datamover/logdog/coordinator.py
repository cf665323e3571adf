"""The coordinator's rules for one log stream: its states and when it may be archived.

States (column `state` of the streams table):

    registered --(terminal index received)--> terminated --(lease taken)--> archiving --> archived
    registered --(older than archive_delay_max, lease taken)--> archiving

A stream is released for archival when it has terminated and `settle_delay` has passed since then (late
entries still arrive for a while after the Butler sent the terminal one), or when it is older than
`delay_max` without terminating. When it is released but incomplete (an entry below the terminal
index is missing) and the release is younger than `completeness_threshold`, it goes back to waiting;
once older, it is archived best-effort: the missing entries are skipped and the stream is recorded as
incomplete. A stream that never terminated is never complete.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class State(enum.StrEnum):
    REGISTERED = "registered"
    TERMINATED = "terminated"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"


class Action(enum.StrEnum):
    WAIT = "wait"  # not yet: poll again at `not_before`
    ARCHIVE = "archive"  # release it for archival
    DONE = "done"  # archived already (by another run): nothing to do
    GONE = "gone"  # the stream is not in the coordinator (purged, or another schema)


@dataclass(frozen=True)
class Delays:
    settle_delay: timedelta
    delay_max: timedelta
    completeness_threshold: timedelta


@dataclass(frozen=True)
class StreamState:
    """What the rules need from the streams table (times are the database's)."""

    stream_id: int
    state: State
    registered_at: datetime
    terminated_at: datetime | None
    terminal_index: int | None
    entries_upto_terminal: int  # entries with stream_index <= terminal_index (all entries if not terminated)
    now: datetime

    @property
    def complete(self) -> bool:
        return self.terminal_index is not None and self.entries_upto_terminal == self.terminal_index + 1

    @property
    def missing(self) -> int:
        if self.terminal_index is None:
            return 0
        return max(0, self.terminal_index + 1 - self.entries_upto_terminal)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    not_before: datetime | None = None  # WAIT: when the answer can change by time alone
    complete: bool = False  # ARCHIVE: every entry 0..terminal_index is there
    released_at: datetime | None = None  # ARCHIVE/WAIT: when the stream became due (or will)

    def as_event(self, stream_id: int) -> dict[str, object]:
        return {
            "stream_id": stream_id,
            "action": self.action.value,
            "reason": self.reason,
            "complete": self.complete,
        }


def release_time(s: StreamState, delays: Delays) -> datetime:
    """When the stream becomes due for archival (by settling, or by age without terminating)."""
    if s.terminated_at is not None:
        return min(s.terminated_at + delays.settle_delay, s.registered_at + delays.delay_max)
    return s.registered_at + delays.delay_max


def decide(s: StreamState | None, delays: Delays) -> Decision:
    if s is None:
        return Decision(Action.GONE, "the stream is not registered")
    if s.state == State.ARCHIVED:
        return Decision(Action.DONE, "already archived")
    due = release_time(s, delays)
    if s.now < due:
        why = "settling after its terminal entry" if s.terminated_at else "not terminated yet"
        return Decision(Action.WAIT, f"{why}; due at {due.isoformat()}", not_before=due, released_at=due)
    if s.terminal_index is None:
        return Decision(
            Action.ARCHIVE,
            f"older than archive_delay_max ({delays.delay_max}) without terminating: best-effort archival",
            released_at=due,
        )
    if s.complete:
        return Decision(Action.ARCHIVE, "terminated, settled and complete", complete=True, released_at=due)
    give_up = due + delays.completeness_threshold
    if s.now < give_up:
        return Decision(
            Action.WAIT,
            f"{s.missing} entries below the terminal index {s.terminal_index} are missing; "
            f"waiting for them until {give_up.isoformat()}",
            not_before=give_up,
            released_at=due,
        )
    return Decision(
        Action.ARCHIVE,
        f"{s.missing} entries still missing after the completeness threshold "
        f"({delays.completeness_threshold}): best-effort archival, recorded as incomplete",
        released_at=due,
    )
