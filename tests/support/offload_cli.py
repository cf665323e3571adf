"""The offload engine without Airflow, for the resume test and the benchmark: one JSON line per event.

    python -m tests.support.offload_cli BASE --bucket B [--prefix P] [--aws-conn-id aws_default] [--events]

The connection comes from the environment (AIRFLOW_CONN_<ID>), as the tests and the benchmark define it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import threading
from collections.abc import Sequence

from datamover.ark.format import detect
from datamover.ark.offload import OffloadEngine, OffloadOptions, summary
from datamover.ark.progress import FAILED, Progress
from datamover.hooks.s3 import ObjectStoreHook
from datamover.units import MIB


def kill_at_fraction(proc: subprocess.Popen[str], total: int, fraction: float = 0.5) -> tuple[int, int]:
    """Follow the `--events` output of `proc` and SIGKILL it once `fraction` of `total` bytes is done
    (an interruption mid-offload). Returns (attempted, done) bytes at the kill; the process may also
    finish first."""
    attempted = done = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("{"):
            continue  # a log line of the hooks, not an event
        event = json.loads(line)
        if event["event"] == "summary":
            break
        attempted, done = event["attempted"], event["done"]
        if done >= total * fraction:
            os.kill(proc.pid, signal.SIGKILL)
            break
    return attempted, done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="logs")
    parser.add_argument("--aws-conn-id", default="aws_default")
    parser.add_argument("--logs", nargs="*", default=None)
    parser.add_argument("--concurrency", type=int, default=OffloadOptions.concurrency)
    parser.add_argument("--min-part-size-mib", type=int, default=OffloadOptions.min_part_size // MIB)
    parser.add_argument("--events", action="store_true", help="print a JSON line per part")
    args = parser.parse_args(argv)
    logs, _ = detect(args.base, settle_seconds=0)
    if args.logs:
        logs = [lg for lg in logs if lg.name in args.logs]
    lock = threading.Lock()
    progress = Progress.for_logs(logs)

    def listener(kind: str, name: str, nbytes: int) -> None:
        if args.events:
            with lock:
                st = engine.stats
                event = {
                    "event": kind,
                    "log": name,
                    "bytes": nbytes,
                    "attempted": st.bytes_attempted,
                    "sent": st.bytes_sent,
                    "done": progress.bytes_done,
                }
                print(json.dumps(event), flush=True)

    engine = OffloadEngine(
        ObjectStoreHook(args.aws_conn_id).client(pool=args.concurrency + 8),
        args.bucket,
        OffloadOptions(
            prefix=args.prefix, concurrency=args.concurrency, min_part_size=args.min_part_size_mib * MIB
        ),
        progress=progress,
        listener=listener,
    )
    results = engine.run(logs)
    print(
        json.dumps({"event": "summary", "total": progress.bytes_total, **summary(results, engine.stats)}),
        flush=True,
    )
    return 0 if all(r.state != FAILED for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
