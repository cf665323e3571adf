"""The settle trigger's run loop against real PostgreSQL, with short delays: it never releases a stream
early, releases it once settled (or too old, or after the completeness threshold), notices entries that
arrive while it waits, and survives being serialized."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from datamover.logdog.storage import load_state
from datamover.triggers.logdog import LogStreamSettledTrigger
from tests.integration.logdog.helpers import store_messages, stream_ids
from tests.logdog.butlers import butler_messages
from tests.logdog.streams import SAMPLES, TEXT_LINES, Stream, descriptor, text_lines_stream

pytestmark = pytest.mark.integration


def trigger(
    schema: str, stream_id: int, settle: float = 0, delay_max: float = 3600, threshold: float = 0
) -> Any:
    return LogStreamSettledTrigger(
        postgres_conn_id="logdog_postgres",
        schema=schema,
        stream_id=stream_id,
        settle_delay_s=settle,
        delay_max_s=delay_max,
        completeness_threshold_s=threshold,
        poll_interval_s=0.5,
    )


async def first_event(t: LogStreamSettledTrigger, timeout: float = 60) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        async for event in t.run():
            return event.payload, time.monotonic() - started
    raise AssertionError("the trigger ended without an event")


def age_seconds(conn: psycopg.Connection, schema: str, stream_id: int, column: str) -> float:
    row = conn.execute(
        f'SELECT extract(epoch FROM now() - {column}) FROM "{schema}".log_streams WHERE id = %s', (stream_id,)
    ).fetchone()
    conn.commit()
    return float(row[0])


def test_settle_delay_and_completeness(schema: str, pg: psycopg.Connection) -> None:
    gap = SAMPLES["text-gap"]()
    gap.desc.name = "gap"
    done = text_lines_stream(TEXT_LINES, desc=descriptor(name="done"))
    running = text_lines_stream(TEXT_LINES, desc=descriptor(name="running"))
    store_messages(
        pg, schema, butler_messages(gap) + butler_messages(done) + butler_messages(running, terminate=False)
    )
    ids = stream_ids(pg, schema)

    async def scenario() -> list[tuple[dict[str, Any], float]]:
        return await asyncio.gather(
            first_event(trigger(schema, ids["done"], settle=2)),
            first_event(trigger(schema, ids["gap"], settle=1, threshold=2)),
            first_event(trigger(schema, ids["running"], delay_max=2)),
        )

    (done_ev, _), (gap_ev, _), (run_ev, _) = asyncio.run(scenario())
    assert done_ev == {
        "stream_id": ids["done"],
        "action": "archive",
        "complete": True,
        "reason": done_ev["reason"],
    }
    assert age_seconds(pg, schema, ids["done"], "terminated_at") >= 2  # never before the settle delay
    assert gap_ev["action"] == "archive" and gap_ev["complete"] is False
    assert "best-effort" in gap_ev["reason"]
    assert age_seconds(pg, schema, ids["gap"], "terminated_at") >= 3  # settle 1 s + threshold 2 s
    assert run_ev["action"] == "archive" and run_ev["complete"] is False
    assert age_seconds(pg, schema, ids["running"], "registered_at") >= 2


def test_missing_entries_arriving_while_waiting(schema: str, pg: psycopg.Connection) -> None:
    full = text_lines_stream(TEXT_LINES, per_entry=2, desc=descriptor(name="late"))
    early = Stream(full.desc, [e for e in full.entries if e.stream_index not in (3, 4)])
    store_messages(pg, schema, butler_messages(early, terminal_index=full.entries[-1].stream_index))
    sid = stream_ids(pg, schema)["late"]
    assert load_state(pg, schema, sid).missing == 2

    async def scenario() -> tuple[dict[str, Any], float]:
        waiting = asyncio.create_task(first_event(trigger(schema, sid, threshold=600)))
        await asyncio.sleep(2)
        assert not waiting.done()  # incomplete and young: back to waiting
        await asyncio.to_thread(
            store_messages, pg, schema, butler_messages(Stream(full.desc, full.entries[3:5]), terminate=False)
        )
        return await waiting

    event, _ = asyncio.run(scenario())
    assert event["action"] == "archive" and event["complete"] is True


def test_archived_gone_and_serialization(schema: str, pg: psycopg.Connection) -> None:
    stream = text_lines_stream(TEXT_LINES[:4], desc=descriptor(name="archived"))
    store_messages(pg, schema, butler_messages(stream))
    sid = stream_ids(pg, schema)["archived"]
    pg.execute(f"UPDATE \"{schema}\".log_streams SET state = 'archived' WHERE id = %s", (sid,))
    pg.commit()
    t = trigger(schema, sid, settle=3600)
    classpath, kwargs = t.serialize()
    assert classpath == "datamover.triggers.logdog.LogStreamSettledTrigger"
    again = LogStreamSettledTrigger(**kwargs)

    async def scenario() -> list[tuple[dict[str, Any], float]]:
        return await asyncio.gather(first_event(again), first_event(trigger(schema, 987654321)))

    (archived, _), (gone, _) = asyncio.run(scenario())
    assert archived["action"] == "done"
    assert gone["action"] == "gone"
