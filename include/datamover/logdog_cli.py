"""`datamover-logdog`: read LogDog archives back, like `logdog cat` (logic in datamover.logdog.reader).

    datamover-logdog cat s3://logdog-archive/datamover/chromium/bb/1/+/steps/compile/stdout
    datamover-logdog cat --raw --from 100 --to 199 ARCHIVE      # raw bytes of entries 100..199
    datamover-logdog cat --timestamps ./local/folder            # a folder holding logstream.entries/.index
    datamover-logdog info ARCHIVE                                # descriptor and index summary (JSON)

An s3:// archive is read through an Airflow `aws` connection (`--conn`, default logdog_archive), so the
same connection the archivist writes with (keys, endpoint, role) serves reading.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from datamover.logdog.reader import Archive, ArchiveError, local_archive, s3_archive


def open_archive(location: str, conn_id: str) -> Archive:
    if location.startswith("s3://"):
        from datamover.hooks.s3 import ObjectStoreHook

        bucket, _, folder = location.removeprefix("s3://").partition("/")
        folder = folder.removesuffix("/logstream.entries").removesuffix("/logstream.index")
        return s3_archive(ObjectStoreHook(conn_id).client(), bucket, folder)
    path = Path(location)
    if path.is_dir():
        index = path / "logstream.index"
        return local_archive(str(path / "logstream.entries"), str(index) if index.exists() else None)
    index = path.with_name("logstream.index")
    return local_archive(str(path), str(index) if index.exists() else None)


def info(archive: Archive) -> dict[str, Any]:
    out: dict[str, Any] = {
        "descriptor": json_format.MessageToDict(archive.descriptor(), preserving_proto_field_name=True)
    }
    if archive.index is not None:
        out["index"] = {
            "entries": len(archive.index.entries),
            "log_entry_count": archive.index.log_entry_count,
            "last_stream_index": archive.index.last_stream_index,
            "last_prefix_index": archive.index.last_prefix_index,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datamover-logdog", description="Read LogDog archives.")
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("cat", help="render a stream's content")
    cat.add_argument(
        "archive", help="s3://bucket/<base>/<project>/<prefix>/+/<name>, a folder or an entries file"
    )
    cat.add_argument("--conn", default="logdog_archive", help="Airflow aws connection for s3:// archives")
    cat.add_argument("--raw", action="store_true", help="bytes as the stream had them (the data file)")
    cat.add_argument("--timestamps", action="store_true", help="prefix text lines with their time")
    cat.add_argument("--from", dest="start", type=int, default=0, help="first stream index")
    cat.add_argument("--to", dest="end", type=int, default=None, help="last stream index")
    inf = sub.add_parser("info", help="descriptor and index summary as JSON")
    inf.add_argument("archive")
    inf.add_argument("--conn", default="logdog_archive")
    args = parser.parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Airflow's log lines must not mix with the stream
            archive = open_archive(args.archive, args.conn)
        if args.command == "info":
            print(json.dumps(info(archive), indent=2))
            return 0
        out = sys.stdout.buffer
        for chunk in archive.render(args.start, args.end, raw=args.raw, timestamps=args.timestamps):
            out.write(chunk)
        out.flush()
    except ArchiveError as exc:
        print(f"datamover-logdog: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
