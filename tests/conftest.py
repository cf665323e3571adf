"""Test session setup: the same environment `scripts/services env` gives the Makefile.

Integration tests need the local services (`make services-up`, done by `make test`); they fail,
never skip, when a service is down, so a green run means the real thing was exercised.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from datamover.settings_loader import connections_env

ROOT = Path(__file__).resolve().parent.parent


def _services_env() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/services"), "env"], check=True, capture_output=True, text=True
    ).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("export "):
            for assignment in shlex.split(line[len("export ") :]):
                key, _, value = assignment.partition("=")
                env[key] = value
    return env


for _key, _value in {**_services_env(), **connections_env(ROOT / "airflow_settings.yaml")}.items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("PATH", "")
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_airflow(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the Airflow CLI of this venv with the project's environment; output captured."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )
