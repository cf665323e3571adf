"""What every operator of the package shares: errors that no retry can fix fail the task at once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from datamover.errors import PermanentError

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn a PermanentError (bad config, unknown name, refused credentials, corrupt local data) into
    AirflowFailException: the task fails now, with the error's message, and does not use its retries."""
    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(str(exc)) from exc


def fails_fast(fn: F) -> F:
    """`fail_fast` as a decorator, for `execute` methods and @task functions."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with fail_fast():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
