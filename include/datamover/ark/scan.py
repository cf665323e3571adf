"""Scan result of storage_base_path: a JSON-able structure (for XCom and a UI) and a readable table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datamover.ark.format import ArkLog, Rejected, detect, iso


def scan(base: str | Path, settle_seconds: float = 1.0) -> dict[str, Any]:
    """What a UI shows (and XCom carries): {"storage_base_path", "scanned_at", "logs": [{name,
    start_time, duration_s, size, file_count}], "non_ark": [{path, reason}], "total_bytes"}. No file
    lists or checksums: the offload reads those from the logs themselves when it runs."""
    logs, rejected = detect(base, settle_seconds=settle_seconds)
    return {
        "storage_base_path": str(base),
        "scanned_at": iso(datetime.now(UTC)),
        "logs": [summary_of(log) for log in logs],
        "non_ark": [r.to_dict() for r in rejected],
        "total_bytes": sum(log.size for log in logs),
    }


def summary_of(log: ArkLog) -> dict[str, Any]:
    return {
        "name": log.name,
        "start_time": iso(log.start_time),
        "duration_s": log.duration_s,
        "size": log.size,
        "file_count": log.file_count,
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


def unknown_names(found: Sequence[str], non_ark: dict[str, str], wanted: Sequence[str], where: str) -> str:
    """The error text for names in a selection that are not Ark Logs here."""
    details = [f"{n!r} ({'not an Ark Log: ' + non_ark[n] if n in non_ark else 'not found'})" for n in wanted]
    return (
        f"Selected log(s) {', '.join(details)} in {where}, and not offloaded earlier either. "
        f"Ark Logs found: {', '.join(sorted(found)) or 'none'}. Fix the 'logs' param (empty = all)."
    )


__all__ = ["Rejected", "human_bytes", "scan", "summary_of", "table", "unknown_names"]
