"""The package as users install it: a wheel in a fresh virtualenv outside the checkout, the DAG files
copied into a DAGs folder of their own, the connections defined by the user (here as AIRFLOW_CONN_*)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datamover.settings_loader import connections_env
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".state/bootstrap/bin/uv")
    assert Path(found).exists(), "uv not found: run `make setup`"
    return found


def test_wheel_installs_parses_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist, venv, dags, home = tmp_path / "dist", tmp_path / "venv", tmp_path / "dags", tmp_path / "home"
    subprocess.run([uv(), "build", "--wheel", "-q", "-o", str(dist), str(ROOT)], check=True, timeout=600)
    [wheel] = dist.glob("datamover-*.whl")
    subprocess.run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv(), "pip", "install", "-q", "--python", python, "--compile-bytecode", str(wheel)],
        check=True,
        timeout=900,
    )
    shutil.copytree(ROOT / "dags", dags)
    plugins = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", plugins, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "DATAMOVER_CONFIG", "PYTHONPATH", "VIRTUAL_ENV"))
    }
    env.update(connections_env(ROOT / "airflow_settings.yaml"))  # the user's connections
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(plugins),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
    )

    def run(*command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)

    probe = run(
        python,
        "-c",
        "import json, sys, datamover\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from datamover.egress.config import config_for_run\n"
        "from datamover.ark.config import config_for_run as ark_config\n"
        "from datamover.streams.definition import load_streams\n"
        "from importlib import resources\n"
        "page = resources.files('datamover.offload_page') / 'static'\n"
        "bag = DagBag(sys.argv[1])\n"
        "print(json.dumps({'file': datamover.__file__, 'errors': bag.import_errors,\n"
        "  'dags': sorted(bag.dag_ids), 'tables': config_for_run({}).table_names,\n"
        "  'bucket': ark_config({}).destination_bucket,\n"
        "  'streams': sorted(load_streams()),\n"
        "  'page': sorted(f.name for f in page.iterdir() if f.read_bytes())}))",
        str(dags),
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(venv)), found["file"]  # the installed copy, not the checkout
    assert found["errors"] == {}
    declared = {m for p in dags.glob("*.py") for m in re.findall(r'dag_id="([^"]+)"', p.read_text())}
    assert len(declared) >= len(list(dags.glob("*.py"))) and declared == set(found["dags"]), found["dags"]
    assert found["tables"] and found["bucket"] == "ark-logs-rhq" and "ark_offload_status" in found["streams"]
    assert found["page"] == ["index.html", "offload.css", "offload.js"]  # the Offload page ships whole
    listed = run(str(venv / "bin" / "airflow"), "plugins", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    [offload] = [p for p in json.loads(listed.stdout) if p["name"] == "datamover_offload"]
    assert [v["url_route"] for v in offload["external_views"]] == ["offload"]
    assert [a["url_prefix"] for a in offload["fastapi_apps"]] == ["/datamover/offload"]

    migrate = run(str(venv / "bin" / "airflow"), "db", "migrate")
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    result = run(str(venv / "bin" / "airflow"), "dags", "test", "connectivity_check")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Connection 'kafka_default' OK" in out and "Connection 'egress_postgres' OK" in out
