"""The e2e stack's health and log publishing configs: topics of its own (other stacks on this host
publish the same member ids), health every second, a short silence timeout and no load/memory
thresholds (a shared test host is often overloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SILENCE_TIMEOUT_S = 12
TAILED_APP = "e2e-tailed"


def streams_configs(tag: str, work: Path) -> dict[str, dict[str, Any]]:
    """`work/tailed.log` is tailed by the scheduler (its positions on a topic of the stack's own)."""
    return {
        "health": {
            "publisher": {"interval_s": 1, "topic": f"e2e.health.{tag}"},
            "watch": {"silence_timeout_s": SILENCE_TIMEOUT_S, "lookback_s": 30, "thresholds": {}},
        },
        "log_publishing": {
            "topic": f"e2e.logs.{tag}",
            "positions_topic": f"e2e.log-positions.{tag}",
            "files": [{"path": str(work / "tailed.log"), "app_name": TAILED_APP, "component": "scheduler"}],
            "tail": {"lock_dir": str(work)},
        },
    }
