"""Typed, validated loading of the human-edited YAML configs under include/config/.

Domain configs (egress, ark, ...) describe their fields with `FieldSpec`s; this module turns a
parsed mapping into keyword arguments with errors that name the file, the key and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from datamover.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

_MISSING = object()


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file, turning every failure into a ConfigError that names the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist: create it or point the DAG param at one."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from None


@dataclass(frozen=True)
class FieldSpec:
    """One config key: its expected type, default (absent means required) and an optional check."""

    name: str
    kind: type | tuple[type, ...]
    default: Any = _MISSING
    check: Callable[[Any], str | None] | None = None  # returns an error text, or None when fine
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def read_fields(data: Any, fields: list[FieldSpec], where: str) -> dict[str, Any]:
    """Validate `data` against `fields`: unknown keys, missing keys, wrong types and failed checks
    all raise ConfigError naming `where` (file and section) and the key."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}.")
    known = {f.name for f in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed keys are {', '.join(sorted(known))}."
        )
    out: dict[str, Any] = {}
    for spec in fields:
        if spec.name not in data or (data[spec.name] is None and not spec.required):
            if spec.required:
                hint = f" ({spec.help})" if spec.help else ""
                raise ConfigError(f"{where}: required key {spec.name!r} is missing{hint}.")
            out[spec.name] = spec.default
            continue
        value = data[spec.name]
        # bool is an int subclass: refuse True where a number is expected, and 1 where a flag is.
        bad_bool = isinstance(value, bool) and bool not in _as_tuple(spec.kind)
        if bad_bool or not isinstance(value, spec.kind):
            raise ConfigError(
                f"{where}: key {spec.name!r} must be {_kind_name(spec.kind)}, "
                f"got {type(value).__name__} {value!r}."
            )
        if spec.check is not None and (problem := spec.check(value)):
            raise ConfigError(f"{where}: key {spec.name!r} = {value!r} {problem}.")
        out[spec.name] = value
    return out


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        bool: "true/false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))
