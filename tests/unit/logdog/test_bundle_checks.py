"""The collector's rows: each entry as a binary COPY row of log_entries from its stream index on."""

from __future__ import annotations

from datamover.logdog.butler import check_bundle_entry, entry_row
from tests.logdog.butlers import bundle
from tests.logdog.streams import descriptor, entry


def test_rows_are_binary_copy_rows_from_the_stream_index_on() -> None:
    e = entry(7, 3, 2, (1, 500), lines=[(b"hello", "\n")])
    data = e.SerializeToString()
    row = entry_row(7, 3, 2, 1, 500, data)
    assert row[:12] == (8).to_bytes(4, "big") + (7).to_bytes(8, "big")
    assert row.endswith(len(data).to_bytes(4, "big") + data)
    no_time = entry_row(7, 3, 2, None, None, data)
    assert no_time[36:44] == b"\xff" * 8 and len(no_time) == len(row) - 12
    b = bundle("chromium", "bb/1/2", [(descriptor(prefix="bb/1/2"), [e], None)])
    part = check_bundle_entry(b, b.entries[0])
    assert part is not None and part.rows == [row] and part.first_index == part.last_index == 7
