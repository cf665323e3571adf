"""Run by test_kill.py in a child process: archive one stream and stop dead at a given point.

    python -m tests.integration.logdog.kill_child SCHEMA STAGING ARCHIVE STREAM_ID PHASE MARKER

PHASE is one of the archivist's phases (staged, moved, recorded), `uploading` (inside the second
part upload of the entries file) or `moving` (the files are moved one by one, side by side: right after
the first staged file is deleted, and before any other is). At that point the child writes MARKER and
sleeps until killed."""

from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import tests.conftest  # noqa: F401  (the services' environment and connections)
from datamover.hooks.postgres import PostgresHook
from datamover.hooks.s3 import ObjectStoreHook
from tests.integration.logdog.helpers import archivist, settings

LEASE = timedelta(seconds=4)
PART = 5 * 1024 * 1024


def stop_here(marker: Path) -> None:
    marker.write_text("stopped")
    while True:
        time.sleep(60)


class PausingClient:
    """The real boto3 client; the second upload_part of the run never returns."""

    def __init__(self, client: Any, marker: Path) -> None:
        self._client = client
        self._marker = marker
        self._parts = 0

    def upload_part(self, **kwargs: Any) -> Any:
        response = self._client.upload_part(**kwargs)
        self._parts += 1
        if self._parts == 2:
            stop_here(self._marker)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class PausingDeletes:
    """The real boto3 client; the first delete_object goes through and never returns, the others never
    start (one file moved and its staged copy gone, the others copied or not, still staged)."""

    def __init__(self, client: Any, marker: Path) -> None:
        self._client = client
        self._marker = marker
        self._lock = threading.Lock()
        self._deleted = False

    def delete_object(self, **kwargs: Any) -> Any:
        with self._lock:
            first = not self._deleted
            self._deleted = True
            if first:
                self._client.delete_object(**kwargs)
        stop_here(self._marker)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def main() -> None:
    schema, staging, archive, stream_id, phase, marker = sys.argv[1:]
    marker_path = Path(marker)
    client = ObjectStoreHook("logdog_archive").client()
    if phase == "uploading":
        client = PausingClient(client, marker_path)
    elif phase == "moving":
        client = PausingDeletes(client, marker_path)

    def on_phase(name: str, _stream_id: int) -> None:
        if name == phase:
            stop_here(marker_path)

    conn = PostgresHook("logdog_postgres").connect()
    st = settings((staging, archive), lease=LEASE, part_size=PART, upload_workers=1)
    archivist(conn, schema, client, st, owner="killed-worker", on_phase=on_phase).archive(int(stream_id))


if __name__ == "__main__":
    main()
