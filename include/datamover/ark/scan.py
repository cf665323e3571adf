"""Scan result of storage_base_path: a JSON-able structure (for XCom and a UI) and a readable table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datamover.ark.format import ArkLog, Rejected, detect, iso
from datamover.errors import ConfigError


def scan(base: str | Path, settle_seconds: float = 1.0) -> dict[str, Any]:
    """{"storage_base_path", "scanned_at", "logs": [ArkLog.to_dict()], "non_ark": [{"path","reason"}],
    "total_bytes"}"""
    logs, rejected = detect(base, settle_seconds=settle_seconds)
    return {
        "storage_base_path": str(base),
        "scanned_at": iso(datetime.now(UTC)),
        "logs": [log.to_dict() for log in logs],
        "non_ark": [r.to_dict() for r in rejected],
        "total_bytes": sum(log.size for log in logs),
    }


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


def table(result: dict[str, Any]) -> str:
    logs = result["logs"]
    lines = [
        f"Ark Logs in {result['storage_base_path']} (scanned {result['scanned_at']}): {len(logs)} found, "
        f"{human_bytes(result['total_bytes'])}"
    ]
    header = f"  {'NAME':<32} {'START (UTC)':<21} {'DURATION':>10} {'SIZE':>10} {'FILES':>6}"
    lines.append(header)
    lines.append("  " + "-" * (len(header) - 2))
    for log in logs:
        lines.append(
            f"  {log['name']:<32} {log['start_time'][:19]:<21} {_duration(log['duration_s']):>10} "
            f"{human_bytes(log['size']):>10} {log['file_count']:>6}"
        )
    if not logs:
        lines.append("  (none)")
    non_ark = result["non_ark"]
    lines.append(f"Non-Ark data (ignored: never uploaded, never deleted): {len(non_ark)}")
    for item in non_ark:
        lines.append(f"  {item['path']:<32} {item['reason']}")
    return "\n".join(lines)


def select(result: dict[str, Any], wanted: Sequence[str] | None) -> list[dict[str, Any]]:
    """The logs named in `wanted` (empty or None = all found); unknown names fail listing what exists."""
    by_name = {log["name"]: log for log in result["logs"]}
    if not wanted:
        return list(by_name.values())
    if isinstance(wanted, str):
        wanted = [wanted]
    missing = [n for n in dict.fromkeys(wanted) if n not in by_name]
    if missing:
        non_ark = {r["path"]: r["reason"] for r in result["non_ark"]}
        details = [
            f"{n!r} ({'not an Ark Log: ' + non_ark[n] if n in non_ark else 'not found'})" for n in missing
        ]
        raise ConfigError(
            f"Selected log(s) {', '.join(details)} in {result['storage_base_path']}. "
            f"Ark Logs found: {', '.join(sorted(by_name)) or 'none'}. Fix the 'logs' param "
            "(empty = all)."
        )
    return [by_name[n] for n in dict.fromkeys(wanted)]


def logs_of(selection: Sequence[dict[str, Any]]) -> list[ArkLog]:
    return [ArkLog.from_dict(d) for d in selection]


__all__ = ["Rejected", "human_bytes", "logs_of", "scan", "select", "table"]
