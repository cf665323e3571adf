"""The Offload page in a real browser (Debian's chromium driven by Playwright) inside the Airflow UI of
the e2e stack: log in, open Offload from the navigation, see the scan, tick two logs, Begin, watch the
progress reach 100% and Complete (while a second user sees the same and may not start another), find
the objects in S3 and the catalog rows; an offload to a bucket the credentials cannot write shows
Error with the reason; Rescan shows a log added meanwhile. Screenshots go to .state/screenshots/."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect, sync_playwright

from datamover.hooks.s3 import ObjectStoreHook
from tests.conftest import ROOT
from tests.e2e.conftest import AirflowStack, wait_for
from tests.e2e.offload_page import (
    DAG_ID,
    ark_config,
    aws_connection,
    bucket_keys,
    passwords,
    read_only_s3,
    wait_idle,
)
from tests.support.ark_samples import generate_junk, generate_log

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / ".state" / "screenshots"
MIB = 1024 * 1024
TIMEOUT_MS = 120_000  # one UI step on a busy 2-core machine
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `bash scripts/browser install` (make test does)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def logs(airflow_stack: AirflowStack) -> dict[str, str]:
    """Sample logs and every kind of non-Ark data in the storage folder the stack's config names."""
    stack = airflow_stack
    tag = uuid.uuid4().hex[:6]
    names = {"a": f"ui_{tag}_a", "b": f"ui_{tag}_b", "c": f"ui_{tag}_c", "later": f"ui_{tag}_later"}
    generate_log(stack.storage, names["a"], [12 * MIB, 1 * MIB, 2000], seed=81)
    generate_log(stack.storage, names["b"], [6 * MIB], seed=82)
    generate_log(stack.storage, names["c"], [5000], seed=83)
    generate_junk(stack.storage)
    stack.unpause(DAG_ID)
    stack.unpause("catalog_ingest")
    return names


def log_in(browser: Browser, stack: AirflowStack, user: str) -> Page:
    # reduced motion: the progress bar's width is drawn at once (screenshots show what the page says)
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, reduced_motion="reduce")
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{stack.base_url}/", timeout=TIMEOUT_MS)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(passwords(stack)[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Offload", exact=True).first).to_be_visible()
    return page


