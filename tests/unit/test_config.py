from __future__ import annotations

from pathlib import Path

import pytest

from datamover.config import FieldSpec, load_yaml, read_fields
from datamover.errors import ConfigError
from datamover.s3client import S3Path
from datamover.settings_loader import read_settings

FIELDS = [
    FieldSpec("name", str),
    FieldSpec("level", int, default=6, check=lambda v: None if 1 <= v <= 9 else "must be 1..9"),
    FieldSpec("enabled", bool, default=True),
]


def test_read_fields_applies_defaults() -> None:
    assert read_fields({"name": "x"}, FIELDS, "f.yaml") == {"name": "x", "level": 6, "enabled": True}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "required key 'name' is missing"),
        ({"name": "x", "colour": 1}, "unknown key(s) 'colour'"),
        ({"name": 3}, "key 'name' must be a string, got int 3"),
        ({"name": "x", "level": True}, "key 'level' must be a whole number"),
        ({"name": "x", "enabled": 1}, "key 'enabled' must be true/false"),
        ({"name": "x", "level": 12}, "key 'level' = 12 must be 1..9"),
        (["x"], "expected a mapping"),
    ],
)
def test_read_fields_errors_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        read_fields(data, FIELDS, "f.yaml: section")
    assert message in str(info.value)
    assert str(info.value).startswith("f.yaml: section")


def test_load_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("bucket", "bucket", ""),
        ("s3://b/x/y/", "b", "x/y"),
        ("b/folder_in_top_level/target", "b", "folder_in_top_level/target"),
    ],
)
def test_s3_path_parse(text: str, bucket: str, prefix: str) -> None:
    path = S3Path.parse(text)
    assert (path.bucket, path.prefix) == (bucket, prefix)


def test_s3_path_key_joins_without_double_slashes() -> None:
    assert S3Path("b", "p/q").key("2026-01-02", "t.csv.gz") == "p/q/2026-01-02/t.csv.gz"
    assert S3Path("b").key("t.csv.gz") == "t.csv.gz"
    with pytest.raises(ConfigError, match="no bucket"):
        S3Path.parse("s3:///x")


def test_project_settings_file_is_valid(tmp_path: Path) -> None:
    settings = read_settings(Path(__file__).resolve().parents[2] / "airflow_settings.yaml")
    ids = {c["conn_id"] for c in settings["connections"]}
    assert {
        "egress_postgres",
        "aws_default",
        "egress_input",
        "egress_output",
        "kafka_default",
        "pushgateway_default",
    } <= ids
    bad = tmp_path / "s.yaml"
    bad.write_text("airflow:\n  connections:\n    - conn_type: aws\n")
    with pytest.raises(ConfigError, match=r"connections\[0\] needs a 'conn_id'"):
        read_settings(bad)
