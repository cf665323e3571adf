"""What every hook here adds to the provider hook it extends: a connection check for the preflight DAG
and the UI's Test button, and errors that name the connection and the fix."""

from __future__ import annotations

from typing import Any

from datamover.errors import ConfigError, ConnectionCheckError, CredentialsError


class CheckedConnection:
    """Mixin for a provider hook subclass: `check()` does one cheap real request and returns what works,
    or raises ConnectionCheckError (CredentialsError when a retry cannot help)."""

    conn_name_attr: str

    @property
    def conn_label(self) -> str:
        return str(getattr(self, self.conn_name_attr))

    def require_connection(self) -> Any:
        """The Airflow connection, or a ConfigError (permanent) saying how to define it."""
        try:
            return self.get_connection(self.conn_label)  # type: ignore[attr-defined]
        except Exception as exc:  # the task SDK raises its own AirflowNotFoundException subclasses
            raise ConfigError(
                f"Connection {self.conn_label!r} is not defined ({type(exc).__name__}). Fix: add it under "
                "Admin > Connections or in your secrets backend (locally: `make settings`)."
            ) from None

    def check(self) -> str:
        raise NotImplementedError

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button."""
        try:
            return True, self.check()
        except ConnectionCheckError as exc:
            return False, str(exc)

    def failure(self, what: str, fix: str, *, permanent: bool = False) -> ConnectionCheckError:
        error = CredentialsError if permanent else ConnectionCheckError
        return error(f"Connection {self.conn_label!r}: {what}. Fix: {fix}")
