"""Health statistics of a member on the `cartridge_agent_health_stats` stream, as the Apache Stratos
cartridge agent publishes them: every interval (15 s by default) one event with
health_description `memory_consumption` (value = percent of memory free, as the seed defines it) and one
with `load_average` (value = the 1-minute load average, os.getloadavg()).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from datamover.streams.definition import Event, StreamDefinition

log = logging.getLogger(__name__)

HEALTH_STREAM = "cartridge_agent_health_stats"
MEMORY = "memory_consumption"
LOAD = "load_average"


def readings() -> dict[str, float]:
    """This host's readings, in the order Stratos publishes them."""
    memory = psutil.virtual_memory()
    return {
        MEMORY: round(memory.available / memory.total * 100, 2) if memory.total else 0.0,
        LOAD: round(os.getloadavg()[0], 2),
    }


@dataclass(frozen=True)
class Member:
    cluster_id: str
    network_partition_id: str
    partition_id: str
    member_id: str


def health_events(
    definition: StreamDefinition, member: Member, values: dict[str, float], timestamp_ms: int | None = None
) -> list[Event]:
    return [
        Event(
            definition,
            payload={
                "cluster_id": member.cluster_id,
                "network_partition_id": member.network_partition_id,
                "member_id": member.member_id,
                "partition_id": member.partition_id,
                "health_description": what,
                "value": float(value),
            },
            timestamp_ms=timestamp_ms,
        )
        for what, value in values.items()
    ]


class HealthPublisher:
    """Publishes the member's readings now and then every `interval_s` (on a fixed schedule, so a slow
    reading does not shift the next), through `publish(event, key) -> bool`, which must never block."""

    def __init__(
        self,
        publish: Callable[[Event, str], bool],
        definition: StreamDefinition,
        member: Member,
        interval_s: float = 15,
        read: Callable[[], dict[str, float]] = readings,
        poll: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.publish = publish
        self.definition = definition
        self.member = member
        self.interval_s = interval_s
        self.read = read
        self.poll = poll
        self.log = logger or log
        self.rounds = 0
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish_once(self) -> int:
        try:
            values = self.read()
        except Exception as exc:  # a reading that fails must not end the publisher
            self.log.warning("Health of %s not read: %s", self.member.member_id, exc)
            return 0
        now_ms = int(time.time() * 1000)
        sent = sum(
            bool(self.publish(event, self.member.member_id))
            for event in health_events(self.definition, self.member, values, now_ms)
        )
        self.rounds += 1
        self.sent += sent
        return sent

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or self._stop
        next_at = time.monotonic()
        while not stop.is_set():
            self.publish_once()
            next_at += self.interval_s
            while not stop.is_set():  # serve delivery reports while waiting
                left = next_at - time.monotonic()
                if left <= 0:
                    break
                if self.poll is not None:
                    self.poll()
                stop.wait(min(left, 1.0))
            if time.monotonic() - next_at > self.interval_s:  # fell behind (suspended?): do not catch up
                next_at = time.monotonic()

    def start(self) -> HealthPublisher:
        self._thread = threading.Thread(target=self.run, name=f"health-{self.member.member_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
