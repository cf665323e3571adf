"""Helpers for the Offload page's tests on the e2e stack: users' tokens, the page's API, waiting for
ark_offload to be idle, and what is in the bucket and the storage folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml

from tests.e2e.conftest import AirflowStack, wait_for

PAGE = "/datamover/offload"
DAG_ID = "ark_offload"


def passwords(stack: AirflowStack) -> dict[str, str]:
    return json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())


def token(stack: AirflowStack, user: str) -> str:
    answer = httpx.post(
        f"{stack.base_url}/auth/token",
        json={"username": user, "password": passwords(stack)[user]},
        timeout=60,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def page_client(stack: AirflowStack, user: str | None = None, **headers: str) -> httpx.Client:
    """A client of the page's routes: as `user` (Bearer token), or with no login at all."""
    if user is not None:
        headers = {"Authorization": f"Bearer {token(stack, user)}", **headers}
    return httpx.Client(base_url=f"{stack.base_url}{PAGE}", headers=headers, timeout=120)


def ark_runs(stack: AirflowStack) -> list[dict[str, Any]]:
    return stack.runs(DAG_ID)


def wait_idle(stack: AirflowStack, timeout: float = 600) -> None:
    """No ark_offload run queued or running (other tests share the stack)."""
    wait_for(
        lambda: not any(r["state"] in ("queued", "running") for r in ark_runs(stack)),
        timeout,
        "ark_offload to be idle",
        lambda: [(r["dag_run_id"], r["state"]) for r in ark_runs(stack)],
    )


def rescan(stack: AirflowStack, client: httpx.Client) -> dict[str, Any]:
    """A rescan through the page's API, waited for; returns the page's state after it."""
    wait_idle(stack)
    answer = client.post("/api/rescan")
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["run_id"]
    run = stack.wait_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success", stack.task_states(DAG_ID, run_id)
    state = client.get("/api/state").json()
    assert state["scan"]["run_id"] == run_id, state["scan"]
    return state


def bucket_keys(client: Any, bucket: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out |= {o["Key"]: o["Size"] for o in page.get("Contents", [])}
    return out


def storage_listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under the storage folder with its size and mtime (what an offload may not change)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


@contextmanager
def ark_config(stack: AirflowStack, **changes: Any) -> Iterator[None]:
    """The deployment's ark_offload.yaml with `changes`, restored afterwards (tasks and the page read it
    when they run)."""
    path = Path(stack.env["DATAMOVER_CONFIG_DIR"]) / "ark_offload.yaml"
    original = path.read_text()
    doc = yaml.safe_load(original)
    doc["config"].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def read_only_s3(bucket: str) -> Iterator[dict[str, str]]:
    """A moto of this test's own that checks credentials, with `bucket` and an IAM user who may read it
    (GetCallerIdentity, HeadBucket, List*, Get*) but not write to it. Yields its endpoint and keys."""
    port = _free_port()
    # The first requests (the setup below) need no credentials; every later one is checked.
    setup_requests = 4
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(setup_requests)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _port_open(port), 60, f"moto on {url}")
        root = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIASETUP00000000000",
            "aws_secret_access_key": "setup",
        }
        boto3.client("s3", **root).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **root)
        iam.create_user(UserName="ark-reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sts:GetCallerIdentity", "s3:Head*", "s3:List*", "s3:Get*"],
                    "Resource": "*",
                }
            ],
        }
        iam.put_user_policy(UserName="ark-reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="ark-reader")["AccessKey"]
        yield {"endpoint_url": url, "login": key["AccessKeyId"], "password": key["SecretAccessKey"]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def aws_connection(stack: AirflowStack, conn_id: str, endpoint_url: str, login: str, password: str) -> None:
    """An `aws` connection in the stack's metadata DB (as a user adds one under Admin > Connections)."""
    stack.api(
        "POST",
        "/connections",
        json={
            "connection_id": conn_id,
            "conn_type": "aws",
            "login": login,
            "password": password,
            "extra": json.dumps({"endpoint_url": endpoint_url, "region_name": "us-east-1"}),
        },
    )
