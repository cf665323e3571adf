"""The Airflow side of the Offload page: ark_offload's runs, task states and XComs in the metadata DB,
the error a failed task logged, and new runs (Rescan = a dry run, Begin Offload = the ticked logs).

This runs in the API server, which has the metadata DB (as Airflow's own routes do). Nothing here
touches the onboard storage: the scan and the credentials check are ark_offload's first tasks and run
on the worker that holds the storage; the page shows their results.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from datamover.offload_page.view import (
    ACTIVE_RUN_STATES,
    CHECK_TASK,
    DAG_ID,
    OFFLOAD,
    OFFLOAD_TASK,
    REPORT_TASK,
    RESCAN,
    SCAN_TASK,
    RunRecord,
    run_kind,
    selected_logs,
)

FAILED_KEY = "failed"  # the offload task's XCom of failed logs (datamover.operators.ark.FAILED_KEY)
RECENT_RUNS = 20
TASK_ORDER = (CHECK_TASK, SCAN_TASK, OFFLOAD_TASK, REPORT_TASK)
MAX_ERROR_CHARS = 2000


class Refused(Exception):
    """A run the page will not create; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def base_path() -> str:
    """The API server's path prefix ("/" unless [api] base_url has a path), ending in '/'."""
    from airflow.configuration import conf

    path = urlsplit(conf.get("api", "base_url", fallback="") or "/").path or "/"
    return path if path.endswith("/") else f"{path}/"


def run_url(run_id: str) -> str:
    return f"{base_path()}dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def dag_url() -> str:
    return f"{base_path()}dags/{DAG_ID}"


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def dag_status(session: Session) -> tuple[bool, bool | None]:
    """(the DAG is known and not stale, is it paused)."""
    from airflow.models.dag import DagModel

    row = session.execute(
        select(DagModel.is_paused, DagModel.is_stale).where(DagModel.dag_id == DAG_ID)
    ).first()
    if row is None:
        return False, None
    return not row.is_stale, bool(row.is_paused)


def recent_runs(session: Session, limit: int = RECENT_RUNS) -> list[RunRecord]:
    """The latest runs of ark_offload, newest first, with their task states."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance

    runs = session.execute(
        select(
            DagRun.run_id,
            DagRun._state,
            DagRun.conf,
            DagRun.triggering_user_name,
            DagRun.queued_at,
            DagRun.start_date,
            DagRun.end_date,
        )
        .where(DagRun.dag_id == DAG_ID)
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(limit)
    ).all()
    if not runs:
        return []
    tasks: dict[str, dict[str, str | None]] = {r.run_id: {} for r in runs}
    ends: dict[str, dict[str, str | None]] = {r.run_id: {} for r in runs}
    for ti in session.execute(
        select(TaskInstance.run_id, TaskInstance.task_id, TaskInstance.state, TaskInstance.end_date).where(
            TaskInstance.dag_id == DAG_ID,
            TaskInstance.run_id.in_(list(tasks)),
            TaskInstance.map_index == -1,
        )
    ):
        tasks[ti.run_id][ti.task_id] = str(ti.state) if ti.state is not None else None
        ends[ti.run_id][ti.task_id] = _iso(ti.end_date)
    return [
        RunRecord(
            run_id=r.run_id,
            state=str(r._state),
            kind=run_kind(r.conf),
            selected=selected_logs(r.conf),
            triggered_by=r.triggering_user_name,
            queued_at=_iso(r.queued_at),
            start_date=_iso(r.start_date),
            end_date=_iso(r.end_date),
            tasks=tasks[r.run_id],
            task_ends=ends[r.run_id],
            url=run_url(r.run_id),
        )
        for r in runs
    ]


def xcom(session: Session, run_id: str, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel

    row = session.execute(
        select(XComModel.value).where(
            XComModel.dag_id == DAG_ID,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.key == key,
            XComModel.map_index == -1,
        )
    ).first()
    return XComModel.deserialize_value(row) if row is not None else None


def latest_scan(session: Session) -> tuple[dict[str, Any] | None, str | None]:
    """The newest scan table (the `scan` task's XCom of any run) and its run id."""
    from airflow.models.xcom import XComModel

    row = session.execute(
        select(XComModel.value, XComModel.run_id)
        .where(
            XComModel.dag_id == DAG_ID,
            XComModel.task_id == SCAN_TASK,
            XComModel.key == "return_value",
            XComModel.map_index == -1,
        )
        .order_by(XComModel.timestamp.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, None
    value = XComModel.deserialize_value(row)
    if isinstance(value, str):  # stored as JSON text by some XCom backends
        value = json.loads(value)
    return (value if isinstance(value, dict) else None), row.run_id


class ErrorTexts:
    """The error a failed task logged ("<exception>: <message>"), read the way the UI reads task logs
    (local file, the worker's log server or remote logging), cached per try."""

    def __init__(self, size: int = 128) -> None:
        self._cache: OrderedDict[tuple[str, str, int], str | None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, session: Session, run_id: str, task_id: str) -> str | None:
        from airflow.models.taskinstance import TaskInstance

        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == DAG_ID,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == -1,
            )
        )
        if ti is None or str(ti.state) != "failed":
            return None
        key = (run_id, task_id, int(ti.try_number or 0))
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        text = _logged_error(ti)
        with self._lock:
            self._cache[key] = text
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return text


def _logged_error(ti: Any) -> str | None:
    """The last exception in a task's log (structured log lines carry `error_detail`)."""
    from airflow.utils.log.log_reader import TaskLogReader

    try:
        stream, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {})
        found: str | None = None
        for message in stream:
            record = message.model_dump() if hasattr(message, "model_dump") else dict(message)
            details = record.get("error_detail")
            if isinstance(details, list) and details:
                found = _exception_text(details)
        return found[:MAX_ERROR_CHARS] if found else None
    except Exception as exc:  # logs unreadable here: the page links to the run instead
        return f"(the task's log could not be read here: {type(exc).__name__})"


