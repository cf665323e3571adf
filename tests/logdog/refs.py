"""The LogDog reference tool (`logdogref`, LUCI's own archive code) for tests and benchmarks.

`scripts/logdogref path` builds it on first use (Go; ~40 s cold) into the shared cache."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from datamover.logdog.archive import IndexRules

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = IndexRules()


@cache
def logdogref_path() -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts/logdogref"), "path"], capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise RuntimeError(f"cannot build logdogref:\n{out.stderr[-3000:]}")
    return Path(out.stdout.strip())


@dataclass
class RefArchive:
    entries: bytes
    index: bytes
    data: bytes | None
    summary: dict[str, Any]


def ref_write(
    stream_json: dict[str, Any], workdir: Path, rules: IndexRules = DEFAULT_RULES, data: bool = False
) -> RefArchive:
    """`logdogref write`: LUCI's archive.Archive over the stream."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / "stream.json"
    spec.write_text(json.dumps(stream_json))
    args = [
        str(logdogref_path()),
        "write",
        "--in",
        str(spec),
        "--entries",
        str(workdir / "ref.entries"),
        "--index",
        str(workdir / "ref.index"),
        *rules.flags(),
    ]
    if data:
        args += ["--data", str(workdir / "ref.data")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return RefArchive(
        (workdir / "ref.entries").read_bytes(),
        (workdir / "ref.index").read_bytes(),
        (workdir / "ref.data").read_bytes() if data else None,
        json.loads(out.stdout),
    )


def ref_read(
    entries: Path, index: Path, data: Path | None = None, rules: IndexRules | None = DEFAULT_RULES
) -> dict[str, Any]:
    """`logdogref read [--rebuild]`: the tool's validation report (`ok`, `errors`, `rebuild`, ...)."""
    args = [str(logdogref_path()), "read", "--entries", str(entries), "--index", str(index)]
    if data is not None:
        args += ["--data", str(data)]
    if rules is not None:
        args += ["--rebuild", *rules.flags()]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    report = json.loads(out.stdout)
    report["returncode"] = out.returncode
    return report


def assert_valid(report: dict[str, Any], data: bool = False) -> None:
    """The archive is valid and byte-identical (modulo tag order) to LUCI's for the same rules."""
    assert report["ok"], report["errors"]
    assert report["returncode"] == 0
    assert report["rebuild"]["entries_match"] and report["rebuild"]["index_match"], report["rebuild"]
    if data:
        assert report["data"]["matches_rendered"], report["data"]


# bytes.Buffer.ReadFrom offers LUCI's Renderer at least 512 bytes (bytes.MinRead) per read.
RENDERER_SAFE_SIZE = 512


def raw_entries_from_report(report: dict[str, Any]) -> list[bytes]:
    """The raw rendering of each entry as LUCI's code decoded it (from `read`'s JSON)."""
    import base64

    def value(d: dict[str, Any], key: str) -> bytes:
        return base64.b64decode(d[key + "_b64"]) if key + "_b64" in d else d.get(key, "").encode()

    out = []
    for e in report["entries"]:
        if "text" in e:
            out.append(b"".join(value(ln, "value") + ln["delimiter"].encode() for ln in e["text"]["lines"]))
        elif "binary" in e:
            out.append(value(e["binary"], "data"))
        elif "datagram" in e:
            out.append(value(e["datagram"], "data"))
        else:
            out.append(b"")
    return out


def check_data_file(entries: Path, index: Path, data: Path, rules: IndexRules | None) -> dict[str, Any]:
    """Validate an archive with its data file. The data file must be the raw rendering of the entries
    LUCI decodes. `read --data` itself is asked only when the last entry renders to at most 512 bytes:
    above that, LUCI's Renderer over a StaticSource (which returns the last entry together with io.EOF)
    drops the tail of that entry, a quirk the archivist's own source never triggered."""
    report = ref_read(entries, index, None, rules)
    assert_valid(report)
    raws = raw_entries_from_report(report)
    assert data.read_bytes() == b"".join(raws)
    if not raws or len(raws[-1]) <= RENDERER_SAFE_SIZE:
        report = ref_read(entries, index, data, rules)
        assert_valid(report, data=True)
    return report
