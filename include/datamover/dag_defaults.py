"""Defaults every DAG in this project shares: owner, retries with exponential backoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

OWNER = "data-platform"


def default_args(retries: int = 3, **overrides: Any) -> dict[str, Any]:
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        **overrides,
    }
