"""A real Airflow deployment for benchmarks: api-server, scheduler (LocalExecutor), dag-processor and
triggerer as separate processes, on a PostgreSQL metadata database of its own (created in the local
PostgreSQL service, dropped afterwards), with its own AIRFLOW_HOME, DAGs folder and ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowStack:
    def __init__(
        self,
        home: Path,
        dag_files: Iterable[Path],
        *,
        api_port: int = 58180,
        log_ports: tuple[int, int] = (58893, 58894),
        parallelism: int = 4,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.dags = home / "dags"
        self.api = f"http://127.0.0.1:{api_port}"
        self.db = f"airflow_bench_{uuid.uuid4().hex[:8]}"
        self.admin_dsn = os.environ["DATAMOVER_PG_DSN"]
        base = self.admin_dsn.rsplit("/", 1)[0]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{base.replace('postgresql://', 'postgresql+psycopg2://')}/{self.db}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(log_ports[1]),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            **(extra_env or {}),
        }
        self._dag_files = list(dag_files)

    def cli(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags.mkdir(exist_ok=True)
        for f in self.dags.glob("*.py"):
            f.unlink()
        for f in self._dag_files:
            (self.dags / f.name).symlink_to(f)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        self.cli("db", "migrate")
        subprocess.run(
            [sys.executable, "-m", "datamover.settings_loader", str(ROOT / "airflow_settings.yaml")],
            env=self.env,
            check=True,
            capture_output=True,
        )
        for name in COMPONENTS:
            log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, name], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_api()

    def _wait_api(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited: see {self.home / (name + '.log')}")
            try:
                with urllib.request.urlopen(f"{self.api}/api/v2/monitor/health", timeout=5):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(1)
        raise RuntimeError("the api-server did not answer")

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.api}/api/v2/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.load(response)

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        wanted = set(dag_ids)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                found = {d["dag_id"] for d in self.request("GET", "dags?limit=100")["dags"]}
            except (urllib.error.URLError, OSError):
                found = set()
            if wanted <= found:
                return
            time.sleep(2)
        raise RuntimeError(f"DAGs not parsed in time: {wanted}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.request("POST", f"dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.poll() is None}

    def stop(self) -> None:
        for name in reversed(COMPONENTS):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.procs.clear()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
