"""Health and log publishing in every Airflow component that runs the datamover package.

Thin: the listener module and the api-server's lifespan live in datamover.listeners.publishing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI

from datamover.listeners import publishing


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    # the api-server has no lifecycle listener hook: its plugin apps' lifespans start and stop publishing
    publishing.start_publishing("api-server")
    yield
    publishing.stop_publishing()


status_app = FastAPI(title="datamover publishing", lifespan=_lifespan)


@status_app.get("/status")
def status() -> dict[str, object]:
    """What this api-server worker publishes (no secrets: member id and counters)."""
    return publishing.status()


class DatamoverStreamsPlugin(AirflowPlugin):
    name = "datamover_streams"
    listeners = [publishing]
    fastapi_apps = [{"app": status_app, "url_prefix": "/datamover-streams", "name": "datamover publishing"}]
