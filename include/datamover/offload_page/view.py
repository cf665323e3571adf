"""What the Offload page shows, built from plain data: no Airflow imports, so it is tested on its own.

The Airflow side (`runs`) turns ark_offload's runs, task states and XComs into `RunRecord`s, the
status stream (`status`) gives the latest event payload per run, and `page_state` assembles one JSON
document that every user of the page sees alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datamover.ark.format import NAME_PATTERN
from datamover.ark.progress import COMPLETE, ERROR, FAILED, OFFLOADING, PENDING, REMOVED, VERIFIED, percent

DAG_ID = "ark_offload"
OFFLOAD, RESCAN = "offload", "rescan"
# The DAG's tasks, in the order a run goes through them.
CHECK_TASK, SCAN_TASK, OFFLOAD_TASK, REPORT_TASK = "check_credentials", "scan", "offload", "report"
ACTIVE_RUN_STATES = ("queued", "running")
# What a page shows of a run before the offload task reports progress.
QUEUED, CHECKING, SCANNING = "queued", "checking credentials", "scanning"
MAX_SELECTION = 1000


class SelectionError(ValueError):
    """A Begin request whose log names are not among the latest scan's Ark Logs (the message says which)."""


@dataclass(frozen=True)
class RunRecord:
    """One ark_offload run as the page needs it."""

    run_id: str
    state: str  # queued | running | success | failed
    kind: str  # offload | rescan (conf dry_run)
    selected: tuple[str, ...] | None  # the `logs` param; None = every log found
    triggered_by: str | None = None
    queued_at: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    tasks: Mapping[str, str | None] = field(default_factory=dict)  # task_id -> state (None = not yet)
    task_ends: Mapping[str, str | None] = field(default_factory=dict)  # task_id -> end date
    url: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    def task(self, task_id: str) -> str | None:
        return self.tasks.get(task_id)


def run_kind(conf: Mapping[str, Any] | None) -> str:
    return RESCAN if (conf or {}).get("dry_run") is True else OFFLOAD


