"""What the Airflow plugin registers, importable at no cost: every Airflow component imports its
plugins (task processes too, for macros), so the FastAPI app is only built when the API server first
routes a request to it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

URL_PREFIX = "/datamover/offload"
URL_ROUTE = "offload"  # the page in the UI: <base>/plugin/offload
NAME = "Offload"
# The navigation icon, inline (a cloud with an upward arrow), so it needs no request of its own.
ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%238a94a6' stroke-width='2' stroke-linecap='round' stroke-linejoin='round'><path d='M4 14.9A7 "
    "7 0 1 1 15.7 8h1.8a4.5 4.5 0 0 1 2.5 8.2'/><path d='M12 12v9'/><path d='m16 16-4-4-4 4'/></svg>"
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyApp:
    """An ASGI app that builds the real one (`datamover.offload_page.app.create_app`) on first use."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        with self._lock:
            if self._app is None:
                from datamover.offload_page.app import create_app

                self._app = create_app()
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or self._build()
        await app(scope, receive, send)


def _base_path() -> str:
    try:
        from airflow.configuration import conf

        path = urlsplit(conf.get("api", "base_url", fallback="") or "/").path
    except Exception:  # outside Airflow (docs, tests of this module)
        path = "/"
    return path.rstrip("/")


def fastapi_app() -> dict[str, Any]:
    return {"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "Datamover Offload page"}


def external_view() -> dict[str, Any]:
    """A top-level item of the UI's navigation that shows the page in the UI (an iframe of the same
    origin, so the page's requests carry the user's Airflow login)."""
    return {
        "name": NAME,
        "href": f"{_base_path()}{URL_PREFIX}/",
        "url_route": URL_ROUTE,
        "destination": "nav",
        "nav_top_level": True,
        "icon": ICON,
    }