def open_offload(page: Page) -> FrameLocator:
    """Offload in the UI's navigation: the page in the UI's frame, under <base>/plugin/offload."""
    page.get_by_role("link", name="Offload", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/plugin/offload"))
    frame = page.frame_locator('iframe[title="Offload"]')
    expect(frame.locator("#user")).not_to_have_text("…")
    return frame


def rescan(frame: FrameLocator, *names: str) -> None:
    """Press Rescan System (once no other run is active) and wait for `names` in the table."""
    button = frame.get_by_role("button", name="Rescan System")
    expect(button).to_be_enabled()
    before = frame.locator("#message").inner_text()
    button.click()
    expect(frame.locator("#message")).not_to_have_text(before)
    expect(frame.locator("#message")).to_contain_text("Rescan started")
    expect(button).to_be_enabled()  # the rescan run is over
    for name in names:
        expect(frame.locator(f'#logs tr[data-log="{name}"]')).to_be_visible()


def listed(frame: FrameLocator, *names: str) -> None:
    """`names` in the table: from the scan the page starts by itself on a first visit, or a rescan."""
    expect(frame.get_by_role("button", name="Rescan System")).to_be_enabled()
    if not all(frame.locator(f'#logs tr[data-log="{n}"]').count() for n in names):
        rescan(frame, *names)


def begin(frame: FrameLocator, count: int) -> str:
    """Press Begin Offload; return the new run's id once the progress display shows it."""
    frame.get_by_role("button", name=f"Begin Offload ({count})").click()
    expect(frame.locator("#message")).to_contain_text(f"Offload of {count} log(s) started")
    run_id = re.search(r"run (\S+)\)", frame.locator("#message").inner_text())
    assert run_id, frame.locator("#message").inner_text()
    expect(frame.locator("#progress")).to_have_attribute("data-run-id", run_id.group(1))
    return run_id.group(1)


def tick(frame: FrameLocator, *names: str) -> None:
    for name in names:
        frame.get_by_role("checkbox", name=f"Tick {name}").check()


def watch(frame: FrameLocator, until: tuple[str, ...], timeout: float = 400) -> list[tuple[str, str]]:
    """The progress display's (state, percent) as it changes, until its state is one of `until`."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = frame.locator("#progress-state").inner_text()
        percent = frame.locator("#progress-percent").inner_text()
        if not seen or seen[-1] != (state, percent):
            seen.append((state, percent))
        if state in until:
            return seen
        time.sleep(0.25)
    raise AssertionError(f"the progress never reached {until}: {seen}")


def catalog_rows(names: list[str]) -> list[tuple[str, int, int]]:
    with psycopg.connect(os.environ["DATAMOVER_PG_DSN"], autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('ark_log_catalog')").fetchone()[0]:
            return []
        return conn.execute(
            "SELECT name, file_count, size_bytes FROM ark_log_catalog WHERE name = ANY(%s) ORDER BY name",
            [names],
        ).fetchall()


def consumed_events(stack: AirflowStack) -> list[tuple[str, str, list[str]]]:
    """catalog_ingest's runs and the logs of the events each consumed (to tell a lost event apart)."""
    out = []
    for run in stack.runs("catalog_ingest"):
        consumed = stack.api("GET", f"/dags/catalog_ingest/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
        out.append(
            (run["dag_run_id"], run["state"], [e["extra"].get("name") for e in consumed["asset_events"]])
        )
    return out


def test_offload_two_logs_from_the_page(
    airflow_stack: AirflowStack, browser: Browser, logs: dict[str, str]
) -> None:
    stack = airflow_stack
    a, b, c = logs["a"], logs["b"], logs["c"]
    wait_idle(stack)
    operator = log_in(browser, stack, "operator")
    frame = open_offload(operator)
    expect(frame.locator("#user")).to_have_text("operator")
    listed(frame, a, b, c)
    for junk in ("notes.txt", "corrupt_manifest", "half_recorded", "linked_log"):
        expect(frame.locator(f'#non-ark tr[data-path="{junk}"]')).to_be_visible()
    expect(frame.locator('#non-ark tr[data-path="linked_log"]')).to_contain_text("symlink refused")
    credentials = frame.locator("#credentials")
    expect(credentials).to_have_attribute("data-state", "valid")
    expect(frame.locator("#credentials-connection")).to_have_text("aws_default")
    expect(frame.locator("#credentials-state")).to_have_text("Valid")
    begin_button = frame.get_by_role("button", name=re.compile("Begin Offload"))
    expect(begin_button).to_be_disabled()  # nothing ticked yet
    operator.screenshot(path=str(SHOTS / "offload-page-scan.png"), full_page=True)

    # a second user has the page open at the same time
    admin = log_in(browser, stack, "admin")
    admin_frame = open_offload(admin)
    expect(admin_frame.locator(f'#logs tr[data-log="{a}"]')).to_be_visible()

    tick(frame, a, b)
    expect(begin_button).to_have_text("Begin Offload (2)")
    expect(begin_button).to_be_enabled()
    run_id = begin(frame, 2)
    # the other user sees the same offload, and may not start another one meanwhile
    expect(admin_frame.locator("#active-notice")).to_contain_text("started by operator")
    expect(admin_frame.get_by_role("button", name=re.compile("Begin Offload"))).to_be_disabled()
    expect(admin_frame.get_by_role("button", name="Rescan System")).to_be_disabled()
    expect(admin_frame.locator("#blocked")).to_contain_text("already")

    seen = watch(frame, until=("Complete", "Error"))
    assert seen[-1] == ("Complete", "100.0%"), seen
    assert any(state in ("Queued", "Checking credentials", "Scanning", "Offloading") for state, _ in seen)
    assert all(s == "Complete" for s, _ in seen if s in ("Complete", "Error")), seen
    for name in (a, b):
        cell = frame.locator(f'#logs tr[data-log="{name}"] td.offload')
        expect(cell).to_have_attribute("data-state", "verified")
        expect(cell).to_contain_text("100.0%")
    expect(frame.locator(f'#logs tr[data-log="{c}"] td.offload')).to_have_attribute("data-state", "")
    expect(frame.locator("#run-link")).to_have_attribute(
        "href", re.compile(re.escape(f"/runs/{run_id}") + "$")
    )
    expect(frame.locator("#progress-errors li")).to_have_count(0)
    # the run goes on a little after the last byte (asset events, report); then the page is idle again
    assert stack.wait_run(DAG_ID, run_id)["state"] == "success", stack.task_states(DAG_ID, run_id)
    expect(frame.locator("#active-notice")).to_have_count(0)
    expect(frame.get_by_role("button", name="Rescan System")).to_be_enabled()
    operator.screenshot(path=str(SHOTS / "offload-page.png"), full_page=True)
    # both users see the same final state
    expect(admin_frame.locator("#progress-state")).to_have_text("Complete")
    expect(admin_frame.locator("#progress")).to_have_attribute("data-run-id", run_id)
    admin.screenshot(path=str(SHOTS / "offload-page-second-user.png"), full_page=True)

    # the objects in S3: every file of a and b (manifest last), nothing of c or of the junk
    keys = bucket_keys(ObjectStoreHook("aws_default").client(), stack.ark_bucket)
    for name, files in ((a, 3), (b, 1)):
        mine = {k for k in keys if k.startswith(f"logs/{name}/")}
        assert len(mine) == files + 1 and f"logs/{name}/ark.json" in mine, mine
    assert not any(k.startswith((f"logs/{c}/", "logs/notes.txt", "logs/corrupt_manifest")) for k in keys)
    assert keys[f"logs/{a}/data/seg-00000.arkd"] == 12 * MIB
    # one asset event per offloaded log, then the catalog rows catalog_ingest writes on those events
    events = stack.api(
        "GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100}
    )["asset_events"]
    assert sorted(e["extra"]["name"] for e in events) == sorted([a, b]), events

    # catalog_ingest runs on those events. Airflow 3.3 may leave an event that arrives while a run is
    # already queued unconsumed until the next event (apache/airflow#56050), so: wait for an event-triggered
    # run that consumed an event of this offload, check its rows, then let a manual run (which ingests every
    # manifest in the bucket, as an operator would) catch up on a log whose event is still waiting.
    def ingested() -> list[str] | None:
        runs = consumed_events(stack)
        if any(state not in ("success", "failed") for _, state, _ in runs):
            return None
        return [n for _, state, names in runs if state == "success" for n in names if n in (a, b)] or None

    from_events = wait_for(
        ingested, 300, "catalog_ingest to run on the offload's events", lambda: consumed_events(stack)
    )
    assert {r[0] for r in catalog_rows([a, b])} >= set(from_events), (from_events, catalog_rows([a, b]))
    if len(catalog_rows([a, b])) < 2:
        manual = stack.trigger("catalog_ingest")
        assert stack.wait_run("catalog_ingest", manual)["state"] == "success"
    rows = catalog_rows([a, b, c])
    assert [(r[0], r[1]) for r in rows] == sorted([(a, 3), (b, 1)]), rows
    assert {r[0]: r[2] for r in rows}[a] == 13 * MIB + 2000
    admin.close()
    operator.close()


def test_rescan_shows_a_new_log_and_an_unwritable_bucket_shows_the_error(
    airflow_stack: AirflowStack, browser: Browser, logs: dict[str, str]
) -> None:
    stack = airflow_stack
    wait_idle(stack)
    bucket = f"ark-read-only-{uuid.uuid4().hex[:6]}"
    conn_id = f"ark_read_only_{uuid.uuid4().hex[:6]}"
    with read_only_s3(bucket) as s3:
        aws_connection(stack, conn_id, s3["endpoint_url"], s3["login"], s3["password"])
        try:
            with ark_config(stack, aws_conn_id=conn_id, destination_bucket=bucket, create_bucket=False):
                page = log_in(browser, stack, "operator")
                frame = open_offload(page)
                expect(frame.locator(f'#logs tr[data-log="{logs["a"]}"]')).to_be_visible()
                expect(frame.locator("#credentials-connection")).to_have_text(conn_id)
                # a log the recorder closed meanwhile: not listed until Rescan System
                later = logs["later"]
                assert frame.locator(f'#logs tr[data-log="{later}"]').count() == 0
                generate_log(stack.storage, later, [7000], seed=84)
                rescan(frame, later, logs["c"])
                expect(frame.locator(f'#logs tr[data-log="{later}"]')).to_contain_text("7.0 KB")
                # the credentials are good for reading: the check (STS + HeadBucket) passes
                expect(frame.locator("#credentials-detail")).to_contain_text(f"via '{conn_id}'")
                expect(frame.locator("#credentials")).to_have_attribute("data-state", "valid")
                tick(frame, logs["c"])
                begin(frame, 1)
                seen = watch(frame, until=("Complete", "Error"))
                assert seen[-1][0] == "Error", seen
                errors = frame.locator("#progress-errors")
                expect(errors).to_contain_text(f"{logs['c']}: ")
                expect(errors).to_contain_text("AccessDenied")
                cell = frame.locator(f'#logs tr[data-log="{logs["c"]}"] td.offload')
                expect(cell).to_have_attribute("data-state", "error")
                expect(cell).to_contain_text("AccessDenied")
                # once the run is over, the report task's error, read from its log as the UI reads it
                expect(errors).to_contain_text("Fix the cause, then run again")
                expect(frame.locator("#active-notice")).to_have_count(0)
                page.screenshot(path=str(SHOTS / "offload-page-error.png"), full_page=True)
                page.close()
                assert (stack.storage / logs["c"] / "ark.json").exists()  # nothing removed onboard
        finally:
            stack.api("DELETE", f"/connections/{conn_id}")
    wait_idle(stack)
