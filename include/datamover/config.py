"""Typed, validated configs: one pydantic model per YAML file, for the file and the trigger form alike.

The YAML files the package ships are in include/config/ (installed as the package resource
`datamover/shipped_config`, read with importlib.resources, so a wheel carries them). A deployment
uses its own folder of YAML files instead by setting the environment variable DATAMOVER_CONFIG_DIR
or the Airflow Variable `datamover_config_dir`; both are read when a task runs, never at DAG import.

    cfg = load_config(EgressDumpConfig, "egress_dump", overrides={"destination.bucket": "other"})

Overrides are the trigger-form values of one run, keyed by dotted path into the YAML; None keeps the
file's value. The merged document is validated by the same model, so a bad form value gets the same
clear error as a bad file. Every failure is a ConfigError (permanent: no retry) naming the file, the
key and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from datamover.errors import ConfigError

SHIPPED_RESOURCE = "shipped_config"  # include/datamover/shipped_config -> ../config
CONFIG_DIR_ENV = "DATAMOVER_CONFIG_DIR"
CONFIG_DIR_VARIABLE = "datamover_config_dir"

M = TypeVar("M", bound=BaseModel)


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _bucket(value: str) -> str:
    if not _BUCKET.match(value) or ".." in value:
        raise ValueError(
            "is not a valid S3 bucket name (3-63 characters: lowercase letters, digits, '.', '-')"
        )
    return value


def _prefix(value: str) -> str:
    if value.startswith("/") or "//" in value or value.endswith("/"):
        raise ValueError("must be a key prefix without leading, trailing or double slashes (e.g. 'daily')")
    return value


BucketName = Annotated[str, AfterValidator(_bucket)]
KeyPrefix = Annotated[str, AfterValidator(_prefix)]


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys refused, no type coercion ("false" is not a bool,
    true is not a number), immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _deployment_dir() -> str | None:
    """The deployment's own config folder, if one is set (environment first, then the Variable)."""
    if value := os.environ.get(CONFIG_DIR_ENV):
        return value
    try:
        from airflow.sdk import Variable

        return Variable.get(CONFIG_DIR_VARIABLE, default=None) or None
    except Exception:  # outside a task (tests, CLI) there is no Variable store to ask
        return None


def config_source(name: str) -> tuple[str, str]:
    """(YAML text, where it came from) of config `name` (file name without .yaml)."""
    filename = f"{name}.yaml"
    if folder := _deployment_dir():
        path = Path(folder).expanduser() / filename
        where = str(path)
        try:
            return path.read_text(encoding="utf-8"), where
        except FileNotFoundError:
            raise ConfigError(
                f"Config {where} does not exist: the deployment's config folder ({CONFIG_DIR_ENV} / "
                f"Variable {CONFIG_DIR_VARIABLE} = {folder!r}) must hold {filename}. Fix: copy the "
                "shipped one from include/config/ there, or unset the folder."
            ) from None
        except OSError as exc:
            raise ConfigError(f"Config {where} cannot be read: {exc.strerror}.") from None
    resource: Traversable = resources.files("datamover") / SHIPPED_RESOURCE / filename
    where = f"include/config/{filename}"
    try:
        return resource.read_text(encoding="utf-8"), where
    except FileNotFoundError:
        raise ConfigError(f"The package ships no config {where}: is the package installed whole?") from None


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}. Fix the file.") from None


def with_overrides(data: Any, overrides: Mapping[str, Any] | None) -> Any:
    """`data` with each dotted-path override set; None (or "") keeps the file's value."""
    if not overrides:
        return data
    if not isinstance(data, Mapping):
        return data  # the model reports the shape error
    merged: dict[str, Any] = _copy(data)
    for dotted, value in overrides.items():
        if value is None or value == "":
            continue
        node = merged
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = child = _copy(child) if isinstance(child, Mapping) else {}
            node = child
        node[leaf] = value
    return merged


def _copy(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def describe_validation_error(exc: ValidationError, where: str) -> str:
    """One line per problem: `where: key.path: what is wrong (got value)`."""
    lines = []
    for err in exc.errors(include_url=False):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo? see the shipped file for the keys it takes)"
        got = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {_short(err.get('input'))})"
        lines.append(f"{where}: {path or '(top level)'}: {message}{got}")
    return "\n".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(model: type[M], data: Any, where: str) -> M:
    """`model` from a parsed document, or a ConfigError listing every problem."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where)) from None


def load_config(model: type[M], name: str, overrides: Mapping[str, Any] | None = None) -> M:
    """Config `name` (see the module doc for where it is read from), validated with the run's overrides."""
    text, where = config_source(name)
    data = with_overrides(parse_yaml(text, where), overrides)
    return validate(model, data, where + (" with the run's params" if overrides else ""))


# The form's three-state switch: keep the file's value, or override it either way. A nullable boolean
# would be drawn like "false" in the trigger form although it means "as configured".
TRI_STATE = ("config", "yes", "no")


def tri_state(value: Any, name: str) -> bool | None:
    """A trigger-form switch: "config" (or None) keeps the file's value, "yes"/"no" override it."""
    if value in (None, "", "config"):
        return None
    if value in ("yes", "no"):
        return value == "yes"
    if isinstance(value, bool):  # a conf sent by the API or CLI may use true/false directly
        return value
    raise ConfigError(f"DAG param {name!r} = {value!r}: use 'config', 'yes' or 'no'.")
