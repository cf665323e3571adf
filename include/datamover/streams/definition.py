"""Typed event streams, in the spirit of the WSO2 DataBridge used by Apache Stratos.

A `StreamDefinition` names a stream (`name` + `version`, the stream id is `name:version`) and lists
its attributes in three ordered groups: meta, correlation and payload, each attribute with a type
(STRING, LONG, DOUBLE, BOOL, INT, FLOAT). An `Event` is validated against its definition and encoded
as one JSON object per message:

    {"stream": "ark_offload_status:1.0.0", "timestamp": <epoch ms>,
     "meta": {...}, "correlation": {...}, "payload": {...}}

The definitions live in include/config/streams.yaml so the status, health and log streams of
later DAGs share one format and one validator.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from datamover.config import CONFIG_DIR, FieldSpec, load_yaml, read_fields
from datamover.errors import ConfigError

STREAMS_FILE = CONFIG_DIR / "streams.yaml"

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class AttrType(StrEnum):
    STRING = "STRING"
    LONG = "LONG"
    INT = "INT"
    DOUBLE = "DOUBLE"
    FLOAT = "FLOAT"
    BOOL = "BOOL"

    def check(self, value: Any) -> str | None:
        """Return why `value` does not fit this type, or None."""
        if self is AttrType.STRING:
            return None if isinstance(value, str) else "must be a string"
        if self is AttrType.BOOL:
            return None if isinstance(value, bool) else "must be true/false"
        if isinstance(value, bool):  # bool is an int subclass; never accept it as a number
            return "must be a number, not a boolean"
        if self in (AttrType.LONG, AttrType.INT):
            low, high = _INT32 if self is AttrType.INT else _INT64
            if not isinstance(value, int):
                return "must be a whole number"
            return None if low <= value <= high else f"is out of range for {self.value}"
        if not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be finite (no NaN/Infinity in JSON)"


@dataclass(frozen=True)
class Attribute:
    name: str
    type: AttrType


GROUPS = ("meta", "correlation", "payload")


@dataclass(frozen=True)
class StreamDefinition:
    name: str
    version: str
    meta: tuple[Attribute, ...] = ()
    correlation: tuple[Attribute, ...] = ()
    payload: tuple[Attribute, ...] = ()
    description: str = ""

    @property
    def stream_id(self) -> str:
        return f"{self.name}:{self.version}"

    def group(self, name: str) -> tuple[Attribute, ...]:
        return getattr(self, name)

    @classmethod
    def from_mapping(cls, name: str, data: Any, where: str) -> StreamDefinition:
        fields = read_fields(
            data,
            [
                FieldSpec("version", str),
                FieldSpec("description", str, default=""),
                *(FieldSpec(g, dict, default={}) for g in GROUPS),
            ],
            f"{where}: stream {name!r}",
        )
        groups: dict[str, tuple[Attribute, ...]] = {}
        seen: set[str] = set()
        for group in GROUPS:
            attrs = []
            for attr_name, type_name in fields[group].items():
                try:
                    attr_type = AttrType(str(type_name).upper())
                except ValueError:
                    raise ConfigError(
                        f"{where}: stream {name!r} {group} attribute {attr_name!r} has type {type_name!r}; "
                        f"use one of {', '.join(t.value for t in AttrType)}."
                    ) from None
                if attr_name in seen:
                    raise ConfigError(f"{where}: stream {name!r} defines attribute {attr_name!r} twice.")
                seen.add(attr_name)
                attrs.append(Attribute(str(attr_name), attr_type))
            groups[group] = tuple(attrs)
        return cls(name=name, version=fields["version"], description=fields["description"], **groups)


@dataclass
class Event:
    """One event of a stream; `encode()` validates it and returns the JSON bytes."""

    definition: StreamDefinition
    meta: Mapping[str, Any] = field(default_factory=dict)
    correlation: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)
    timestamp_ms: int | None = None

    def validate(self) -> None:
        for group in GROUPS:
            values: Mapping[str, Any] = getattr(self, group)
            attrs = self.definition.group(group)
            names = {a.name for a in attrs}
            extra = sorted(set(values) - names)
            if extra:
                raise ValueError(
                    f"stream {self.definition.stream_id}: {group} has undefined attribute(s) "
                    f"{', '.join(extra)}; defined: {', '.join(sorted(names)) or 'none'}"
                )
            for attr in attrs:
                if attr.name not in values:
                    raise ValueError(
                        f"stream {self.definition.stream_id}: {group} attribute "
                        f"{attr.name!r} ({attr.type.value}) is missing"
                    )
                problem = attr.type.check(values[attr.name])
                if problem:
                    raise ValueError(
                        f"stream {self.definition.stream_id}: {group} attribute {attr.name!r} "
                        f"{problem} ({attr.type.value}), got {values[attr.name]!r}"
                    )

    def to_dict(self) -> dict[str, Any]:
        self.validate()
        ts = self.timestamp_ms if self.timestamp_ms is not None else int(time.time() * 1000)
        out: dict[str, Any] = {"stream": self.definition.stream_id, "timestamp": ts}
        for group in GROUPS:
            values: Mapping[str, Any] = getattr(self, group)
            # definition order, as DataBridge publishes attributes in the order they were defined
            out[group] = {a.name: values[a.name] for a in self.definition.group(group)}
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes | str, definition: StreamDefinition) -> dict[str, Any]:
    """Parse one encoded event and check it against `definition` (for consumers and tests)."""
    doc = json.loads(data)
    if doc.get("stream") != definition.stream_id:
        raise ValueError(f"event belongs to stream {doc.get('stream')!r}, expected {definition.stream_id!r}")
    Event(
        definition,
        doc.get("meta", {}),
        doc.get("correlation", {}),
        doc.get("payload", {}),
        doc.get("timestamp"),
    ).validate()
    return doc


def load_streams(path: str | Path = STREAMS_FILE) -> dict[str, StreamDefinition]:
    data = load_yaml(path)
    where = str(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("streams"), Mapping):
        raise ConfigError(f"{where}: expected a top-level 'streams:' mapping of stream name -> definition.")
    return {name: StreamDefinition.from_mapping(name, spec, where) for name, spec in data["streams"].items()}


def stream(name: str, path: str | Path = STREAMS_FILE) -> StreamDefinition:
    streams = load_streams(path)
    if name not in streams:
        raise ConfigError(f"{path}: no stream {name!r}; defined: {', '.join(sorted(streams))}.")
    return streams[name]
