"""The settle-delay trigger: polls a log stream's coordinator state in PostgreSQL (psycopg 3 async)
from the triggerer, so a waiting stream holds no worker slot, and fires once the coordinator rules
(datamover.logdog.coordinator.decide) release it for archival, or find it archived or gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from psycopg.rows import dict_row

from datamover.logdog.coordinator import Action, Delays, decide
from datamover.logdog.storage import STATE_SQL, q, stream_state


async def connect(postgres_conn_id: str) -> psycopg.AsyncConnection:
    """An async psycopg connection from an Airflow `postgres` connection (host, port, login, password,
    schema = database; extra: sslmode and other libpq options)."""
    c = await BaseHook.aget_connection(postgres_conn_id)
    extra = dict(c.extra_dejson or {})
    options = {
        k: v for k, v in extra.items() if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options")
    }
    return await psycopg.AsyncConnection.connect(
        host=c.host or "localhost",
        port=c.port or 5432,
        user=c.login,
        password=c.password,
        dbname=c.schema or extra.get("dbname") or "postgres",
        connect_timeout=10,
        application_name="datamover-triggerer",
        autocommit=True,
        **options,
    )


class LogStreamSettledTrigger(BaseTrigger):
    """Fires `{"stream_id", "action": archive|done|gone, "reason", "complete"}` when the stream may be
    archived (or needs no archival). Wakes at the stream's due time, else every `poll_interval_s`;
    a database outage is logged and retried at the next poll, never fatal."""

    def __init__(
        self,
        *,
        postgres_conn_id: str,
        schema: str,
        stream_id: int,
        settle_delay_s: float,
        delay_max_s: float,
        completeness_threshold_s: float,
        poll_interval_s: float = 15.0,
    ) -> None:
        super().__init__()
        self.postgres_conn_id = postgres_conn_id
        self.schema = schema
        self.stream_id = int(stream_id)
        self.settle_delay_s = settle_delay_s
        self.delay_max_s = delay_max_s
        self.completeness_threshold_s = completeness_threshold_s
        self.poll_interval_s = poll_interval_s

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "postgres_conn_id": self.postgres_conn_id,
                "schema": self.schema,
                "stream_id": self.stream_id,
                "settle_delay_s": self.settle_delay_s,
                "delay_max_s": self.delay_max_s,
                "completeness_threshold_s": self.completeness_threshold_s,
                "poll_interval_s": self.poll_interval_s,
            },
        )

    @property
    def delays(self) -> Delays:
        return Delays(
            timedelta(seconds=self.settle_delay_s),
            timedelta(seconds=self.delay_max_s),
            timedelta(seconds=self.completeness_threshold_s),
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        conn: psycopg.AsyncConnection | None = None
        query = q(STATE_SQL, self.schema)
        last_reason = None
        try:
            while True:
                try:
                    if conn is None or conn.closed:
                        conn = await connect(self.postgres_conn_id)
                    async with conn.cursor(row_factory=dict_row) as cur:
                        await cur.execute(query, (self.stream_id,))
                        state = stream_state(await cur.fetchone())
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    self.log.warning("Stream %d: cannot read its state (%s); retrying.", self.stream_id, exc)
                    if conn is not None:
                        await conn.close()
                    conn = None
                    await asyncio.sleep(self.poll_interval_s)
                    continue
                decision = decide(state, self.delays)
                if decision.action != Action.WAIT:
                    self.log.info(
                        "Stream %d: %s (%s)", self.stream_id, decision.action.value, decision.reason
                    )
                    yield TriggerEvent(decision.as_event(self.stream_id))
                    return
                if decision.reason != last_reason:
                    self.log.info("Stream %d: waiting: %s", self.stream_id, decision.reason)
                    last_reason = decision.reason
                pause = self.poll_interval_s
                if state is not None and decision.not_before is not None:
                    until_due = (decision.not_before - state.now).total_seconds()
                    pause = min(pause, max(0.2, until_due + 0.05))
                await asyncio.sleep(pause)
        finally:
            if conn is not None:
                await conn.close()
