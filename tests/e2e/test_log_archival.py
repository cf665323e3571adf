"""The settle sensor on the real triggerer: Butler messages on Kafka, `log_collector` through the REST
API, its asset event starting `log_archival`, whose mapped sensors defer (the trigger polls
PostgreSQL on the triggerer) and release each stream only after the settle delay; the archives pass
`logdogref read --rebuild`."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.archive import IndexRules
from tests.e2e.conftest import AirflowStack, wait_for
from tests.integration.logdog.conftest import produce
from tests.integration.logdog.helpers import check_archive
from tests.logdog.butlers import butler_messages
from tests.logdog.streams import SAMPLES

pytestmark = pytest.mark.e2e

SETTLE_S = 120  # longer than collect -> plan -> sensor start takes on a loaded machine: the sensor must defer


def test_settle_sensor_on_the_real_triggerer(airflow_stack: AirflowStack, tmp_path: Path) -> None:
    stack = airflow_stack
    tag = uuid.uuid4().hex[:8]
    topic, schema = f"logdog.e2e.{tag}", f"logdog_e2e_{tag}"
    kafka = KafkaHook("kafka_default")
    kafka.ensure_topics([topic])
    prefix = f"e2e/{tag}"
    names = ["text-multiline-partial-outoforder", "datagram-partials"]
    messages = []
    for name in names:
        stream = SAMPLES[name]()
        stream.desc.prefix, stream.desc.name = prefix, f"steps/{name}"
        messages += butler_messages(stream, per_bundle=3, compress=True)
    produce(kafka, topic, messages)

    stack.unpause("log_archival")
    stack.unpause("log_collector")
    run_id = stack.trigger("log_collector", stack.form_conf("log_collector", topic=topic, schema=schema))
    assert stack.wait_run("log_collector", run_id, timeout=600)["state"] == "success"
    conn = PostgresHook("logdog_postgres").connect()
    terminated_at = conn.execute(f'SELECT max(terminated_at) FROM "{schema}".log_streams').fetchone()[0]
    conn.commit()

    # The collector's asset event starts log_archival with the form's defaults (shipped schema), so this
    # test triggers its own run with the test's schema and a short settle delay.
    conf = stack.form_conf("log_archival", schema=schema, settle_delay_s=SETTLE_S, poll_interval_s=2)
    run_id = stack.trigger("log_archival", conf)
    wait_for(
        lambda: any(s == "deferred" for s in stack.task_states("log_archival", run_id).values()),
        120,
        "a settle sensor to defer to the triggerer",
    )
    run = stack.wait_run("log_archival", run_id, timeout=600)
    assert run["state"] == "success", stack.task_states("log_archival", run_id)
    rows = conn.execute(
        f'SELECT state, complete, archived_at, entries_url, index_url FROM "{schema}".log_streams'
    ).fetchall()
    conn.commit()
    assert [r[0] for r in rows] == ["archived"] * len(names)
    for _state, complete, archived_at, entries_url, index_url in rows:
        assert complete and (archived_at - terminated_at).total_seconds() >= SETTLE_S
        check_archive(
            ObjectStoreHook("logdog_archive").client(),
            {"entries_url": entries_url, "index_url": index_url},
            IndexRules(),
            tmp_path / entries_url.rsplit("/", 2)[1],
        )
    assert "deferring to the triggerer" in stack.logs_of("log_archival", run_id)
    with psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True) as c:
        c.execute(f'DROP SCHEMA "{schema}" CASCADE')
    kafka.admin().delete_topics([topic])
