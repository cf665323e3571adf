"""The Offload page's logic on plain data: what a selection may contain, the credentials state, the
progress of a run from its status events or from its tasks, and when new runs are refused."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from datamover.ark.progress import Progress, status_event
from datamover.offload_page.status import StatusBoard
from datamover.offload_page.view import (
    RunRecord,
    SelectionError,
    check_selection,
    credentials_view,
    offload_view,
    page_state,
    run_kind,
    scan_view,
    selected_logs,
    status_payload,
)
from datamover.streams.definition import stream

SCAN = {
    "storage_base_path": "/data/ark",
    "scanned_at": "2026-11-25T10:00:00Z",
    "logs": [
        {
            "name": "log_a",
            "start_time": "2026-11-20T08:00:00Z",
            "duration_s": 60,
            "size": 1000,
            "file_count": 2,
        },
        {
            "name": "log_b",
            "start_time": "2026-11-20T09:00:00Z",
            "duration_s": 60,
            "size": 3000,
            "file_count": 1,
        },
    ],
    "non_ark": [{"path": "notes.txt", "reason": "stray file, not an Ark Log directory"}],
    "total_bytes": 4000,
}
DONE = {"check_credentials": "success", "scan": "success", "offload": "success", "report": "success"}


def run(state: str = "running", kind: str = "offload", selected: Any = ("log_a",), **tasks: Any) -> RunRecord:
    return RunRecord(
        run_id=f"{kind}__1",
        state=state,
        kind=kind,
        selected=tuple(selected) if selected is not None else None,
        triggered_by="operator",
        tasks=tasks,
        url=f"/dags/ark_offload/runs/{kind}__1",
    )


def test_a_selection_is_names_of_the_latest_scan_only() -> None:
    assert check_selection(["log_b", "log_a"], SCAN) == ["log_b", "log_a"]
    forged = [
        ["../../etc/passwd"],
        ["/data/ark/log_a"],
        ["log_a/ark.json"],
        ["notes.txt"],  # non-Ark data listed by the scan
        ["log_c"],  # not found by the scan
        ["log_a", "log_a"],
        [],
        [{"path": "log_a"}],
        "log_a",
        None,
        ["log_a"] * 1001,
    ]
    for names in forged:
        with pytest.raises(SelectionError):
            check_selection(names, SCAN)
    with pytest.raises(SelectionError, match="No scan yet"):
        check_selection(["log_a"], None)
    with pytest.raises(SelectionError, match=re.escape("'../../etc/passwd'")):
        check_selection(["../../etc/passwd"], SCAN)


def test_run_kind_and_selection_come_from_the_conf() -> None:
    assert run_kind({"dry_run": True, "logs": None}) == "rescan"
    assert run_kind({"dry_run": False, "logs": ["a"]}) == run_kind(None) == "offload"
    assert selected_logs({"logs": ["a", "b"]}) == ("a", "b")
    assert selected_logs({"logs": None}) is selected_logs({}) is None


def test_credentials_state_from_the_latest_check() -> None:
    assert credentials_view(None, None, None, "aws_default")["state"] == "unknown"
    ok = credentials_view(
        run(check_credentials="success"), "arn via 'aws_default' can reach bucket 'b'", None, "aws_default"
    )
    assert ok["state"] == "valid" and ok["connection"] == "aws_default" and "can reach" in ok["detail"]
    bad = credentials_view(run(check_credentials="failed"), None, "refused by STS", "aws_default")
    assert bad["state"] == "invalid" and bad["detail"] == "refused by STS"
    assert credentials_view(run(check_credentials="running"), None, None, "c")["state"] == "checking"


def test_progress_from_the_status_stream() -> None:
    status = {
        "state": "offloading",
        "percent": 40.0,
        "bytes_done": 1600,
        "bytes_total": 4000,
        "logs": {
            "log_a": {"state": "verified", "bytes_done": 1000, "bytes_total": 1000},
            "log_b": {"state": "uploading", "bytes_done": 600, "bytes_total": 3000},
        },
        "errors": [],
    }
    view = offload_view(
        run(selected=("log_a", "log_b"), **{**DONE, "offload": "running"}), status, None, None, None, {}
    )
    assert view["state"] == "offloading" and view["percent"] == 40.0 and view["source"] == "stream"
    assert view["logs"]["log_a"]["percent"] == 100.0 and view["logs"]["log_b"]["percent"] == 20.0
    assert view["logs_done"] == 1 and view["logs_total"] == 2


def test_phases_before_the_offload_reports() -> None:
    sizes = {"log_a": 1000}
    assert offload_view(run(state="queued"), None, None, None, None, sizes)["state"] == "queued"
    assert offload_view(run(check_credentials="running"), None, None, None, None, sizes)["state"] == (
        "checking credentials"
    )
    scanning = offload_view(run(check_credentials="success", scan="running"), None, None, None, None, sizes)
    assert scanning["state"] == "scanning" and scanning["percent"] == 0.0
    assert scanning["logs"]["log_a"]["state"] == "pending"


def test_complete_from_the_task_results_without_a_stream() -> None:
    records = [{"name": "log_a", "state": "verified", "size": 1000}]
    view = offload_view(run(state="success", **DONE), None, records, [], None, {"log_a": 1000})
    assert view["state"] == "complete" and view["percent"] == 100.0 and view["errors"] == []
    assert view["logs"]["log_a"] == {
        "state": "verified",
        "bytes_done": 1000,
        "bytes_total": 1000,
        "percent": 100.0,
        "error": None,
    }


def test_error_names_the_failed_log_and_the_reason() -> None:
    status = {
        "state": "error",
        "percent": 50.0,
        "bytes_done": 1000,
        "bytes_total": 4000,
        "logs": {
            "log_a": {"state": "verified", "bytes_done": 1000, "bytes_total": 1000},
            "log_b": {"state": "error", "bytes_done": 0, "bytes_total": 3000},
        },
        "errors": ["log_b: PutObject AccessDenied"],
    }
    failed = [{"name": "log_b", "error": "PutObject AccessDenied", "permanent": True}]
    report = "1 failed, ...: log_b: PutObject AccessDenied. Fix the cause, then run again: it resumes."
    view = offload_view(
        run(state="failed", selected=("log_a", "log_b"), **{**DONE, "report": "failed"}),
        status,
        [{"name": "log_a", "state": "verified", "size": 1000}],
        failed,
        report,
        {},
    )
    assert view["state"] == "error"
    assert (
        view["logs"]["log_b"]["state"] == "error"
        and view["logs"]["log_b"]["error"] == "PutObject AccessDenied"
    )
    assert view["errors"] == ["log_b: PutObject AccessDenied", report]
    early = offload_view(run(state="failed", check_credentials="failed"), None, None, None, "refused", {})
    assert early["state"] == "error" and early["errors"] == ["refused"]


def test_new_runs_are_refused_while_one_is_active_or_the_dag_is_paused() -> None:
    creds = {"state": "valid"}
    common = {
        "user": "operator",
        "scan": SCAN,
        "scan_run_id": "rescan__0",
        "credentials": creds,
        "offload": None,
        "scan_error": None,
        "dag_found": True,
        "dag_url": "/dags/ark_offload",
        "config": {},
    }
    idle = page_state(runs=[run(state="success", **DONE)], paused=False, **common)
    assert idle["can_begin"] and idle["can_rescan"] and idle["active"] is None
    busy = page_state(runs=[run(state="running")], paused=False, **common)
    assert not busy["can_begin"] and not busy["can_rescan"]
    assert "already running (started by operator)" in busy["begin_blocked"]
    paused = page_state(runs=[], paused=True, **common)
    assert not paused["can_rescan"] and "paused" in paused["rescan_blocked"]
    unchecked = page_state(runs=[], paused=False, **{**common, "credentials": {"state": "invalid"}})
    assert unchecked["can_rescan"] and not unchecked["can_begin"]


def test_scan_view_shows_a_scan_under_way_and_a_failed_rescan() -> None:
    scanning = scan_view(
        SCAN, "rescan__0", run(kind="rescan", state="running", check_credentials="running"), None
    )
    assert scanning["state"] == "scanning" and len(scanning["logs"]) == 2
    failed = scan_view(
        SCAN, "rescan__0", run(kind="rescan", state="failed", check_credentials="failed"), "no"
    )
    assert failed["state"] == "ready" and failed["error"] == "no"
    assert scan_view(None, None, None, None)["state"] == "none"


def test_status_board_keeps_the_newest_valid_event_per_run() -> None:
    definition = stream("ark_offload_status")
    board = StatusBoard(lambda: None, "t", definition, max_runs=2)  # type: ignore[arg-type,return-value]

    def event(run_id: str, pct: float, ts: int, dag_id: str = "ark_offload") -> bytes:
        progress = Progress()
        snapshot = {**progress.snapshot(), "percent": pct}
        e = status_event(definition, snapshot, run_id, dag_id=dag_id, host="w1")
        e.timestamp_ms = ts
        return e.encode()

    assert board.offer(event("r1", 10.0, 1000)) and board.offer(event("r1", 50.0, 3000))
    board.offer(event("r1", 20.0, 2000))  # older than the newest: arrives late, never wins
    assert board.latest("r1")["percent"] == 50.0 and board.latest("r1")["host"] == "w1"
    assert not board.offer(b"not json") and not board.offer(json.dumps({"stream": "other:1"}))
    assert not board.offer(event("r9", 1.0, 1, dag_id="another_dag"))
    board.offer(event("r2", 1.0, 1))
    board.offer(event("r3", 1.0, 1))
    assert board.runs() == ["r2", "r3"]  # bounded: the oldest run is forgotten
    payload = status_payload(json.loads(event("r4", 5.0, 7)))
    assert payload["logs"] == {} and payload["errors"] == [] and payload["timestamp"] == 7
