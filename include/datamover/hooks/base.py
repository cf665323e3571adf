"""What every hook here shares: connection lookup and the error raised when a connection fails."""

from __future__ import annotations

from airflow.sdk import BaseHook, Connection

from datamover.errors import ConnectionCheckError


class DataMoverHook(BaseHook):
    """A hook bound to one Airflow connection id; `check()` proves the connection works."""

    default_conn_name: str = ""

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.get_connection(self.conn_id)
        return self._connection

    def check(self) -> str:
        """Return a one-line description of what works; raise ConnectionCheckError otherwise."""
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """The UI's 'Test' button."""
        try:
            return True, self.check()
        except ConnectionCheckError as exc:
            return False, str(exc)

    def failure(self, what: str, fix: str) -> ConnectionCheckError:
        return ConnectionCheckError(f"Connection {self.conn_id!r}: {what}. Fix: {fix}")
