"""Parsers for the two message kinds the monitor reads from Kafka.

File notifications are Ceph RGW bucket notifications in the S3 event schema, one JSON document per
message with a `Records` list (Ceph puts one record in each):

    {"Records": [{"eventVersion": "2.2", "eventSource": "ceph:s3", "eventTime": "2025-04-23T19:19:54.172258Z",
                  "eventName": "ObjectCreated:Put", ...,
                  "s3": {"bucket": {"name": "rubin-summit", ...},
                         "object": {"key": "LSSTCam/20250423/MC_O_20250423_000034/..._R31_S10.json",
                                    "size": 2867, "eTag": "c2484080...", "sequencer": "5A3D0968...", ...}},
                  "eventId": "1745435994.208185.c2484080...", "opaqueData": ""}]}

End Readout events come from the camera (Avro in production, the same fields as JSON here): the fields
used are `imageName` (the obsId), `imageDate`, `imageSource`, `imageController`, `imageNumber` and
`timestampEndOfReadout` (float seconds on the TAI scale); `additionalKeys` / `additionalValues` are
':'-separated lists in which `\\:` escapes a colon inside a value.

Every malformed message raises MessageError saying what is wrong; the ingest logs it with its Kafka
coordinates and moves on (a bad message must not stop the stream).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class MessageError(ValueError):
    """A message that is not what its topic promises (its text, and why, are in the message)."""


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One record of a bucket notification."""

    bucket: str
    key: str
    event_name: str
    event_time: datetime  # UTC, as Ceph stamps it (microseconds)
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    event_id: str | None = None

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated")


def _loads(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MessageError(f"expected a JSON object, got {type(doc).__name__}")
    return doc


def parse_event_time(text: Any) -> datetime:
    """An S3 event's `eventTime` (ISO 8601, `Z` or an offset; AWS gives ms, Ceph µs) as aware UTC."""
    if not isinstance(text, str) or not text:
        raise MessageError(f"eventTime missing or not a string: {text!r}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MessageError(f"eventTime is not ISO 8601: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # the S3 schema is UTC even when the suffix is dropped
    return parsed.astimezone(UTC)


def parse_notification(raw: bytes | str | dict[str, Any]) -> list[ObjectEvent]:
    """The records of one bucket notification message."""
    doc = _loads(raw)
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        raise MessageError("no 'Records' list: not an S3 event notification")
    events = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise MessageError(f"Records[{i}] is not an object")
        s3 = record.get("s3")
        obj = s3.get("object") if isinstance(s3, dict) else None
        bucket = s3.get("bucket") if isinstance(s3, dict) else None
        if not isinstance(obj, dict) or not isinstance(bucket, dict):
            raise MessageError(f"Records[{i}] has no s3.object / s3.bucket")
        key = obj.get("key")
        if not isinstance(key, str) or not key:
            raise MessageError(f"Records[{i}] has no s3.object.key")
        size = obj.get("size")
        events.append(
            ObjectEvent(
                bucket=str(bucket.get("name") or ""),
                key=key,
                event_name=str(record.get("eventName") or ""),
                event_time=parse_event_time(record.get("eventTime")),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                etag=str(obj["eTag"]) if obj.get("eTag") else None,
                sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
                event_id=str(record["eventId"]) if record.get("eventId") else None,
            )
        )
    return events


@dataclass(frozen=True, slots=True)
class EndReadout:
    """The fields of an End Readout event the monitor needs, plus the whole message for the record."""

    obs_id: str  # imageName, e.g. MC_O_20250502_000010
    image_date: str  # YYYYMMDD
    image_source: str  # MC
    timestamp_end_of_readout: float  # seconds, TAI scale
    image_controller: str = ""
    image_number: int | None = None
    additional: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


_UNESCAPED_COLON = re.compile(r"(?<!\\):")
_IMAGE_DATE = re.compile(r"\d{8}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def split_colon_list(text: str) -> list[str]:
    """`a:b\\:c:d` -> ["a", "b:c", "d"] (the camera's encoding of additionalKeys/Values)."""
    if not text:
        return []
    return [part.replace("\\:", ":") for part in _UNESCAPED_COLON.split(text)]


def parse_additional(keys: Any, values: Any) -> dict[str, str]:
    names = split_colon_list(keys) if isinstance(keys, str) else []
    vals = split_colon_list(values) if isinstance(values, str) else []
    if len(names) != len(vals):
        raise MessageError(f"additionalKeys has {len(names)} entries but additionalValues {len(vals)}")
    return dict(zip(names, vals, strict=True))


def _required_str(doc: dict[str, Any], name: str, pattern: re.Pattern[str] = _SAFE_NAME) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MessageError(f"{name} missing or malformed: {value!r}")
    return value


def parse_end_readout(raw: bytes | str | dict[str, Any]) -> EndReadout:
    doc = _loads(raw)
    stamp = doc.get("timestampEndOfReadout")
    numeric = isinstance(stamp, int | float) and not isinstance(stamp, bool)
    if not numeric or not math.isfinite(stamp) or stamp <= 0:
        raise MessageError(f"timestampEndOfReadout missing or not a positive number: {stamp!r}")
    number = doc.get("imageNumber")
    return EndReadout(
        obs_id=_required_str(doc, "imageName"),
        image_date=_required_str(doc, "imageDate", _IMAGE_DATE),
        image_source=_required_str(doc, "imageSource"),
        timestamp_end_of_readout=float(stamp),
        image_controller=str(doc.get("imageController") or ""),
        image_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
        additional=parse_additional(doc.get("additionalKeys"), doc.get("additionalValues")),
        raw=doc,
    )
