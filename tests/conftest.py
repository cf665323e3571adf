"""Test session setup: the same environment `scripts/services env` gives the Makefile.

Integration tests need the local services (`make services-up`, done by `make test`); they fail,
never skip, when a service is down, so a green run means the real thing was exercised.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from datamover.hooks.s3 import ObjectStoreHook
from datamover.settings_loader import connections_env

ROOT = Path(__file__).resolve().parent.parent


def services_env(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """What `scripts/services env` exports (with `overrides` in its environment), as a dict."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/services"), "env"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(overrides or {})},
    ).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("export "):
            for assignment in shlex.split(line[len("export ") :]):
                key, _, value = assignment.partition("=")
                env[key] = value
    return env


for _key, _value in {**services_env(), **connections_env(ROOT / "airflow_settings.yaml")}.items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("PATH", "")
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_airflow(
    *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the Airflow CLI of this venv with the project's environment (plus `env`); output captured."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


SHIPPED_CONFIG = ROOT / "include" / "config"


def deployment_config(folder: Path, **configs: Any) -> dict[str, str]:
    """A deployment config folder: every shipped YAML file, with `configs` (name -> document) replacing
    its namesake. Returns the environment that points the package at it (DATAMOVER_CONFIG_DIR)."""
    folder.mkdir(parents=True, exist_ok=True)
    for shipped in SHIPPED_CONFIG.glob("*.yaml"):
        (folder / shipped.name).write_text(shipped.read_text())
    for name, document in configs.items():
        text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
        (folder / f"{name}.yaml").write_text(text)
    return {"DATAMOVER_CONFIG_DIR": str(folder)}


# Keys that break naive S3 code: spaces, unicode, '+', '%', reserved punctuation, very deep paths.
AWKWARD_KEYS = [
    "small.txt",
    "empty",
    "with space/a file.csv",
    "ünïcödé/日本語.txt",
    "plus+sign/100%/a%20b+c.txt",
    "/".join(f"d{i}" for i in range(40)) + "/deep.txt",
]


def define_connection(conn_id: str, conn_type: str, **fields: Any) -> str:
    """Define an Airflow connection for this test process (AIRFLOW_CONN_<ID>, as a secrets backend
    would serve it); returns the id. `extra` is a dict."""
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps({"conn_type": conn_type, **fields})
    return conn_id


def aws_connection(conn_id: str, service: str = "moto", **extra: Any) -> str:
    """An `aws` connection to the local moto (AWS S3 + STS) or Ceph RGW with the local test keys;
    `extra` entries are added to (or replace) the connection's extra; login/password may be given too."""
    login = extra.pop("login", os.environ[f"DATAMOVER_{'S3' if service == 'moto' else 'CEPH'}_ACCESS_KEY"])
    password = extra.pop(
        "password", os.environ[f"DATAMOVER_{'S3' if service == 'moto' else 'CEPH'}_SECRET_KEY"]
    )
    url = os.environ["DATAMOVER_S3_ENDPOINT" if service == "moto" else "DATAMOVER_CEPH_ENDPOINT"]
    return define_connection(
        conn_id,
        "aws",
        login=login,
        password=password,
        extra={"endpoint_url": url, "region_name": "us-east-1", **extra},
    )


def moto_client(**kwargs: Any) -> Any:
    """A boto3 S3 client of the local AWS S3 stand-in (moto), through the aws_default connection."""
    return ObjectStoreHook("aws_default").client(**kwargs)


def ceph_client(**kwargs: Any) -> Any:
    """A boto3 S3 client of the real Ceph RADOS Gateway (SigV4 enforced), through egress_output."""
    return ObjectStoreHook("egress_output").client(**kwargs)
