"""The Offload page's API on the real API server: refused without a login, without the permission to
trigger ark_offload, for names the latest scan did not list, for a second offload while one runs;
each refusal creates no run, uploads nothing and removes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from datamover.hooks.s3 import ObjectStoreHook
from tests.e2e.conftest import AirflowStack
from tests.e2e.offload_page import (
    DAG_ID,
    ark_runs,
    bucket_keys,
    page_client,
    rescan,
    storage_listing,
    token,
    wait_idle,
)
from tests.support.ark_samples import generate_junk, generate_log

pytestmark = pytest.mark.e2e

ROUTES = [
    ("GET", "/", None),
    ("GET", "/static/offload.js", None),
    ("GET", "/api/state", None),
    ("POST", "/api/rescan", None),
    ("POST", "/api/offload", "LOGS"),
]


@pytest.fixture(scope="module")
def page(airflow_stack: AirflowStack) -> Iterator[dict[str, Any]]:
    """Two sample logs and the junk in the storage folder, scanned through the page."""
    stack = airflow_stack
    tag = uuid.uuid4().hex[:6]
    names = [f"api_{tag}_a", f"api_{tag}_b"]
    generate_log(stack.storage, names[0], [300_000, 1000], seed=71)
    generate_log(stack.storage, names[1], [2000], seed=72)
    generate_junk(stack.storage)
    stack.unpause(DAG_ID)
    with page_client(stack, "operator") as operator:
        state = rescan(stack, operator)
        assert set(names) <= {lg["name"] for lg in state["scan"]["logs"]}
        yield {"names": names, "operator": operator}
    wait_idle(stack)


def untouched(stack: AirflowStack) -> tuple[int, dict[str, int], dict[str, tuple[int, int]]]:
    """What a refused request must leave as it was: the runs, the bucket, the storage folder."""
    client = ObjectStoreHook("aws_default").client()
    return len(ark_runs(stack)), bucket_keys(client, stack.ark_bucket), storage_listing(stack.storage)


def call(client: httpx.Client, method: str, path: str, body: Any, names: list[str]) -> httpx.Response:
    json_body = {"logs": names} if body == "LOGS" else body
    return client.request(method, path, json=json_body, headers={"X-Requested-With": "offload-page"})


def test_no_login_no_permission_nothing_happens(airflow_stack: AirflowStack, page: dict[str, Any]) -> None:
    stack = airflow_stack
    names = page["names"]
    before = untouched(stack)
    with page_client(stack) as anonymous:
        for method, path, body in ROUTES:
            answer = call(anonymous, method, path, body, names)
            assert answer.status_code == 401, (method, path, answer.text)
    with page_client(stack, Authorization="Bearer not-a-jwt") as forged:
        for method, path, body in ROUTES:
            assert call(forged, method, path, body, names).status_code in (401, 403), (method, path)
    with page_client(stack, "viewer") as viewer:  # may read DAGs, may not trigger them
        for method, path, body in ROUTES:
            answer = call(viewer, method, path, body, names)
            assert answer.status_code == 403, (method, path, answer.text)
    # the page itself says why, in words, to a browser
    html = httpx.get(f"{stack.base_url}/datamover/offload/", headers={"Accept": "text/html"}, timeout=60)
    assert html.status_code == 401 and "Log in to Airflow first" in html.text
    # the UI's session cookie is a login too, but a POST on it alone must come from the page
    operator_cookie = {"_token": token(stack, "operator")}
    with httpx.Client(base_url=f"{stack.base_url}/datamover/offload", cookies=operator_cookie) as cookie:
        assert cookie.get("/api/state").status_code == 200
        answer = cookie.post("/api/offload", json={"logs": names})
        assert answer.status_code == 403 and "X-Requested-With" in answer.text
    assert untouched(stack) == before


def test_forged_names_and_paths_are_refused(airflow_stack: AirflowStack, page: dict[str, Any]) -> None:
    stack = airflow_stack
    operator: httpx.Client = page["operator"]
    name = page["names"][0]
    before = untouched(stack)
    forged: list[Any] = [
        {"logs": ["../../etc"]},
        {"logs": [str(stack.storage / name)]},  # an absolute path to a real log
        {"logs": [f"{name}/ark.json"]},
        {"logs": [f"../{stack.storage.name}/{name}"]},
        {"logs": ["notes.txt"]},  # non-Ark data the scan listed
        {"logs": ["corrupt_manifest"]},
        {"logs": ["linked_log"]},  # a symlink to /etc
        {"logs": [f"{name}_not_scanned"]},
        {"logs": [name, name]},
        {"logs": []},
        {"logs": name},
        {"logs": [{"path": name}]},
        {"logs": [name], "destination_bucket": "elsewhere"},  # nothing but names is accepted
        {"logs": [name], "storage_base_path": "/etc"},
        {"logs": [name], "dry_run": False, "remove_after_offload": "yes"},
        ["not", "an", "object"],
    ]
    for body in forged:
        answer = operator.post("/api/offload", json=body, headers={"X-Requested-With": "offload-page"})
        assert answer.status_code == 400, (body, answer.text)
    answer = operator.post(
        "/api/offload", content=b"logs=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 400
    detail = operator.post(
        "/api/offload", json={"logs": ["../../etc"]}, headers={"X-Requested-With": "offload-page"}
    ).json()["detail"]
    assert "Not an Ark Log of the latest scan" in detail and "'../../etc'" in detail
    assert untouched(stack) == before


def test_a_second_begin_while_an_offload_runs_is_refused(
    airflow_stack: AirflowStack, page: dict[str, Any]
) -> None:
    stack = airflow_stack
    operator: httpx.Client = page["operator"]
    name = page["names"][1]
    wait_idle(stack)
    headers = {"X-Requested-With": "offload-page"}
    first = operator.post("/api/offload", json={"logs": [name]}, headers=headers)
    assert first.status_code == 201, first.text
    run_id = first.json()["run_id"]
    with page_client(stack, "admin") as admin:  # another user, at the same time
        runs_before = len(ark_runs(stack))
        second = admin.post("/api/offload", json={"logs": [name]}, headers=headers)
        assert second.status_code == 409
        assert run_id in second.json()["detail"] and "started by operator" in second.json()["detail"]
        again = admin.post("/api/rescan", headers=headers)
        assert again.status_code == 409 and run_id in again.json()["detail"]
        assert len(ark_runs(stack)) == runs_before  # refused before any run was created
        state = admin.get("/api/state").json()
        assert state["active"]["run_id"] == run_id and not state["can_begin"]
        assert "started by operator" in state["begin_blocked"]
    run = stack.wait_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success", stack.task_states(DAG_ID, run_id)
    assert run["conf"]["logs"] == [name] and run["conf"]["dry_run"] is False
    done = operator.get("/api/state").json()["offload"]
    assert done["run_id"] == run_id and done["state"] == "complete" and done["percent"] == 100.0
    keys = bucket_keys(ObjectStoreHook("aws_default").client(), stack.ark_bucket)
    assert f"logs/{name}/ark.json" in keys
