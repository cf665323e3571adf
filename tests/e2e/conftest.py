"""The end-to-end tier: the real Airflow components, started the way users run them, driven only
through the REST API.

One session-wide stack: a fresh metadata database of its own in the local PostgreSQL, its own
AIRFLOW_HOME and API port (every URL derived from that port by `scripts/services env`, as for
`make standalone`), the project's connections, variables and pools loaded from airflow_settings.yaml,
a deployment config folder (DATAMOVER_CONFIG_DIR) pointing the Offload Stage at a temporary storage
folder, then `airflow api-server`, `scheduler` (LocalExecutor), `dag-processor` and `triggerer`.
Teardown stops exactly those processes and drops the database, leaving the port free.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from tests.conftest import ROOT, deployment_config, services_env
from tests.e2e.streams_settings import streams_configs

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL = {"success", "failed"}
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AirflowStack:
    """The running components and an authenticated REST client."""

    base_url: str
    env: dict[str, str]
    home: Path
    storage: Path  # the Offload Stage's storage_base_path
    ark_bucket: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    client: httpx.Client | None = None

    # -- REST helpers ------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        assert self.client is not None
        response = self.client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def form_conf(self, dag_id: str, **values: Any) -> dict[str, Any]:
        """The conf the trigger form sends: every param with its default, then the user's values."""
        params = self.api("GET", f"/dags/{dag_id}/details")["params"]
        return {**{name: spec.get("value") for name, spec in params.items()}, **values}

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        return wait_for(
            lambda: (run := self.run(dag_id, run_id))["state"] in TERMINAL and run,
            timeout,
            f"{dag_id} run {run_id} to finish",
            lambda: self.task_states(dag_id, run_id),
        )

    def runs(self, dag_id: str, **query: Any) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, **query})["dag_runs"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {f"{t['task_id']}[{t['map_index']}]": t["state"] for t in tis["task_instances"]}

    def log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        """The task's log as text, read back through the API (what the UI shows)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        doc = self.api("GET", path, params={"map_index": map_index, "full_content": True})
        lines = doc["content"] if isinstance(doc["content"], list) else [doc["content"]]
        return "\n".join(line.get("event", "") if isinstance(line, dict) else str(line) for line in lines)

    def logs_of(self, dag_id: str, run_id: str) -> str:
        """Every task's log of a run (first try), concatenated."""
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return "\n".join(
            self.log(dag_id, run_id, t["task_id"], t["map_index"], max(t["try_number"], 1))
            for t in tis["task_instances"]
            if t["state"] in TERMINAL
        )

    def component_log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def start(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> None:
        """Start a process of the deployment, its output in `<home>/<name>.log`; stopped with the stack."""
        with open(self.home / f"{name}.log", "wb") as out:
            self.processes[name] = subprocess.Popen(
                command,
                env={**self.env, **(env or {})},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


S = TypeVar("S", bound=AirflowStack)


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, detail: Callable[[], Any] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(1)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (f": {detail()}" if detail else "")
    )


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _drop_database(name: str) -> None:
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def deployment(
    work: Path,
    config_env: Mapping[str, str],
    storage: Path,
    ark_bucket: str,
    extra_env: Mapping[str, str] | None = None,
    stack_type: type[S] = AirflowStack,  # type: ignore[assignment]
) -> Iterator[S]:
    """A metadata database of its own, the settings loaded, the four components started and an
    authenticated client, once every DAG file is serialized; on exit the components (and any process
    the caller added to `processes`) are stopped and the database dropped."""
    tag = uuid.uuid4().hex[:8]
    port = _free_port()
    db = f"airflow_e2e_{tag}"
    overrides = {
        "DATAMOVER_AIRFLOW_DB": db,
        "DATAMOVER_AIRFLOW_HOME": str(work / "airflow"),
        "DATAMOVER_AIRFLOW_API_PORT": str(port),
    }
    # The components get the services' environment and nothing of pytest's (connections come from the DB).
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))}
    env = {**base, **overrides, **services_env(overrides), **config_env, **(extra_env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)

    def setup(*command: str) -> None:
        subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)

    stack = stack_type(f"http://127.0.0.1:{port}", env, home, storage, ark_bucket)
    # A SIGTERM to pytest (a CI timeout, a user's kill) unwinds like Ctrl-C, so the stack still stops.
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        setup("bash", str(ROOT / "scripts/services"), "airflow-db")
        setup(AIRFLOW, "db", "migrate")
        setup(sys.executable, "-m", "datamover.settings_loader", str(ROOT / "airflow_settings.yaml"))
        for name in COMPONENTS:
            stack.start(name, [AIRFLOW, name])
        wait_for(
            lambda: _healthy(stack), 300, "the API server and scheduler to be healthy", lambda: _exits(stack)
        )
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        token = httpx.post(
            f"{stack.base_url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        ).json()["access_token"]
        stack.client = httpx.Client(
            base_url=stack.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        # Every DAG file serialized (a file may hold several DAGs, e.g. transfer_monitoring.py).
        expected = {p.name for p in (ROOT / "dags").glob("*.py")}
        wait_for(
            lambda: (
                expected
                <= {Path(d["fileloc"]).name for d in stack.api("GET", "/dags", params={"limit": 100})["dags"]}
            ),
            300,
            "the dag-processor to serialize every DAG",
        )
        yield stack
    finally:
        if stack.client is not None:
            stack.client.close()
        _stop(stack.processes)
        _drop_database(db)
        signal.signal(signal.SIGTERM, previous_handler)
    assert not _port_open(port), f"port {port} still in use after the stack stopped"


def offload_config(storage: Path, ark_bucket: str) -> dict[str, Any]:
    """The Offload Stage of a test deployment: the logs in `storage`, offloaded to `ark_bucket`, kept."""
    return {
        "config": {
            "storage_base_path": str(storage),
            "destination_bucket": ark_bucket,
            "remove_after_offload": False,
            "prefix": "logs",
            "create_bucket": True,
        }
    }


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    tag = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("e2e")
    storage = work / "ark_logs"
    storage.mkdir()
    ark_bucket = f"e2e-ark-{tag}"
    config_env = deployment_config(
        work / "config",
        ark_offload=offload_config(storage, ark_bucket),
        **streams_configs(tag, work),
    )
    # A backfill files a snapshot table's current rows under past days only when allowed.
    egress = (ROOT / "include/config/egress_dump.yaml").read_text()
    (work / "config" / "egress_dump.yaml").write_text(
        egress.replace("allow_snapshot_backfill: false", "allow_snapshot_backfill: true")
    )
    with deployment(work, config_env, storage, ark_bucket) as stack:
        yield stack


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _healthy(stack: AirflowStack) -> bool:
    for name, proc in stack.processes.items():
        if proc.poll() is not None:
            raise AssertionError(
                f"airflow {name} exited ({proc.returncode}):\n{stack.component_log(name)[-3000:]}"
            )
    try:
        health = httpx.get(f"{stack.base_url}/api/v2/monitor/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return all(
        health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler", "triggerer")
    )


def _exits(stack: AirflowStack) -> dict[str, int | None]:
    return {name: proc.poll() for name, proc in stack.processes.items()}


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
