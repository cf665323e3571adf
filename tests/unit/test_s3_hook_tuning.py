"""ObjectStoreHook's session tuning: the fast timestamp parser agrees with botocore's, and the hooks of
one process share one botocore data loader (so a task's second client costs no model parsing)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.utils import parse_timestamp

from datamover.hooks.s3 import ObjectStoreHook, fast_timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-25T22:31:16.000Z",  # moto's listings
        "2026-11-25T22:31:16.123Z",  # Ceph RGW's listings
        "2026-11-25T22:31:16+00:00",
        "2026-11-25T22:31:16.123456+02:00",
        "Wed, 25 Nov 2026 22:31:16 GMT",  # Last-Modified headers
        "2026-11-25",
        1764109876,
        1764109876.25,
    ],
)
def test_fast_timestamp_agrees_with_botocore(value: object) -> None:
    fast, reference = fast_timestamp(value), parse_timestamp(value)
    assert fast == reference
    assert fast.utcoffset() == reference.utcoffset()


def test_fast_timestamp_falls_back_for_other_formats() -> None:
    assert fast_timestamp("Nov 25 2026 22:31:16 UTC") == datetime(2026, 11, 25, 22, 31, 16, tzinfo=UTC)
    with pytest.raises(ValueError):
        fast_timestamp("not a time")


def test_clients_share_one_loader_and_parse_timestamps_fast() -> None:
    first = ObjectStoreHook("egress_input").client()
    second = ObjectStoreHook("egress_output").client()
    assert first._loader is second._loader  # botocore keeps the loader it made the client with
    assert first.meta.endpoint_url != second.meta.endpoint_url  # still each connection's own client
    # The endpoint makes a response parser per answer from the session's factory: ours.
    factory = second._endpoint._response_parser_factory
    assert factory.create_parser("rest-xml")._timestamp_parser is fast_timestamp
