"""The e2e stack's health and log publishing configs: topics of its own (other stacks on this host
publish the same member ids), health every second, a short silence timeout and no load/memory
thresholds (a shared test host is often overloaded)."""

from __future__ import annotations

from typing import Any

SILENCE_TIMEOUT_S = 12


def streams_configs(tag: str) -> dict[str, dict[str, Any]]:
    return {
        "health": {
            "publisher": {"interval_s": 1, "topic": f"e2e.health.{tag}"},
            "watch": {"silence_timeout_s": SILENCE_TIMEOUT_S, "lookback_s": 30, "thresholds": {}},
        },
        "log_publishing": {"topic": f"e2e.logs.{tag}"},
    }
