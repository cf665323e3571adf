"""The real Airflow components (api-server, scheduler with LocalExecutor, dag-processor, triggerer) in a
private AIRFLOW_HOME, for tests that need them: health published by every component, the health watch
on the real triggerer. Driven through the REST API (simple auth manager, all admins).

Until the project's e2e tier (tests/e2e) lands, this is its stand-in for the streams tests.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def _die_with_parent() -> None:
    """Linux: the component gets SIGTERM when the test process dies (even killed), never outlives it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AirflowStack:
    def __init__(self, home: Path, dags: list[Path], env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.dags = home / "dags"
        self.dags.mkdir(parents=True, exist_ok=True)
        for dag in dags:
            shutil.copy(dag, self.dags / dag.name)
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": "streams-e2e-secret",
            "AIRFLOW__API_AUTH__JWT_SECRET": "streams-e2e-jwt-secret-not-for-production",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._token: str | None = None

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )

    def start(self) -> None:
        migrate = self.airflow("db", "migrate")
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
        for component in COMPONENTS:
            log = (self.home / f"{component}.log").open("wb")
            self.processes[component] = subprocess.Popen(
                [str(Path(sys.executable).parent / "airflow"), component],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group: stopped with everything it forked
                preexec_fn=_die_with_parent,
            )
        self.wait(lambda: self._get_token() is not None, 120, "the api-server to answer")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def log(self, component: str) -> str:
        return (self.home / f"{component}.log").read_text(errors="replace")

    # ------------------------------------------------------------------ REST API

    def _get_token(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/auth/token", timeout=5) as r:
                self._token = json.load(r)["access_token"]
                return self._token
        except (OSError, urllib.error.URLError, KeyError, ValueError):
            return None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.load(r)

    def wait(self, condition: Any, timeout: float, what: str, every: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                assert process.poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            try:
                value = condition()
            except (urllib.error.URLError, OSError):
                value = None
            if value:
                return value
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(every)

    def dag_parsed(self, dag_id: str) -> bool:
        try:
            return bool(self.api("GET", f"/dags/{dag_id}"))
        except urllib.error.HTTPError:
            return False

    def unpause(self, dag_id: str) -> None:
        self.wait(lambda: self.dag_parsed(dag_id), 180, f"the dag-processor to parse {dag_id}")
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns?order_by=-start_date")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"])


@contextmanager
def airflow_stack(home: Path, dags: list[Path], env: dict[str, str]) -> Iterator[AirflowStack]:
    stack = AirflowStack(home, dags, env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
