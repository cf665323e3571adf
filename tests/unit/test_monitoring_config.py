"""include/config/transfer_monitoring.yaml and its model."""

from __future__ import annotations

import pytest

from datamover.errors import ConfigError
from datamover.monitoring.config import load
from datamover.monitoring.metrics import DEFAULT_BUCKETS


def test_shipped_config_has_the_original_settings() -> None:
    cfg = load()
    assert cfg.timing.s3_wait_time_s == 30 and cfg.timing.max_file_late_time_s == 10
    assert cfg.timing.tai_minus_utc_s == 37
    assert tuple(cfg.metrics.transfer_time_buckets) == DEFAULT_BUCKETS
    assert cfg.object_store.instruments == {"MC": "LSSTCam"}
    assert cfg.postgres.schema_name == "dtm"


def test_overrides_use_the_yaml_keys() -> None:
    cfg = load({"postgres.schema": "dtm_test", "timing.s3_wait_time_s": 5, "timing.max_file_late_time_s": 2})
    assert cfg.postgres.schema_name == "dtm_test" and cfg.timing.s3_wait_time_s == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timing.max_file_late_time_s": 60}, "max_file_late_time_s (60) is longer than s3_wait_time_s (30)"),
        ({"postgres.schema": "Robert'); DROP"}, "postgres.schema: a lower-case SQL identifier"),
        ({"metrics.transfer_time_buckets": [5, 3]}, "strictly increasing positive numbers"),
        ({"timing.s3_wait_time_s": "30"}, "timing.s3_wait_time_s"),
        ({"file_notifications.topic": "a topic"}, "a Kafka topic name"),
        ({"timing.typo": 1}, "timing.typo: unknown key"),
    ],
)
def test_bad_values_name_the_key(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert message in str(info.value)
    assert "include/config/transfer_monitoring.yaml" in str(info.value)
