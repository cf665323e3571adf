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

from datamover.s3client import S3Endpoint
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


# Keys that break naive S3 code: spaces, unicode, '+', '%', reserved punctuation, very deep paths.
AWKWARD_KEYS = [
    "small.txt",
    "empty",
    "with space/a file.csv",
    "ünïcödé/日本語.txt",
    "plus+sign/100%/a%20b+c.txt",
    "/".join(f"d{i}" for i in range(40)) + "/deep.txt",
]


def moto_endpoint(label: str = "aws_default") -> S3Endpoint:
    """The local AWS S3 stand-in (moto), as the connection `label` would reach it."""
    return S3Endpoint(
        os.environ["DATAMOVER_S3_ENDPOINT"],
        access_key=os.environ["DATAMOVER_S3_ACCESS_KEY"],
        secret_key=os.environ["DATAMOVER_S3_SECRET_KEY"],
        label=label,
    )


def ceph_endpoint(secret: str | None = None, label: str = "egress_output") -> S3Endpoint:
    """The real Ceph RADOS Gateway (SigV4 enforced); `secret` overrides the key to test refusals."""
    return S3Endpoint(
        os.environ["DATAMOVER_CEPH_ENDPOINT"],
        access_key=os.environ["DATAMOVER_CEPH_ACCESS_KEY"],
        secret_key=secret or os.environ["DATAMOVER_CEPH_SECRET_KEY"],
        label=label,
    )
