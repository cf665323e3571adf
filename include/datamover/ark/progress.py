"""Progress of one offload (bytes done / total, per-log state, errors) and its 0.5 Hz status publisher."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from datamover.ark.format import ArkLog
from datamover.streams.definition import Event, StreamDefinition

# Per-log states, in the order a log goes through them.
PENDING, UPLOADING, VERIFIED, REMOVED, FAILED = "pending", "uploading", "verified", "removed", "error"
# Overall states published on the status stream.
SCANNING, OFFLOADING, COMPLETE, ERROR = "scanning", "offloading", "complete", "error"


@dataclass
class _LogProgress:
    bytes_total: int
    bytes_done: int = 0
    state: str = PENDING


@dataclass
class Progress:
    """Thread-safe counters the engine updates and the publisher reads."""

    logs: dict[str, _LogProgress] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    state: str = OFFLOADING
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_logs(cls, logs: Iterable[ArkLog]) -> Progress:
        return cls(logs={log.name: _LogProgress(log.size + log.manifest_size) for log in logs})

    def add(self, log: str, nbytes: int) -> None:
        with self._lock:
            self.logs[log].bytes_done += nbytes

    def add_finished(self, log: str, nbytes: int, state: str) -> None:
        """A log that needs no work here (offloaded by an earlier run): counted as done."""
        with self._lock:
            self.logs[log] = _LogProgress(nbytes, nbytes, state)

    def restart(self, log: str) -> None:
        """Before a log is tried again: its bytes and errors start over."""
        with self._lock:
            self.logs[log].bytes_done = 0
            self.logs[log].state = PENDING
            self.errors = [e for e in self.errors if not e.startswith(f"{log}: ")]

    def set_state(self, log: str, state: str) -> None:
        with self._lock:
            self.logs[log].state = state

    def error(self, message: str, log: str | None = None) -> None:
        with self._lock:
            self.errors.append(message)
            if log is not None:
                self.logs[log].state = FAILED

    def finish(self) -> str:
        with self._lock:
            failed = self.errors or any(p.state == FAILED for p in self.logs.values())
            self.state = ERROR if failed else COMPLETE
            return self.state

    @property
    def bytes_total(self) -> int:
        return sum(p.bytes_total for p in self.logs.values())

    @property
    def bytes_done(self) -> int:
        return sum(p.bytes_done for p in self.logs.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            total = sum(p.bytes_total for p in self.logs.values())
            done = sum(p.bytes_done for p in self.logs.values())
            elapsed = max(time.monotonic() - self.started, 1e-6)
            return {
                "state": self.state,
                "percent": percent(done, total),
                "bytes_done": done,
                "bytes_total": total,
                "bytes_per_second": round(done / elapsed, 1),
                "logs_done": sum(p.state in (VERIFIED, REMOVED) for p in self.logs.values()),
                "logs_total": len(self.logs),
                "logs": {
                    n: {"state": p.state, "bytes_done": p.bytes_done, "bytes_total": p.bytes_total}
                    for n, p in self.logs.items()
                },
                "errors": list(self.errors),
            }

    def line(self) -> str:
        s = self.snapshot()
        return (
            f"{s['state']}: {s['percent']:.1f}% ({s['bytes_done']}/{s['bytes_total']} bytes, "
            f"{s['bytes_per_second'] / 1e6:.1f} MB/s), logs {s['logs_done']}/{s['logs_total']}, "
            f"{len(s['errors'])} error(s)"
        )


def percent(done: int, total: int) -> float:
    """0..100 with one decimal; an empty offload is 100% done. Never reports 100 before the last byte."""
    if total <= 0:
        return 100.0
    value = 100.0 * done / total
    return min(round(value, 1), 99.9) if done < total else 100.0


def status_event(
    definition: StreamDefinition,
    snapshot: dict[str, Any],
    offload_id: str,
    dag_id: str = "ark_offload",
    host: str | None = None,
) -> Event:
    return Event(
        definition,
        meta={"host": host or socket.gethostname(), "dag_id": dag_id},
        correlation={"offload_id": offload_id},
        payload={
            "state": snapshot["state"],
            "percent": float(snapshot["percent"]),
            "bytes_done": int(snapshot["bytes_done"]),
            "bytes_total": int(snapshot["bytes_total"]),
            "bytes_per_second": float(snapshot["bytes_per_second"]),
            "logs_done": int(snapshot["logs_done"]),
            "logs_total": int(snapshot["logs_total"]),
            "logs": json.dumps(snapshot["logs"], separators=(",", ":")),
            "errors": json.dumps(snapshot["errors"][-50:]),  # bounded message size
        },
    )


class StatusPublisher:
    """Publishes a status event every `interval` seconds (2 s = 0.5 Hz) from a daemon thread, then a
    final one on `close()`. `send(key, value)` is the transport (a Kafka producer in the DAG)."""

    def __init__(
        self,
        progress: Progress,
        definition: StreamDefinition,
        send: Callable[[bytes, bytes], None],
        offload_id: str,
        interval: float = 2.0,
        dag_id: str = "ark_offload",
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.progress = progress
        self.definition = definition
        self.send = send
        self.offload_id = offload_id
        self.interval = interval
        self.dag_id = dag_id
        self.log = log
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ark-status", daemon=True)

    def publish(self) -> None:
        snapshot = self.progress.snapshot()
        event = status_event(self.definition, snapshot, self.offload_id, self.dag_id)
        self.send(self.offload_id.encode(), event.encode())
        self.published += 1
        if self.log:
            self.log(self.progress.line())

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.publish()
            except Exception as exc:  # a status hiccup must never stop the offload
                if self.log:
                    self.log(f"status publish failed: {exc}")
            next_at += self.interval  # fixed-rate, not fixed-delay: keeps 0.5 Hz
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> StatusPublisher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self.publish()  # the final message: complete or error
