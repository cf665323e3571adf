"""Load an Astro-CLI-format airflow_settings.yaml (connections, variables, pools) into plain Airflow.

    python -m datamover.settings_loader airflow_settings.yaml

Upserts by id, so running it twice changes nothing. Secrets are never printed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from datamover.config import parse_yaml
from datamover.errors import ConfigError

_CONN_FIELDS = {
    "conn_type": "conn_type",
    "conn_host": "host",
    "conn_schema": "schema",
    "conn_login": "login",
    "conn_password": "password",
    "conn_port": "port",
}


def read_settings(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path} cannot be read: {exc.strerror}. Fix: pass the settings file's path."
        ) from None
    data = parse_yaml(text, str(path)) or {}
    section = data.get("airflow") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a top-level 'airflow:' mapping (Astro CLI settings format).")
    out: dict[str, list[dict[str, Any]]] = {}
    for key, id_field in (("connections", "conn_id"), ("variables", "variable_name"), ("pools", "pool_name")):
        items = section.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"{path}: airflow.{key} must be a list.")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not item.get(id_field):
                raise ConfigError(f"{path}: airflow.{key}[{i}] needs a {id_field!r}.")
        out[key] = items
    return out


def connection_json(item: dict[str, Any]) -> str:
    """One settings connection in the JSON form Airflow reads from AIRFLOW_CONN_<ID> variables."""
    fields = {attr: item[key] for key, attr in _CONN_FIELDS.items() if item.get(key) is not None}
    if item.get("conn_extra"):
        fields["extra"] = item["conn_extra"]
    return json.dumps(fields)


def connections_env(path: str | Path) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> values for every connection in the settings file. Code that runs outside a
    task (tests, CLI reports) needs them: there the task SDK reads env/secrets backends, not the DB."""
    return {
        f"AIRFLOW_CONN_{c['conn_id'].upper()}": connection_json(c) for c in read_settings(path)["connections"]
    }


def apply_settings(settings: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Write the settings into the Airflow metadata DB; return a line per item."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    done: list[str] = []
    with create_session() as session:
        for item in settings["connections"]:
            fields = {attr: item.get(key) for key, attr in _CONN_FIELDS.items() if item.get(key) is not None}
            extra = item.get("conn_extra")
            conn = Connection(conn_id=item["conn_id"], extra=json.dumps(extra) if extra else None, **fields)
            existing = session.query(Connection).filter(Connection.conn_id == conn.conn_id).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(conn)
            done.append(f"connection {conn.conn_id} ({conn.conn_type})")
    for item in settings["variables"]:
        value = item.get("variable_value")
        Variable.set(item["variable_name"], value if isinstance(value, str) else json.dumps(value))
        done.append(f"variable {item['variable_name']}")
    for item in settings["pools"]:
        Pool.create_or_update_pool(
            item["pool_name"],
            slots=int(item.get("pool_slot", 1)),
            description=item.get("pool_description", ""),
            include_deferred=False,
        )
        done.append(f"pool {item['pool_name']} ({item.get('pool_slot', 1)} slots)")
    return done


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "airflow_settings.yaml"
    for line in apply_settings(read_settings(path)):
        print(f"loaded {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
