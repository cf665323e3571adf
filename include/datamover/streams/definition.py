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
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator

from datamover.config import ConfigModel, load_config, validate
from datamover.errors import ConfigError

STREAMS_CONFIG = "streams"  # include/config/streams.yaml

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


TypeName = Literal["STRING", "LONG", "INT", "DOUBLE", "FLOAT", "BOOL"]


class StreamSpec(ConfigModel):
    """One stream in streams.yaml: attributes in publishing order, per group, name -> type."""

    version: str = Field(min_length=1)
    description: str = ""
    meta: dict[str, TypeName] = Field(default_factory=dict)
    correlation: dict[str, TypeName] = Field(default_factory=dict)
    payload: dict[str, TypeName] = Field(default_factory=dict)

    @field_validator("meta", "correlation", "payload", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: v.upper() if isinstance(v, str) else v for k, v in value.items()}
        return value


class StreamsFile(ConfigModel):
    streams: dict[str, StreamSpec]


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
    def from_spec(cls, name: str, spec: StreamSpec, where: str) -> StreamDefinition:
        seen: set[str] = set()
        groups: dict[str, tuple[Attribute, ...]] = {}
        for group in GROUPS:
            attrs = []
            for attr_name, type_name in getattr(spec, group).items():
                if attr_name in seen:
                    raise ConfigError(f"{where}: stream {name!r} defines attribute {attr_name!r} twice.")
                seen.add(attr_name)
                attrs.append(Attribute(attr_name, AttrType(type_name)))
            groups[group] = tuple(attrs)
        return cls(name=name, version=spec.version, description=spec.description, **groups)

    @classmethod
    def from_mapping(cls, name: str, data: Any, where: str) -> StreamDefinition:
        return cls.from_spec(name, validate(StreamSpec, data, f"{where}: stream {name!r}"), where)

    def to_mapping(self) -> dict[str, Any]:
        """The definition as streams.yaml writes it (what consumers need to decode the stream)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            **{g: {a.name: a.type.value for a in self.group(g)} for g in GROUPS},
        }


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


@lru_cache(maxsize=1)
def load_streams() -> dict[str, StreamDefinition]:
    """Every stream of include/config/streams.yaml (or the deployment's own), by name."""
    where = f"{STREAMS_CONFIG}.yaml"
    doc = load_config(StreamsFile, STREAMS_CONFIG)
    return {name: StreamDefinition.from_spec(name, spec, where) for name, spec in doc.streams.items()}


def stream(name: str) -> StreamDefinition:
    streams = load_streams()
    if name not in streams:
        raise ConfigError(f"streams.yaml: no stream {name!r}; defined: {', '.join(sorted(streams))}.")
    return streams[name]
