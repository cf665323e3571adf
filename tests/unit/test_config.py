"""The config loader (package resources, deployment folder, overrides) and the S3 path helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from datamover.config import ConfigModel, load_config, tri_state, validate, with_overrides
from datamover.egress.config import EgressDumpConfig, config_for_run
from datamover.errors import ConfigError, PermanentError
from datamover.s3 import S3Path
from datamover.settings_loader import read_settings

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "config"


class Section(ConfigModel):
    level: int = Field(6, ge=1, le=9)
    enabled: bool = True


class Doc(ConfigModel):
    name: str
    section: Section = Field(default_factory=Section)


def test_validate_applies_defaults_and_refuses_coercion() -> None:
    assert validate(Doc, {"name": "x"}, "f.yaml").section == Section()
    for bad, message in (
        ({"name": "x", "section": {"enabled": "False"}}, "section.enabled: Input should be a valid boolean"),
        ({"name": "x", "section": {"level": True}}, "section.level: Input should be a valid integer"),
        ({"name": "x", "section": {"level": 10}}, "section.level: Input should be less than or equal to 9"),
        ({"name": "x", "sectoin": {}}, "sectoin: unknown key"),
        ({}, "name: Field required"),
    ):
        with pytest.raises(ConfigError) as err:
            validate(Doc, bad, "f.yaml")
        assert str(err.value).startswith("f.yaml: ") and message in str(err.value), err.value


def test_config_errors_are_permanent() -> None:
    assert issubclass(ConfigError, PermanentError)  # the operators fail them at once, without retries


def test_overrides_keep_the_file_value_when_empty() -> None:
    data = {"a": {"b": 1, "c": 2}, "d": 3}
    assert with_overrides(data, {"a.b": 10, "d": None, "a.c": ""}) == {"a": {"b": 10, "c": 2}, "d": 3}
    assert data == {"a": {"b": 1, "c": 2}, "d": 3}  # the parsed file is not changed


def test_shipped_configs_load_as_package_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMOVER_CONFIG_DIR", raising=False)
    cfg = load_config(EgressDumpConfig, "egress_dump")
    assert cfg.destination.bucket == "egress-dumps" and cfg.table_names


def test_deployment_folder_replaces_the_shipped_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (SHIPPED / "egress_dump.yaml").read_text().replace("bucket: egress-dumps", "bucket: own-bucket")
    (tmp_path / "egress_dump.yaml").write_text(text)
    monkeypatch.setenv("DATAMOVER_CONFIG_DIR", str(tmp_path))
    assert load_config(EgressDumpConfig, "egress_dump").destination.bucket == "own-bucket"
    with pytest.raises(ConfigError, match=r"ark_offload.yaml does not exist.*DATAMOVER_CONFIG_DIR"):
        from datamover.ark.config import config_for_run as ark_config

        ark_config({})
    (tmp_path / "egress_dump.yaml").write_text("tables: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(EgressDumpConfig, "egress_dump")


def test_form_values_are_validated_by_the_file_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAMOVER_CONFIG_DIR", raising=False)
    cfg = config_for_run({"bucket": "other-bucket", "compression_level": 2, "allow_snapshot_backfill": "yes"})
    assert (cfg.destination.bucket, cfg.dump.compression_level, cfg.dump.allow_snapshot_backfill) == (
        "other-bucket",
        2,
        True,
    )
    with pytest.raises(ConfigError, match=r"dump.compression_level: Input should be less than or equal to 3"):
        config_for_run({"compression_level": 7})
    with pytest.raises(ConfigError, match=r"destination.bucket: is not a valid S3 bucket name"):
        config_for_run({"bucket": "Bad_Bucket"})
    with pytest.raises(ConfigError, match=r"'nope' not in include/config/egress_dump.yaml; choose from"):
        config_for_run({"tables": ["nope"]})
    assert config_for_run({"tables": ["subscription_capacity"]}).table_names == ["subscription_capacity"]


def test_tri_state_has_one_meaning() -> None:
    assert [tri_state(v, "x") for v in (None, "", "config", "yes", "no", True, False)] == [
        None,
        None,
        None,
        True,
        False,
        True,
        False,
    ]
    with pytest.raises(ConfigError, match="use 'config', 'yes' or 'no'"):
        tri_state("False", "x")


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
