"""Both DAGs as Airflow runs them (`airflow dags test`: real tasks, the deferrable sensor's trigger run
in-process): Butler messages on Kafka end as validated archives in Ceph. The same config model reads a
deployment's own YAML folder (DATAMOVER_CONFIG_DIR) with this test's topic, schema and buckets."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.archive import IndexRules
from tests.conftest import ROOT, deployment_config, run_airflow
from tests.integration.logdog.conftest import produce
from tests.integration.logdog.helpers import check_archive, list_keys
from tests.logdog.butlers import butler_messages
from tests.logdog.streams import SAMPLES

pytestmark = pytest.mark.integration


def config_env(tmp_path: Path, topic: str, schema: str, buckets: tuple[str, str], uid: str) -> dict[str, str]:
    cfg = yaml.safe_load((ROOT / "include/config/log_archival.yaml").read_text())
    cfg["collector"].update(topic=topic, consumer_group=f"logdog-dag-test-{uid}", idle_timeout_s=3)
    cfg["storage"]["schema"] = schema
    cfg["archival"].update(
        staging_base=f"{buckets[0]}/svc",
        base=f"{buckets[1]}/svc",
        settle_delay_s=2,
        poll_interval_s=1,
        index={"stream_range": 2, "prefix_range": 0, "byte_range": 0},
    )
    return deployment_config(tmp_path / "config", log_archival=cfg)


def dags_test(dag_id: str, env: dict[str, str], conf: dict | None = None) -> str:
    args = ["dags", "test", dag_id]
    if conf:
        args += ["--conf", json.dumps(conf)]
    out = run_airflow(*args, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-5000:]
    return out.stdout + out.stderr


def test_collector_and_archival_dags(
    kafka: KafkaHook,
    topic: str,
    schema: str,
    pg: psycopg.Connection,
    s3: ObjectStoreHook,
    buckets: tuple[str, str],
    uid: str,
    tmp_path: Path,
) -> None:
    env = config_env(tmp_path, topic, schema, buckets, uid)
    names = ["text-multiline-partial-outoforder", "binary-frame-headers", "datagram-partials", "text-gap"]
    messages = []
    for name in names:
        stream = SAMPLES[name]()
        stream.desc.name = f"dag/{name}"
        messages += butler_messages(stream, per_bundle=3, compress=True)
    produce(kafka, topic, messages)

    log = dags_test("log_collector", env)
    assert "Collected" in log
    row = pg.execute(
        f"SELECT count(*), count(*) FILTER (WHERE state = 'terminated') FROM \"{schema}\".log_streams"
    ).fetchone()
    pg.commit()
    assert row == (len(names), len(names))

    # completeness_threshold_s from the trigger form: the gap stream waits 2 s more, then best-effort.
    dags_test("log_archival", env, {"completeness_threshold_s": 2})
    rows = pg.execute(
        "SELECT path, state, complete, entries_url, index_url, data_url "
        f'FROM "{schema}".log_streams ORDER BY path'
    ).fetchall()
    pg.commit()
    assert [r[1] for r in rows] == ["archived"] * len(names)
    client = s3.client()
    for path, _, complete, entries_url, index_url, data_url in rows:
        assert complete == (not path.endswith("text-gap")), path
        assert entries_url.startswith(f"s3://{buckets[1]}/svc/chromium/bb/8812/1/+/dag/")
        check_archive(
            client,
            {"entries_url": entries_url, "index_url": index_url, "data_url": data_url},
            IndexRules(stream_index_range=2),
            tmp_path / path.rsplit("/", 1)[1],
        )
    assert list_keys(client, buckets[0]) == []
    assert pg.execute(f'SELECT count(*) FROM "{schema}".log_entries').fetchone() == (0,)
    pg.commit()