def _exception_text(details: Sequence[Mapping[str, Any]]) -> str | None:
    """The message of the exception a task failed with. fail_fast raises AirflowFailException from
    the package's own error; the message is the same, so the innermost one with text is shown."""
    for detail in details:
        value = str(detail.get("exc_value") or "").strip()
        if value:
            return value
    return None


def active_run(session: Session) -> tuple[str, str | None, str] | None:
    """(run id, triggering user, state) of a queued or running ark_offload run, if any."""
    from airflow.models.dagrun import DagRun

    row = session.execute(
        select(DagRun.run_id, DagRun.triggering_user_name, DagRun._state)
        .where(DagRun.dag_id == DAG_ID, DagRun._state.in_(ACTIVE_RUN_STATES))
        .order_by(DagRun.run_after.desc())
        .limit(1)
    ).first()
    return (row.run_id, row.triggering_user_name, str(row._state)) if row is not None else None


def create_run(session: Session, kind: str, logs: Sequence[str] | None, user: str | None) -> str:
    """Create an ark_offload run (queued for the scheduler) unless another one is queued or running.

    The DAG's row is locked for the check and the insert, so two Begin clicks at the same moment (on
    any API server) give one run and one refusal instead of a second queued run."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, ParamValidationError
    from airflow.models.dag import DagModel
    from airflow.utils.sqlalchemy import with_row_locks
    from airflow.utils.types import DagRunTriggeredByType

    if kind not in (OFFLOAD, RESCAN):
        raise ValueError(kind)
    dag = session.scalar(with_row_locks(select(DagModel).where(DagModel.dag_id == DAG_ID), session))
    if dag is None or dag.is_stale:
        raise Refused(404, f"The DAG {DAG_ID} is not in Airflow: is its file deployed and parsed?")
    if dag.has_import_errors:
        raise Refused(409, f"The DAG {DAG_ID} has import errors: fix its file first.")
    if dag.is_paused:
        raise Refused(409, f"The DAG {DAG_ID} is paused: unpause it in Airflow first (DAGs list).")
    busy = active_run(session)
    if busy is not None:
        run_id, who, state = busy
        raise Refused(
            409,
            f"Refused: ark_offload run {run_id}{f' (started by {who})' if who else ''} is {state}; "
            "one offload at a time. Wait until it finishes.",
        )
    now = datetime.now(UTC)
    run_id = f"{kind}__{now:%Y%m%dT%H%M%S}Z_{uuid.uuid4().hex[:6]}"
    conf = {"dry_run": kind == RESCAN, "logs": list(logs) if logs else None}
    try:
        trigger_dag(
            DAG_ID,
            triggered_by=DagRunTriggeredByType.UI,
            triggering_user_name=user,
            run_id=run_id,
            conf=conf,
            session=session,
        )
    except (DagNotFound, ParamValidationError, ValueError) as exc:
        session.rollback()
        raise Refused(400, f"Airflow refused the run: {exc}") from None
    session.commit()
    return run_id


class Snapshot:
    """Reads everything the page shows in one DB session; the result is reused for `ttl` seconds so
    many users polling the page cost one set of queries."""

    def __init__(self, ttl: float = 0.5) -> None:
        self.ttl = ttl
        self.errors = ErrorTexts()
        self._at = 0.0
        self._value: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._at = 0.0

    def get(self) -> dict[str, Any]:
        with self._lock:
            if self._value is not None and time.monotonic() - self._at < self.ttl:
                return self._value
            self._value = self._read()
            self._at = time.monotonic()
            return self._value

    def _read(self) -> dict[str, Any]:
        from airflow.utils.session import create_session

        with create_session() as session:
            found, paused = dag_status(session)
            runs = recent_runs(session)
            scan, scan_run_id = latest_scan(session)
            checked = next((r for r in runs if r.task(CHECK_TASK) is not None), None)
            check_result = check_error = None
            if checked is not None:
                if checked.task(CHECK_TASK) == "success":
                    check_result = xcom(session, checked.run_id, CHECK_TASK)
                else:
                    check_error = self.errors.get(session, checked.run_id, CHECK_TASK)
            rescan = next((r for r in runs if r.kind == RESCAN), None)
            scan_error = None
            if rescan is not None and rescan.state == "failed":
                scan_error = self._run_error(session, rescan)
            offload = next((r for r in runs if r.kind == OFFLOAD), None)
            records = failed = offload_error = None
            if offload is not None and not offload.active:
                records = xcom(session, offload.run_id, OFFLOAD_TASK)
                failed = xcom(session, offload.run_id, OFFLOAD_TASK, FAILED_KEY)
                if offload.state == "failed":
                    offload_error = self._run_error(session, offload)
            elif offload is not None:
                offload_error = self._run_error(session, offload)
            return {
                "found": found,
                "paused": paused,
                "runs": runs,
                "scan": scan,
                "scan_run_id": scan_run_id,
                "checked": checked,
                "check_result": check_result,
                "check_error": check_error,
                "scan_error": scan_error,
                "offload": offload,
                "records": records if isinstance(records, list) else None,
                "failed": failed if isinstance(failed, list) else None,
                "offload_error": offload_error,
            }

    def _run_error(self, session: Session, run: RunRecord) -> str | None:
        """The error of the first failed task of a run, in the DAG's order."""
        order = [*TASK_ORDER, *sorted(set(run.tasks) - set(TASK_ORDER))]
        for task_id in order:
            if run.tasks.get(task_id) == "failed":
                return self.errors.get(session, run.run_id, task_id)
        return None
