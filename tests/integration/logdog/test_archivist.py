"""The archivist through real PostgreSQL and Ceph: archives that LUCI's code validates and rebuilds
byte for byte, the final layout, coordinator state, expunge, completeness, leases and resumption."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from datamover.hooks.kafka import KafkaHook
from datamover.hooks.s3 import ObjectStoreHook
from datamover.logdog.archive import IndexRules
from datamover.logdog.collector import DrainLimits, drain
from datamover.logdog.coordinator import Delays
from datamover.logdog.names import archive_paths, base64_hash
from datamover.logdog.storage import claim_lease, load_state
from datamover.s3 import S3Path
from tests.integration.logdog.conftest import produce
from tests.integration.logdog.helpers import (
    archivist,
    check_archive,
    list_keys,
    settings,
    store_messages,
    stream_ids,
)
from tests.logdog.butlers import butler_messages, shuffled_with_duplicates
from tests.logdog.streams import SAMPLES, TEXT_LINES, descriptor, random_stream, text_lines_stream

pytestmark = pytest.mark.integration


def sample_streams():
    out = {}
    for name, build in SAMPLES.items():
        stream = build()
        stream.desc.name = f"samples/{name}"
        out[name] = stream
    return out


def test_kafka_to_archive_end_to_end(
    kafka: KafkaHook,
    topic: str,
    schema: str,
    pg: psycopg.Connection,
    s3: ObjectStoreHook,
    buckets: tuple[str, str],
    uid: str,
    tmp_path: Path,
) -> None:
    """Every sample stream (text with partial lines, binary, datagrams, out-of-order and duplicate entries,
    a gap, empty) goes Butler -> Kafka -> PostgreSQL -> Ceph, and each archive passes `logdogref read
    --rebuild` with the rules used."""
    rng = random.Random(5)
    streams = sample_streams()
    messages = []
    for i, stream in enumerate(streams.values()):
        messages += butler_messages(stream, per_bundle=4, compress=i % 2 == 1)
    produce(kafka, topic, shuffled_with_duplicates(messages, rng, duplicates=4))
    consumer = kafka.consumer(f"logdog-test-{uid}", **{"enable.partition.eof": True})
    try:
        drain(consumer, pg, schema, topic, DrainLimits(idle_timeout=5))
    finally:
        consumer.close()

    rules = IndexRules(stream_index_range=3, byte_range=200)
    client = s3.client()
    worker = archivist(pg, schema, client, settings(buckets, rules, data_file="always"))
    ids = stream_ids(pg, schema)
    for name, stream in streams.items():
        outcome = worker.archive(ids[f"samples/{name}"]).as_dict()
        assert outcome["action"] == "archived", outcome
        base = f"s3://{buckets[1]}/datamover/{stream.project}/{stream.desc.prefix}/+/samples/{name}"
        assert outcome["entries_url"] == f"{base}/logstream.entries"
        assert outcome["index_url"] == f"{base}/logstream.index"
        report = check_archive(client, outcome, rules, tmp_path / name)
        assert outcome["log_entry_count"] == len(report["entries"])
        # incomplete: a gap; no entry 0 below terminal index 0; indices starting at 2**40
        assert outcome["complete"] == (name not in ("text-gap", "empty", "big-indices")), name
        assert outcome["expunged"] == len(stream.entries)
    assert list_keys(client, buckets[0]) == []  # nothing left in staging
    state = pg.execute(
        f"SELECT count(*) FILTER (WHERE state = 'archived'), count(*) FROM \"{schema}\".log_streams"
    ).fetchone()
    assert state == (len(streams), len(streams))
    assert pg.execute(f'SELECT count(*) FROM "{schema}".log_entries').fetchone() == (0,)


def test_rules_and_random_streams(
    schema: str, pg: psycopg.Connection, s3: ObjectStoreHook, buckets: tuple[str, str], tmp_path: Path
) -> None:
    rng = random.Random(23)
    client = s3.client()
    for i in range(8):
        stream = random_stream(rng, n=rng.randrange(1, 300))
        stream.desc.name = f"random/s{i}"
        store_messages(pg, schema, butler_messages(stream, per_bundle=17))
        rules = rng.choice(
            [IndexRules(), IndexRules(prefix_index_range=5), IndexRules(byte_range=rng.randrange(50, 900))]
        )
        worker = archivist(pg, schema, client, settings(buckets, rules))
        outcome = worker.archive(stream_ids(pg, schema)[f"random/s{i}"]).as_dict()
        assert outcome["action"] == "archived"
        check_archive(client, outcome, rules, tmp_path / str(i))


def test_completeness_threshold_and_delays(
    schema: str, pg: psycopg.Connection, s3: ObjectStoreHook, buckets: tuple[str, str], tmp_path: Path
) -> None:
    gap = SAMPLES["text-gap"]()
    gap.desc.name = "gap"
    running = text_lines_stream(TEXT_LINES, desc=descriptor(name="running"))
    store_messages(pg, schema, butler_messages(gap) + butler_messages(running, terminate=False))
    ids = stream_ids(pg, schema)
    client = s3.client()

    waiting = Delays(timedelta(0), timedelta(days=1), timedelta(hours=1))
    worker = archivist(pg, schema, client, settings(buckets, delays=waiting))
    outcome = worker.archive(ids["gap"])
    assert outcome.action == "not_due" and "3 entries below the terminal index" in outcome.reason
    assert worker.archive(ids["running"]).action == "not_due"
    assert load_state(pg, schema, ids["gap"]).state == "terminated"

    best_effort = Delays(timedelta(0), timedelta(0), timedelta(0))
    worker = archivist(pg, schema, client, settings(buckets, delays=best_effort))
    gap_outcome = worker.archive(ids["gap"])
    assert gap_outcome.action == "archived" and gap_outcome.complete is False
    assert gap_outcome.log_entry_count == len(gap.entries)
    check_archive(client, gap_outcome.as_dict(), IndexRules(), tmp_path / "gap")
    run_outcome = worker.archive(ids["running"])
    assert run_outcome.action == "archived" and run_outcome.complete is False
    assert run_outcome.terminal_index == running.entries[-1].stream_index
    row = pg.execute(
        "SELECT state, complete, archived_entry_count, archived_terminal_index, entries_size "
        f'FROM "{schema}".log_streams WHERE id = %s',
        (ids["gap"],),
    ).fetchone()
    assert row == (
        "archived",
        False,
        len(gap.entries),
        gap.entries[-1].stream_index,
        gap_outcome.entries_size,
    )
    # A second archival of an archived stream is a no-op.
    assert worker.archive(ids["gap"]).action == "already_archived"


def test_lease_keeps_a_second_worker_out(
    schema: str, pg: psycopg.Connection, s3: ObjectStoreHook, buckets: tuple[str, str]
) -> None:
    stream = text_lines_stream(TEXT_LINES, desc=descriptor(name="leased"))
    store_messages(pg, schema, butler_messages(stream))
    sid = stream_ids(pg, schema)["leased"]
    assert claim_lease(pg, schema, sid, "worker-a", timedelta(minutes=5)) is not None
    other = archivist(pg, schema, s3.client(), settings(buckets), owner="worker-b")
    assert other.archive(sid).action == "skipped"
    same = archivist(pg, schema, s3.client(), settings(buckets), owner="worker-a")  # a retry of worker-a
    assert same.archive(sid).action == "archived"


def test_long_names_are_truncated_like_luci(
    schema: str, pg: psycopg.Connection, s3: ObjectStoreHook, buckets: tuple[str, str], tmp_path: Path
) -> None:
    name = "/".join(["segment" + "x" * 90] * 12)  # > 1024 bytes of object name
    stream = text_lines_stream(TEXT_LINES[:3], desc=descriptor(name=name))
    store_messages(pg, schema, butler_messages(stream))
    outcome = archivist(pg, schema, s3.client(), settings(buckets)).archive(stream_ids(pg, schema)[name])
    key = outcome.entries_url.removeprefix(f"s3://{buckets[1]}/")
    paths = archive_paths(
        S3Path(buckets[0], "datamover"), S3Path(buckets[1], "datamover"), "chromium", "bb/8812/1", name
    )
    assert len(paths.staged_key("logstream.entries")) == 1024  # the longer (hashed prefix) path fits exactly
    assert paths.final_key("logstream.entries") == key
    assert "-TRUNCATED-" + base64_hash(name)[:16] + "/logstream.entries" in key
    check_archive(s3.client(), outcome.as_dict(), IndexRules(), tmp_path)
