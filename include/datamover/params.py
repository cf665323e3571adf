"""Trigger-form params with one set of conventions for every DAG of the package.

- A param that may stay empty has "null" among its types: the form marks nothing as required that is
  not (Airflow's form stars every param whose type excludes "null").
- A switch (`switch`) is a boolean whose only values are on/off; a form value that must be able to say
  "as configured" is a three-state dropdown (`tri_state`), never a nullable boolean drawn like "off".
- Values reach tasks as native objects (every DAG sets render_template_as_native_obj=True) and are
  validated by the same pydantic model as the YAML they override.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Param as _Param

from datamover.config import TRI_STATE


def Param(default: Any, **schema: Any) -> _Param:
    """Airflow's Param without the keys left at None (JSON schema refuses a null title)."""
    return _Param(default, **{k: v for k, v in schema.items() if v is not None})


def optional_text(description: str, title: str | None = None, **schema: Any) -> Param:
    """Free text; empty = the config's (or the DAG's) default."""
    return Param(None, type=["null", "string"], title=title, description=description, **schema)


def optional_number(description: str, minimum: int, maximum: int, title: str | None = None) -> Param:
    """A whole number; empty = the config's value."""
    return Param(
        None, type=["null", "integer"], minimum=minimum, maximum=maximum, title=title, description=description
    )


def optional_names(description: str, title: str | None = None, examples: Sequence[str] = ()) -> Param:
    """A list of names; empty = all."""
    extra: dict[str, Any] = {"examples": list(examples)} if examples else {}
    return Param(
        None, type=["null", "array"], items={"type": "string"}, title=title, description=description, **extra
    )


def switch(description: str, default: bool = False, title: str | None = None) -> Param:
    """On/off. No "null" state of its own: a missing value means `default`."""
    return Param(default, type=["boolean", "null"], title=title, description=description)


def tri_state(description: str, title: str | None = None) -> Param:
    """Keep the config's value, or override it with yes/no (see datamover.config.tri_state)."""
    return Param(
        "config",
        type=["null", "string"],
        enum=list(TRI_STATE),
        values_display={"config": "as configured", "yes": "yes", "no": "no"},
        title=title,
        description=description,
    )


def choice(default: str, options: Sequence[str], description: str, title: str | None = None) -> Param:
    return Param(default, type=["null", "string"], enum=list(options), title=title, description=description)


def number(default: int, description: str, minimum: int, maximum: int, title: str | None = None) -> Param:
    return Param(
        default,
        type=["integer", "null"],
        minimum=minimum,
        maximum=maximum,
        title=title,
        description=description,
    )
