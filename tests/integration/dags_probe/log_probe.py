"""A DAG for the publishing tests: its task logs through the package's loggers (and one that is not)."""

from __future__ import annotations

import logging

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
