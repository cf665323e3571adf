"""ExposureWindowTrigger: waits in the triggerer (no worker slot) until transfer monitoring has work.

Work = an exposure that can be evaluated (all its expected objects arrived, or its wait window closed and
the notifications are ingested past it), or late arrivals of evaluated exposures to count. With `obs_id`,
only that exposure's readiness counts. Polls PostgreSQL every `poke_interval_s` on one connection, in a
thread so the triggerer's event loop never blocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from datamover.hooks.postgres import PostgresHook
from datamover.monitoring.store import Readiness, Store
from datamover.monitoring.timescale import utc_datetime


class ExposureWindowTrigger(BaseTrigger):
    def __init__(
        self,
        postgres_conn_id: str,
        schema: str,
        wait_s: float,
        slack_s: float,
        poke_interval_s: float = 1.0,
        obs_id: str | None = None,
        max_errors: int = 30,
    ) -> None:
        super().__init__()
        self.postgres_conn_id = postgres_conn_id
        self.schema = schema
        self.wait_s = wait_s
        self.slack_s = slack_s
        self.poke_interval_s = poke_interval_s
        self.obs_id = obs_id
        self.max_errors = max_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "postgres_conn_id": self.postgres_conn_id,
                "schema": self.schema,
                "wait_s": self.wait_s,
                "slack_s": self.slack_s,
                "poke_interval_s": self.poke_interval_s,
                "obs_id": self.obs_id,
                "max_errors": self.max_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        connection = await BaseHook.aget_connection(self.postgres_conn_id)
        hook = PostgresHook(self.postgres_conn_id, connection=connection)
        wait, slack = timedelta(seconds=self.wait_s), timedelta(seconds=self.slack_s)
        conn = None
        errors = 0
        try:
            while True:
                try:
                    if conn is None:
                        conn = await asyncio.to_thread(hook.get_conn)
                        conn.autocommit = True
                    store = Store(conn, self.schema)
                    state: Readiness = await asyncio.to_thread(
                        store.readiness, utc_datetime(time.time()), wait, slack, self.obs_id
                    )
                    errors = 0
                except Exception as exc:  # PostgreSQL restarting: keep waiting, up to a limit
                    errors += 1
                    self.log.warning("Transfer monitoring readiness check failed (%d): %s", errors, exc)
                    if conn is not None:
                        await asyncio.to_thread(conn.close)
                        conn = None
                    if errors >= self.max_errors:
                        yield TriggerEvent({"status": "error", "message": f"readiness check failing: {exc}"})
                        return
                    await asyncio.sleep(self.poke_interval_s)
                    continue
                if state.ready:
                    yield TriggerEvent(
                        {
                            "status": "ready",
                            "pending": state.pending,
                            "obs_id": self.obs_id,
                            "caught_up_at": state.caught_up_at.isoformat() if state.caught_up_at else None,
                        }
                    )
                    return
                await asyncio.sleep(self.poke_interval_s)
        finally:
            if conn is not None:
                await asyncio.to_thread(conn.close)