def selected_logs(conf: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    logs = (conf or {}).get("logs")
    if not logs or not isinstance(logs, list):
        return None
    return tuple(str(n) for n in logs)


def check_selection(names: Any, scan: Mapping[str, Any] | None) -> list[str]:
    """The ticked log names, checked against the latest scan: a non-empty list of distinct names, each
    one an Ark Log of that scan. Anything else (a path, a non-Ark entry, a name the scan did not find,
    a non-string) raises SelectionError; nothing from the request reaches a file system."""
    if scan is None:
        raise SelectionError("No scan yet: press Rescan System first, then tick the logs to offload.")
    if not isinstance(names, list):
        raise SelectionError('"logs" must be a list of Ark Log names.')
    if not names:
        raise SelectionError("Tick at least one Ark Log to offload.")
    if len(names) > MAX_SELECTION:
        raise SelectionError(f"At most {MAX_SELECTION} logs per offload.")
    if not all(isinstance(n, str) for n in names):
        raise SelectionError("Log names must be strings.")
    if len(set(names)) != len(names):
        raise SelectionError("A log is ticked twice.")
    known = {log["name"] for log in scan.get("logs", [])}
    unknown = [n for n in names if n not in known or not NAME_PATTERN.match(n)]
    if unknown:
        shown = ", ".join(repr(n[:80]) for n in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise SelectionError(
            f"Not an Ark Log of the latest scan ({scan.get('scanned_at', '?')}): {shown}. "
            "Only logs listed by the scan can be offloaded; press Rescan System to refresh the list."
        )
    return list(names)


def credentials_view(
    run: RunRecord | None, result: Any, error: str | None, connection: str | None
) -> dict[str, Any]:
    """The credentials state from the latest run whose check_credentials finished (or is running)."""
    view: dict[str, Any] = {"connection": connection, "run_id": None, "detail": None, "checked_at": None}
    if run is None:
        return {
            **view,
            "state": "unknown",
            "detail": "Not checked yet: Rescan System checks the credentials, then scans.",
        }
    state = run.task(CHECK_TASK)
    view.update(run_id=run.run_id, url=run.url, checked_at=run.task_ends.get(CHECK_TASK))
    if state == "success":
        return {**view, "state": "valid", "detail": str(result) if result is not None else None}
    if state in ("failed", "upstream_failed"):
        return {**view, "state": "invalid", "detail": error or "check_credentials failed: see its log."}
    return {**view, "state": "checking", "detail": "Checking the credentials ..."}


def scan_view(
    scan: Mapping[str, Any] | None, scan_run_id: str | None, rescan: RunRecord | None, error: str | None
) -> dict[str, Any]:
    """The latest scan's table, and whether a newer scan is under way or failed."""
    view: dict[str, Any] = {"run_id": scan_run_id, "error": None, "pending_run_id": None}
    if scan is not None:
        view.update(
            storage_base_path=scan.get("storage_base_path"),
            scanned_at=scan.get("scanned_at"),
            logs=list(scan.get("logs", [])),
            non_ark=list(scan.get("non_ark", [])),
            total_bytes=scan.get("total_bytes", 0),
        )
    else:
        view.update(storage_base_path=None, scanned_at=None, logs=[], non_ark=[], total_bytes=0)
    newer = rescan is not None and rescan.run_id != scan_run_id
    if newer and rescan is not None and rescan.task(SCAN_TASK) not in ("success",):
        if rescan.active:
            view.update(state="scanning", pending_run_id=rescan.run_id)
            return view
        if rescan.task(SCAN_TASK) in ("failed", "upstream_failed") or rescan.state == "failed":
            view.update(error=error or "The scan failed: see the run's log.", failed_run_id=rescan.run_id)
    view["state"] = "ready" if scan is not None else "none"
    return view


def _log_entry(state: str, done: int, total: int, error: str | None = None) -> dict[str, Any]:
    return {
        "state": state,
        "bytes_done": done,
        "bytes_total": total,
        "percent": percent(done, total),
        "error": error,
    }


def _log_errors(errors: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Stream errors are "<log>: <reason>": the last one per log."""
    out: dict[str, str] = {}
    for text in errors:
        for name in names:
            if text.startswith(f"{name}: "):
                out[name] = text[len(name) + 2 :]
    return out


def offload_view(
    run: RunRecord,
    status: Mapping[str, Any] | None,
    records: Sequence[Mapping[str, Any]] | None,
    failed: Sequence[Mapping[str, Any]] | None,
    run_error: str | None,
    scan_sizes: Mapping[str, int],
) -> dict[str, Any]:
    """Progress of one offload run: overall and per log, from its status events while it runs (and
    their final one), else from its task states and XComs; Complete or Error with the reasons."""
    view: dict[str, Any] = {
        "run_id": run.run_id,
        "url": run.url,
        "run_state": run.state,
        "triggered_by": run.triggered_by,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "selected": list(run.selected) if run.selected is not None else None,
        "source": "tasks",
    }
    names = list(run.selected) if run.selected is not None else sorted(scan_sizes)
    logs: dict[str, dict[str, Any]] = {n: _log_entry(PENDING, 0, int(scan_sizes.get(n, 0))) for n in names}
    errors: list[str] = []
    pct: float | None = None
    done = total = 0
    if status is not None:
        view["source"] = "stream"
        reported = status.get("logs") or {}
        if run.selected is None:  # "all": the stream knows which logs the run found
            logs = {}
        stream_errors = list(status.get("errors") or [])
        by_log = _log_errors(stream_errors, list(reported))
        for name, entry in reported.items():
            logs[name] = _log_entry(
                str(entry.get("state", PENDING)),
                int(entry.get("bytes_done", 0)),
                int(entry.get("bytes_total", 0)),
                by_log.get(name),
            )
        errors.extend(stream_errors)
        pct, done, total = (
            float(status.get("percent", 0.0)),
            int(status.get("bytes_done", 0)),
            int(status.get("bytes_total", 0)),
        )
    for record in records or []:  # logs verified in S3 (the offload task's return value)
        name = str(record.get("name"))
        size = int(record.get("size") or logs.get(name, {}).get("bytes_total", 0))
        logs[name] = _log_entry(str(record.get("state", VERIFIED)), size, size)
    for item in failed or []:
        name, reason = str(item.get("name")), str(item.get("error") or "failed")
        entry = logs.get(name) or _log_entry(FAILED, 0, int(scan_sizes.get(name, 0)))
        logs[name] = {**entry, "state": FAILED, "error": reason}
        if not any(e.startswith(f"{name}: ") for e in errors):
            errors.append(f"{name}: {reason}")
    if run_error and run_error not in errors:
        errors.append(run_error)

    state = _phase(run, status)
    if state == COMPLETE:
        done = total = total or sum(e["bytes_total"] for e in logs.values())
        pct = 100.0
        for entry in logs.values():
            if entry["state"] in (PENDING, OFFLOADING, "uploading"):
                entry.update(state=VERIFIED, bytes_done=entry["bytes_total"], percent=100.0)
    elif pct is None and logs and state not in (QUEUED, CHECKING, SCANNING):
        done = sum(e["bytes_done"] for e in logs.values())
        total = sum(e["bytes_total"] for e in logs.values())
        pct = percent(done, total) if total else None
    view.update(
        state=state,
        percent=pct if state not in (QUEUED, CHECKING, SCANNING) else 0.0,
        bytes_done=done,
        bytes_total=total,
        logs=logs,
        errors=errors[-20:],
        logs_done=sum(e["state"] in (VERIFIED, REMOVED) for e in logs.values()),
        logs_total=len(logs),
    )
    return view


def _phase(run: RunRecord, status: Mapping[str, Any] | None) -> str:
    """Where a run is: queued, checking credentials, scanning, offloading, complete or error."""
    if run.state == "success":
        return COMPLETE
    if run.state == "failed":
        return ERROR
    if run.state == "queued":
        return QUEUED
    check = run.task(CHECK_TASK)
    if check in ("failed", "upstream_failed"):
        return ERROR
    if check != "success":
        return CHECKING
    if run.task(SCAN_TASK) in ("failed", "upstream_failed"):
        return ERROR
    if run.task(SCAN_TASK) != "success" or run.task(OFFLOAD_TASK) in (None, "scheduled", "queued"):
        return SCANNING
    if status is not None and status.get("state") in (COMPLETE, ERROR):
        return str(status["state"])  # the engine's final word; the run's last tasks are finishing
    return OFFLOADING


def status_payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """An `ark_offload_status` event's payload with its JSON fields (`logs`, `errors`) decoded."""
    payload = dict(event["payload"])
    for key, empty in (("logs", {}), ("errors", [])):
        try:
            payload[key] = json.loads(payload.get(key) or json.dumps(empty))
        except ValueError:
            payload[key] = empty
    payload["timestamp"] = event.get("timestamp")
    payload["host"] = (event.get("meta") or {}).get("host")
    return payload


def blocked_reason(
    active: RunRecord | None, paused: bool | None, credentials: Mapping[str, Any], dag_found: bool
) -> str | None:
    """Why a new run cannot start now (None = it can)."""
    if not dag_found:
        return f"The DAG {DAG_ID} is not in Airflow (yet): is the DAG file deployed and parsed?"
    if active is not None:
        what = "A rescan" if active.kind == RESCAN else "An offload"
        who = f" (started by {active.triggered_by})" if active.triggered_by else ""
        return (
            f"{what} is already {'waiting' if active.state == 'queued' else 'running'}{who}: run "
            f"{active.run_id}. Wait until it finishes."
        )
    if paused:
        return f"The DAG {DAG_ID} is paused: unpause it in Airflow (DAGs list), or its runs never start."
    return None


def page_state(
    *,
    user: str | None,
    runs: Sequence[RunRecord],
    scan: Mapping[str, Any] | None,
    scan_run_id: str | None,
    credentials: dict[str, Any],
    offload: dict[str, Any] | None,
    scan_error: str | None,
    paused: bool | None,
    dag_found: bool,
    dag_url: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The one document the page renders (runs latest first)."""
    active = next((r for r in runs if r.active), None)
    rescan = next((r for r in runs if r.kind == RESCAN), None)
    blocked = blocked_reason(active, paused, credentials, dag_found)
    begin_blocked = blocked
    if begin_blocked is None and credentials.get("state") != "valid":
        begin_blocked = "The credentials are not known to be valid: fix them, then Rescan System."
    if begin_blocked is None and scan is None:
        begin_blocked = "No scan yet: press Rescan System."
    return {
        "user": user,
        "dag": {"dag_id": DAG_ID, "paused": paused, "found": dag_found, "url": dag_url},
        "config": dict(config),
        "credentials": credentials,
        "scan": scan_view(scan, scan_run_id, rescan, scan_error),
        "active": None
        if active is None
        else {
            "run_id": active.run_id,
            "kind": active.kind,
            "state": active.state,
            "url": active.url,
            "triggered_by": active.triggered_by,
        },
        "offload": offload,
        "can_rescan": blocked is None,
        "rescan_blocked": blocked,
        "can_begin": begin_blocked is None,
        "begin_blocked": begin_blocked,
    }
