"""A DAG for the publishing tests: its task logs through the package's loggers (and one that is not)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="log_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md="Test DAG: logs `count` records through `datamover.probe`, one with a stack trace.",
):

    @task
    def speak(count: int = 5) -> int:
        # the outage test: say "ready", then wait for its "go" (the broker is stopped in between)
        if ready := os.environ.get("LOG_PROBE_READY"):
            Path(ready).touch()
            go = Path(os.environ["LOG_PROBE_GO"])
            deadline = time.monotonic() + 300
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        log = logging.getLogger("datamover.probe")
        for i in range(count):
            log.info("probe line %d", i)
        try:
            raise ValueError("probe failure")
        except ValueError:
            log.exception("probe caught")
        logging.getLogger("other.lib").info("not ours")
        return count

    speak()
