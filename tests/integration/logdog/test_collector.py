"""The collector through real Kafka and PostgreSQL: Butler messages (compressed or not, shuffled,
redelivered, some malformed) land as stream registrations, terminations and entry rows."""

from __future__ import annotations

import random

import psycopg
import pytest
from psycopg import sql

from datamover.hooks.kafka import KafkaHook
from datamover.logdog.butler import encode_message
from datamover.logdog.collector import DrainLimits, drain
from datamover.logdog.proto import butler_pb2
from datamover.logdog.recordio import frame
from tests.integration.logdog.conftest import produce
from tests.logdog.butlers import bundle, butler_messages, shuffled_with_duplicates
from tests.logdog.streams import SAMPLES, Stream, descriptor, entry

pytestmark = pytest.mark.integration

LIMITS = DrainLimits(batch_messages=7, idle_timeout=5, max_runtime=120)


def malformed_messages() -> list[bytes]:
    good = butler_messages(SAMPLES["text-plain"]())[0]
    wrong_version = butler_pb2.ButlerMetadata(type=1, proto_version="2").SerializeToString()
    bad_zlib = butler_pb2.ButlerMetadata(type=1, compression=1, proto_version="1").SerializeToString()
    return [
        b"not a butler message at all",
        good[:-3],  # truncated frame
        frame(wrong_version) + frame(b""),
        frame(bad_zlib) + frame(b"\x78\x9c garbage"),
    ]


def mixed_bundle() -> bytes:
    """One valid stream and one with an invalid name in the same message: only the bad part is dropped."""
    good = Stream(descriptor(name="mixed/good"), [entry(0, lines=[(b"kept", "\n")])])
    bad = descriptor(name="mixed/bad name!")
    b = bundle(
        "chromium", "bb/8812/1", [(good.desc, good.entries, 0), (bad, [entry(0, lines=[(b"x", "\n")])], 0)]
    )
    return encode_message(b)


def streams_under_test() -> dict[str, tuple[Stream, bool]]:
    """name -> (stream, terminated)."""
    out = {}
    for name, build in SAMPLES.items():
        stream = build()
        stream.desc.name = f"samples/{name}"  # one stream path each
        out[name] = (stream, True)
    open_stream = SAMPLES["text-plain"]()
    open_stream.desc.name = "steps/still/running"
    out["not-terminated"] = (open_stream, False)
    return out


def count(conn: psycopg.Connection, schema: str, query: str, *args: object) -> int:
    row = conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), args).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def test_collect_butler_bundles(
    kafka: KafkaHook, topic: str, schema: str, pg: psycopg.Connection, uid: str
) -> None:
    rng = random.Random(11)
    streams = streams_under_test()
    messages: list[bytes] = []
    for i, (stream, terminated) in enumerate(streams.values()):
        messages += butler_messages(stream, per_bundle=3, terminate=terminated, compress=i % 2 == 0)
    messages = shuffled_with_duplicates(messages, rng, duplicates=5)
    messages += [*malformed_messages(), mixed_bundle()]
    rng.shuffle(messages)
    produce(kafka, topic, messages)

    consumer = kafka.consumer(f"logdog-test-{uid}", **{"enable.partition.eof": True})
    try:
        stats = drain(consumer, pg, schema, topic, LIMITS)
    finally:
        consumer.close()

    assert stats.messages == len(messages)
    assert stats.malformed_messages == 4
    assert stats.rejected_entries == 1
    assert any("mixed/bad name!" in p for p in stats.problems)
    expected_entries = sum(len(s.entries) for s, _ in streams.values()) + 1  # + mixed/good
    assert stats.entries_written == expected_entries
    assert stats.duplicates > 0  # five messages were delivered twice
    assert stats.streams_registered == len(streams) + 1
    assert stats.streams_terminated == sum(1 for _, t in streams.values() if t) + 1

    for stream, terminated in streams.values():
        path = f"{stream.desc.prefix}/+/{stream.desc.name}"
        row = pg.execute(
            sql.SQL(
                "SELECT id, state, terminal_index, entry_count, max_stream_index, descriptor "
                "FROM {}.log_streams WHERE project = %s AND path = %s"
            ).format(sql.Identifier(schema)),
            (stream.project, path),
        ).fetchone()
        assert row is not None, path
        stream_id, state, terminal_index, entry_count, max_index, desc = row
        assert state == ("terminated" if terminated else "registered")
        last = stream.entries[-1].stream_index if stream.entries else 0
        assert terminal_index == (last if terminated else None)
        assert entry_count == len(stream.entries)
        assert max_index == (stream.entries[-1].stream_index if stream.entries else -1)
        assert bytes(desc) == stream.descriptor_bytes
        stored = pg.execute(
            sql.SQL("SELECT stream_index, data FROM {}.log_entries WHERE stream_id = %s ORDER BY 1").format(
                sql.Identifier(schema)
            ),
            (stream_id,),
        ).fetchall()
        assert [(i, bytes(d)) for i, d in stored] == [
            (e.stream_index, e.SerializeToString()) for e in stream.entries
        ]
    pg.commit()

    # Redelivery of everything (another group from the start): nothing new, nothing changed.
    before = count(pg, schema, "SELECT count(*) FROM {s}.log_entries")
    consumer = kafka.consumer(f"logdog-test-{uid}-again", **{"enable.partition.eof": True})
    try:
        again = drain(consumer, pg, schema, topic, LIMITS)
    finally:
        consumer.close()
    assert again.entries_written == 0 and again.duplicates >= expected_entries
    assert again.streams_registered == 0 and again.streams_terminated == 0
    assert count(pg, schema, "SELECT count(*) FROM {s}.log_entries") == before

    # The offsets were committed: the first group finds nothing left.
    consumer = kafka.consumer(f"logdog-test-{uid}", **{"enable.partition.eof": True})
    try:
        rest = drain(consumer, pg, schema, topic, LIMITS)
    finally:
        consumer.close()
    assert rest.messages == 0


def test_wrong_secret_and_conflicting_terminal_index(
    kafka: KafkaHook, topic: str, schema: str, pg: psycopg.Connection, uid: str
) -> None:
    stream = SAMPLES["text-plain"]()
    first = butler_messages(stream, per_bundle=100)
    intruder = butler_messages(stream, per_bundle=100, secret=b"x" * 36)
    conflicting = butler_messages(Stream(stream.desc, stream.entries[:2]), per_bundle=100, terminal_index=1)
    produce(kafka, topic, first, key=b"k")
    consumer = kafka.consumer(f"logdog-test-{uid}", **{"enable.partition.eof": True})
    try:
        drain(consumer, pg, schema, topic, LIMITS)
        produce(kafka, topic, intruder + conflicting, key=b"k")
        stats = drain(consumer, pg, schema, topic, LIMITS)
    finally:
        consumer.close()
    assert stats.rejected_entries == 2
    assert any("incorrect prefix secret" in p for p in stats.problems)
    assert any("conflicts with the recorded" in p for p in stats.problems)
    assert count(pg, schema, "SELECT terminal_index FROM {s}.log_streams") == stream.entries[-1].stream_index


def test_missing_topic_is_nothing_to_collect(
    kafka: KafkaHook, schema: str, pg: psycopg.Connection, uid: str
) -> None:
    consumer = kafka.consumer(f"logdog-test-{uid}", **{"enable.partition.eof": True})
    try:
        stats = drain(consumer, pg, schema, f"logdog.missing.{uid}", LIMITS)
    finally:
        consumer.close()
    assert stats.messages == 0 and stats.seconds < 30
