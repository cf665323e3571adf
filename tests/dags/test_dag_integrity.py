"""Every DAG file imports cleanly, fast, with no I/O, and follows the project's conventions."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlalchemy.engine
from airflow.dag_processing.dagbag import DagBag

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag(monkeypatch_module: pytest.MonkeyPatch) -> DagBag:
    """Parse dags/ with the network and every database client made to fail loudly."""

    def refuse(what: str):
        def _refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"a DAG file did I/O at import: {what} {args!r}")

        return _refuse

    monkeypatch_module.setattr(socket.socket, "connect", refuse("socket connect"))
    monkeypatch_module.setattr(socket, "create_connection", refuse("socket connect"))
    monkeypatch_module.setattr(psycopg, "connect", refuse("psycopg.connect"))
    monkeypatch_module.setattr(sqlalchemy.engine.Engine, "connect", refuse("metadata DB connect"))
    return DagBag(dag_folder=ROOT / "dags")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_dag_files_exist() -> None:
    assert DAG_FILES, "no DAG files under dags/"


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}, dagbag.import_errors


def test_every_file_defines_a_dag(dagbag: DagBag) -> None:
    files_with_dags = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert files_with_dags == {f.name for f in DAG_FILES}


@pytest.mark.parametrize("attr", ["owner", "retries"])
def test_default_args_set(dagbag: DagBag, attr: str) -> None:
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            value = getattr(task, attr)
            assert value not in (None, "airflow") if attr == "owner" else value is not None, (
                dag_id,
                task.task_id,
            )


def test_tags_and_docs(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no real doc_md"


def test_description_native_templates_and_honest_forms(dagbag: DagBag) -> None:
    """A one-line description (the DAG list shows it), params rendered as native objects, and no
    trigger-form param drawn as required unless it must be set (Airflow stars a param whose type
    excludes "null"; every param here has a default, so none is)."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.description and "\n" not in dag.description, f"{dag_id} has no one-line description"
        assert dag.render_template_as_native_obj, f"{dag_id} renders templates as strings"
        for name, param in dag.params.items():
            types = param.schema.get("type")
            assert isinstance(types, list) and "null" in types, f"{dag_id}.{name} is drawn as required"


# Tasks that only report on what their upstream tasks did: a retry would reach the same verdict.
REPORT_ONLY = {("egress_sync", "summary")}


def test_retries_with_backoff_on_data_dags(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        if "preflight" in dag.tags:
            continue  # a preflight reports at once instead of retrying
        for task in dag.tasks:
            if (dag_id, task.task_id) in REPORT_ONLY:
                assert task.retries == 0, (dag_id, task.task_id)
                continue
            assert task.retries >= 1, (dag_id, task.task_id)
            assert task.retry_exponential_backoff, (dag_id, task.task_id)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parse_work_under_one_cpu_second(dag_file: Path) -> None:
    """The CPU time one DAG file's import costs in a fresh interpreter, after Airflow itself is imported.
    CPU seconds, not wall-clock: the bound is on the work done at import, whatever else the machine runs."""
    code = (
        "import time, runpy, airflow.sdk, datamover\n"
        "from airflow.sdk import DAG\n"
        "t = time.process_time()\n"
        f"runpy.run_path({str(dag_file)!r})\n"
        "print(time.process_time() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(out.stdout.strip().splitlines()[-1])
    assert seconds < 1.0, f"{dag_file.name} took {seconds:.2f} CPU seconds to parse"
