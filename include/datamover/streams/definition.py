"""Typed event streams, in the spirit of the WSO2 DataBridge used by Apache Stratos.

A `StreamDefinition` names a stream (`name` + `version`, the stream id is `name:version`) and lists
its attributes in three ordered groups: meta, correlation and payload, each attribute with a type
(STRING, LONG, DOUBLE, BOOL, INT, FLOAT). An `Event` is validated against its definition and encoded
as one JSON object per message:

    {"stream": "ark_offload_status:1.0.0", "timestamp": <epoch ms>,
     "meta": {...}, "correlation": {...}, "payload": {...}}

The definitions live in include/config/streams.yaml so the status, health and log streams share one
format and one validator. A definition may carry a `name_template` instead of a fixed name (the log
streams of Stratos are named `logs.<tenantId>.<alias>.<yyyy.MM.dd>`):

    logs:
      name_template: "logs.{tenantId}.{alias}.{date:yyyy.MM.dd}"

`stream("logs")` is then the family and `stream("logs").resolve(tenantId="t1", alias="app", date=...)`
(or `stream("logs.t1.app.2026.11.24")`) the concrete stream `logs.t1.app.2026.11.24:<version>` whose
events a consumer decodes. Placeholders are `{param}` (letters, digits, `_` and `-` only, so a name
parses back unambiguously) and `{date:<pattern>}` with the Java-style tokens yyyy, MM, dd, HH (UTC).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Any, Literal

import msgspec
from pydantic import Field, field_validator

from datamover.config import ConfigModel, load_config, validate
from datamover.errors import ConfigError

STREAMS_CONFIG = "streams"  # include/config/streams.yaml
DEFAULT_DEFINITIONS_TOPIC = "datamover.stream.definitions"

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


def _check_expr(attr_type: AttrType, var: str, env: dict[str, Any]) -> str:
    """A Python expression that is true when `var` surely fits `attr_type` (false: `AttrType.check`
    finds the reason); `env` gets the names it uses."""
    env.update(str=str, bool=bool, int=int, float=float)
    if attr_type is AttrType.STRING:
        return f"type({var}) is str"
    if attr_type is AttrType.BOOL:
        return f"type({var}) is bool"
    if attr_type in (AttrType.LONG, AttrType.INT):
        low, high = _INT32 if attr_type is AttrType.INT else _INT64
        return f"type({var}) is int and {low} <= {var} <= {high}"
    return f"(type({var}) is float and isfinite({var})) or type({var}) is int"


_JSON = msgspec.json.Encoder()
_MISSING = object()

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")
_PARAM_VALUE = re.compile(r"[A-Za-z0-9_-]+")
_DATE_TOKENS = {
    "yyyy": ("%Y", r"\d{4}"),
    "MM": ("%m", r"\d{2}"),
    "dd": ("%d", r"\d{2}"),
    "HH": ("%H", r"\d{2}"),
}
_DATE_TOKEN = re.compile("|".join(_DATE_TOKENS))


@dataclass(frozen=True)
class NameTemplate:
    """A stream name with placeholders: `{param}` and `{date:yyyy.MM.dd}` (see the module doc)."""

    text: str

    def parts(self) -> list[tuple[str, str, str]]:
        """[(literal text before, placeholder name, date pattern)] plus a trailing ("rest", "", "")."""
        out, pos = [], 0
        for m in _PLACEHOLDER.finditer(self.text):
            out.append((self.text[pos : m.start()], m.group(1), m.group(2) or ""))
            pos = m.end()
        out.append((self.text[pos:], "", ""))
        return out

    def check(self) -> str | None:
        """Why the template is unusable, or None."""
        parts = self.parts()
        names = [name for _, name, _ in parts if name]
        if not names:
            return "has no {placeholder}"
        if len(set(names)) != len(names):
            return "repeats a placeholder"
        for literal, name, pattern in parts:
            if "{" in literal or "}" in literal:
                return f"has an unbalanced brace near {literal!r}"
            if pattern and (name != "date" or _DATE_TOKEN.sub("", pattern).strip(".-_/ ")):
                return f"placeholder {{{name}:{pattern}}}: only {{date:...}} takes a pattern of yyyy MM dd HH"
            if name == "date" and not pattern:
                return "{date} needs a pattern, e.g. {date:yyyy.MM.dd}"
        return None

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(name for _, name, _ in self.parts() if name)

    def render(self, params: Mapping[str, Any]) -> str:
        missing = [p for p in self.params if p not in params]
        extra = sorted(set(params) - set(self.params))
        if missing or extra:
            raise ValueError(
                f"stream name template {self.text!r} takes {', '.join(self.params)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        out = []
        for literal, name, pattern in self.parts():
            out.append(literal)
            if not name:
                continue
            value = params[name]
            if pattern:
                out.append(_format_date(value, pattern))
            elif not isinstance(value, str) or not _PARAM_VALUE.fullmatch(value):
                raise ValueError(
                    f"stream name parameter {name}={value!r} must be letters, digits, '_' or '-' "
                    "(a dot would make the name ambiguous)"
                )
            else:
                out.append(value)
        return "".join(out)

    def match(self, name: str) -> dict[str, str] | None:
        """The parameters `name` was rendered from, or None if it is not of this template."""
        regex = []
        for literal, param, pattern in self.parts():
            regex.append(re.escape(literal))
            if param and pattern:
                regex.append(
                    f"(?P<{param}>"
                    + _DATE_TOKEN.sub(lambda t: _DATE_TOKENS[t.group(0)][1], re.escape(pattern))
                    + ")"
                )
            elif param:
                regex.append(f"(?P<{param}>{_PARAM_VALUE.pattern})")
        m = re.fullmatch("".join(regex), name)
        return m.groupdict() if m else None


def _format_date(value: Any, pattern: str) -> str:
    if isinstance(value, bool):
        raise ValueError(f"stream name date {value!r} is not a date")
    if isinstance(value, (int, float)):  # epoch milliseconds, as event timestamps are
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
    elif not isinstance(value, date):
        raise ValueError(f"stream name date {value!r} must be a date, a datetime or epoch milliseconds")
    return value.strftime(_DATE_TOKEN.sub(lambda t: _DATE_TOKENS[t.group(0)][0], pattern.replace("%", "%%")))


class StreamSpec(ConfigModel):
    """One stream in streams.yaml: attributes in publishing order, per group, name -> type."""

    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    description: str = ""
    name_template: str = ""
    meta: dict[str, TypeName] = Field(default_factory=dict)
    correlation: dict[str, TypeName] = Field(default_factory=dict)
    payload: dict[str, TypeName] = Field(default_factory=dict)

    @field_validator("meta", "correlation", "payload", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: v.upper() if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if value and (problem := NameTemplate(value).check()):
            raise ValueError(f"name_template {value!r} {problem}")
        return value


class StreamsFile(ConfigModel):
    # the compacted topic the definitions are published on, keyed by stream id (see streams/registry.py)
    definitions_topic: str = Field(default=DEFAULT_DEFINITIONS_TOPIC, pattern=r"^[A-Za-z0-9._-]+$")
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
    # set on a family of streams (see the module doc); a resolved definition keeps it and the family's
    # name as provenance
    name_template: str = ""
    family: str = ""

    @property
    def stream_id(self) -> str:
        return f"{self.name}:{self.version}"

    @cached_property
    def is_template(self) -> bool:
        """A family (its name is the family's key), not a stream events can be sent on."""
        return bool(self.name_template) and NameTemplate(self.name_template).match(self.name) is None

    def resolve(self, **params: Any) -> StreamDefinition:
        """The concrete stream of this family for `params` (the template's placeholders)."""
        if not self.name_template:
            raise ValueError(f"stream {self.name!r} has no name_template to resolve")
        return self._concrete(NameTemplate(self.name_template).render(params))

    def named(self, name: str) -> StreamDefinition | None:
        """The concrete stream `name` of this family, or None if `name` is not of its template."""
        if not self.name_template or NameTemplate(self.name_template).match(name) is None:
            return None
        return self._concrete(name)

    def _concrete(self, name: str) -> StreamDefinition:
        return replace(self, name=name, family=self.family or self.name)

    def family_definition(self) -> StreamDefinition | None:
        """The family a concrete stream was resolved from (None for a plain stream)."""
        if not self.name_template or self.is_template:
            return None
        return replace(self, name=self.family, family="")

    def group(self, name: str) -> tuple[Attribute, ...]:
        return getattr(self, name)

    @cached_property
    def encoder(self) -> Callable[[Any, Any, Any, int], bytes | None]:
        """`encode(meta, correlation, payload, ts)`: the JSON of an event whose values all fit, or None
        (then `Event.validate` says why). Generated once per definition: one straight run of type checks
        per attribute, in definition order, and one msgspec encode; no loop, no per-attribute call."""
        lines = ["def encode(meta, correlation, payload, ts):"]
        env: dict[str, Any] = {"_JSON": _JSON, "_MISSING": _MISSING, "isfinite": math.isfinite}
        parts = []
        for g, group in enumerate(GROUPS):
            attrs = self.group(group)
            lines.append(f"    if len({group}) != {len(attrs)}: return None")
            items = []
            for i, attr in enumerate(attrs):
                var = f"v{g}_{i}"
                lines.append(f"    {var} = {group}.get({attr.name!r}, _MISSING)")
                lines.append(f"    if not ({_check_expr(attr.type, var, env)}): return None")
                items.append(f"{attr.name!r}: {var}")
            parts.append(f"{group!r}: {{{', '.join(items)}}}")
        head = f"'stream': {self.stream_id!r}, 'timestamp': ts"
        lines.append(f"    return _JSON.encode({{{head}, {', '.join(parts)}}})")
        exec("\n".join(lines), env)  # attribute names and the stream id enter as repr()-quoted literals
        return env["encode"]  # type: ignore[no-any-return]

    def column_encoder(
        self, fixed: Mapping[str, Mapping[str, Any]], varying: Sequence[tuple[str, str]]
    ) -> ColumnEncoder:
        """A `ColumnEncoder` for events whose attributes are partly the same in every event (`fixed`,
        group -> name -> value: validated here, once) and partly given per event (`varying`, (group, name)
        in column order). Every attribute must be in exactly one of the two. Raises ValueError."""
        return ColumnEncoder(self, fixed, varying)

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
        return cls(
            name=name,
            version=spec.version,
            description=spec.description,
            name_template=spec.name_template,
            **groups,
        )

    @classmethod
    def from_mapping(cls, name: str, data: Any, where: str) -> StreamDefinition:
        return cls.from_spec(name, validate(StreamSpec, data, f"{where}: stream {name!r}"), where)

    def to_mapping(self) -> dict[str, Any]:
        """The definition as streams.yaml writes it (what consumers need to decode the stream)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            **({"name_template": self.name_template} if self.name_template else {}),
            **({"family": self.family} if self.family else {}),
            **{g: {a.name: a.type.value for a in self.group(g)} for g in GROUPS},
        }

    @classmethod
    def from_published(cls, data: Mapping[str, Any], where: str) -> StreamDefinition:
        """A definition as `to_mapping()` wrote it (e.g. read back from the definitions topic)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ConfigError(f"{where}: a stream definition needs a 'name'.")
        spec = {k: v for k, v in data.items() if k not in ("name", "stream_id", "family")}
        family = data.get("family")
        definition = cls.from_mapping(data["name"], spec, where)
        return replace(definition, family=family) if isinstance(family, str) else definition


class ColumnEncoder:
    """Encodes many events of one stream at once, column by column: the same JSON, byte for byte, as
    `Event.encode()` gives each of them, and every event validated against the definition.

    The values every event shares (e.g. the publisher's identity) are checked and encoded once; each
    varying attribute is checked for the whole column (its type: every value's Python type, the range
    of a whole number, the finiteness of a number), each column JSON-encoded in one msgspec call, and
    the events joined from the constant parts and the encoded values. A column that does not fit makes
    `encode` return None: the caller then encodes event by event (`Event.encode()` names the problem)."""

    def __init__(
        self,
        definition: StreamDefinition,
        fixed: Mapping[str, Mapping[str, Any]],
        varying: Sequence[tuple[str, str]],
    ) -> None:
        if definition.is_template:
            raise ValueError(f"stream {definition.stream_id} is a family: resolve it first")
        self.definition = definition
        position = {gn: i for i, gn in enumerate(varying)}
        if len(position) != len(varying):
            raise ValueError(f"stream {definition.stream_id}: a varying attribute is named twice")
        self.types: list[AttrType] = [AttrType.STRING] * len(varying)
        known = {(g, a.name) for g in GROUPS for a in definition.group(g)}
        unknown = sorted(f"{g}.{n}" for g, n in position if (g, n) not in known) + sorted(
            f"{g}.{n}" for g, values in fixed.items() for n in values if (g, n) not in known
        )
        if unknown:
            raise ValueError(f"stream {definition.stream_id}: undefined attribute(s) {', '.join(unknown)}")
        # the event as a sequence of constant byte strings and slots: -1 the timestamp, i >= 0 column i
        parts: list[bytes | int] = [b'{"stream":' + _JSON.encode(definition.stream_id) + b',"timestamp":', -1]
        for group in GROUPS:
            parts.append(b',"' + group.encode() + b'":{')
            for i, attr in enumerate(definition.group(group)):
                prefix = (b"," if i else b"") + _JSON.encode(attr.name) + b":"
                if (group, attr.name) in position:
                    if attr.name in fixed.get(group, {}):
                        raise ValueError(
                            f"stream {definition.stream_id}: {group}.{attr.name} is fixed and varying"
                        )
                    column = position[(group, attr.name)]
                    self.types[column] = attr.type
                    parts.extend((prefix, column))
                    continue
                values = fixed.get(group, {})
                if attr.name not in values:
                    raise ValueError(
                        f"stream {definition.stream_id}: {group} attribute {attr.name!r} "
                        f"({attr.type.value}) is missing"
                    )
                if problem := attr.type.check(values[attr.name]):
                    raise ValueError(
                        f"stream {definition.stream_id}: {group} attribute {attr.name!r} {problem} "
                        f"({attr.type.value}), got {values[attr.name]!r}"
                    )
                parts.append(prefix + _JSON.encode(values[attr.name]))
            parts.append(b"}")
        parts.append(b"}")
        # adjacent constants merged: what is left alternates constant, slot, constant, ...
        merged: list[bytes | int] = []
        for part in parts:
            if isinstance(part, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] += part
            else:
                merged.append(part)
        self._parts = merged

    @property
    def layout(self) -> tuple[bytes | int, ...]:
        """The event as constant byte strings and value slots, in order: -1 is the timestamp, i >= 0 the
        varying attribute i (its JSON goes there). Constants alternate with slots."""
        return tuple(self._parts)

    def encode(self, columns: Sequence[Sequence[Any]], timestamps: Sequence[int]) -> list[bytes] | None:
        """The events of the rows of `columns` (one sequence per varying attribute, all as long as
        `timestamps`), or None if a value does not fit its attribute (nothing is encoded then)."""
        n = len(timestamps)
        if n == 0:
            return []
        if len(columns) != len(self.types) or any(len(c) != n for c in columns):
            raise ValueError("columns of unequal length")
        if not _fits(AttrType.LONG, timestamps):
            return None
        for column, attr_type in zip(columns, self.types, strict=True):
            if not _fits(attr_type, column):
                return None
        # each distinct column encoded once; a column of one value (no stack traces, one logger) is a
        # constant, merged with its neighbours: fewer pieces for every event's join
        values: dict[int, list[bytes] | bytes] = {}
        seen: dict[int, list[bytes] | bytes] = {}
        for slot, column in ((-1, timestamps), *enumerate(columns)):
            if id(column) not in seen:
                single = column.count(column[0]) == n
                seen[id(column)] = _JSON.encode(column[0]) if single else _encode_column(column)
            values[slot] = seen[id(column)]
        pieces: list[Iterable[bytes]] = []
        constant = b""
        for part in self._parts:
            value = part if isinstance(part, bytes) else values[part]
            if isinstance(value, bytes):
                constant += value
                continue
            if constant:
                pieces.append(repeat(constant))
                constant = b""
            pieces.append(value)
        if not pieces:  # every value the same (or one row)
            return [constant] * n
        pieces.append(repeat(constant))
        return list(map(b"".join, zip(*pieces, strict=False)))  # (the constants repeat endlessly)


def _encode_column(values: Sequence[Any]) -> list[bytes]:
    """Each value JSON-encoded, in one call (JSON escapes every newline inside a string)."""
    out = _JSON.encode_lines(values).split(b"\n")
    out.pop()  # after the last line's newline
    return out


_NUMBER_TYPES = frozenset({int, float})


def _fits(attr_type: AttrType, values: Sequence[Any]) -> bool:
    """Whether every value fits `attr_type` (as AttrType.check says), checked for the whole column."""
    if not values:
        return True
    types = set(map(type, values))
    if attr_type is AttrType.STRING:
        return types == {str}
    if attr_type is AttrType.BOOL:
        return types == {bool}
    if attr_type in (AttrType.LONG, AttrType.INT):
        low, high = _INT32 if attr_type is AttrType.INT else _INT64
        return types == {int} and low <= min(values) and max(values) <= high
    try:
        return types <= _NUMBER_TYPES and all(map(math.isfinite, values))
    except OverflowError:  # a whole number too large for a double
        return False


@dataclass
class Event:
    """One event of a stream; `encode()` validates it and returns the JSON bytes."""

    definition: StreamDefinition
    meta: Mapping[str, Any] = field(default_factory=dict)
    correlation: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)
    timestamp_ms: int | None = None

    def validate(self) -> None:
        if self.definition.is_template:
            raise ValueError(
                f"stream {self.definition.stream_id} is a family ({self.definition.name_template}): "
                "send events on a concrete stream, definition.resolve(...)"
            )
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
        """The event as compact JSON, validated: the definition's generated encoder for the common case
        (every value of the right type), `validate()`'s precise error for anything else."""
        definition = self.definition
        if not definition.is_template:
            ts = self.timestamp_ms if self.timestamp_ms is not None else int(time.time() * 1000)
            data = definition.encoder(self.meta, self.correlation, self.payload, ts)
            if data is not None:
                return data
        return self._encode_checked()

    def _encode_checked(self) -> bytes:
        return _JSON.encode(self.to_dict())


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


@lru_cache(maxsize=1)
def definitions_topic() -> str:
    return load_config(StreamsFile, STREAMS_CONFIG).definitions_topic


def stream(name: str) -> StreamDefinition:
    """The stream `name` of streams.yaml; a family's concrete stream (`logs.t1.app.2026.11.24`) too."""
    streams = load_streams()
    if name in streams:
        return streams[name]
    for family in streams.values():
        if (concrete := family.named(name)) is not None:
            return concrete
    raise ConfigError(f"streams.yaml: no stream {name!r}; defined: {', '.join(sorted(streams))}.")
