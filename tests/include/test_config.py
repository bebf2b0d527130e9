"""Settings: defaults, YAML, environment, overrides, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from logstream.config import Settings
from logstream.errors import ConfigError


def test_precedence_defaults_yaml_env_overrides(tmp_path):
    config = tmp_path / "logstream.yaml"
    config.write_text("kafka_port: 19092\ntopic_partitions: 6\nspark_ui: true\n")
    settings = Settings.load(config, env={"LOGSTREAM_TOPIC_PARTITIONS": "8"}, logs_topic="app-logs")
    assert settings.kafka_port == 19092  # from YAML
    assert settings.topic_partitions == 8  # env beats YAML
    assert settings.logs_topic == "app-logs"  # explicit override beats env
    assert settings.spark_ui is True
    assert settings.kafka_bootstrap == "127.0.0.1:19092"


def test_data_and_checkpoint_roots_default_under_state_dir(tmp_path):
    settings = Settings.load(env={"LOGSTREAM_STATE_DIR": str(tmp_path)})
    assert settings.state_dir == Path(tmp_path)
    assert settings.data_root == str(tmp_path / "data")
    assert settings.checkpoint_root == str(tmp_path / "checkpoints")


def test_uri_data_root_is_kept_verbatim():
    settings = Settings.load(env={"LOGSTREAM_DATA_ROOT": "s3a://bucket/logstream"})
    assert settings.data_root == "s3a://bucket/logstream"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOGSTREAM_KAFKA_PORT": "ninety"}, "kafka_port='ninety' is not a valid int"),
        ({"LOGSTREAM_KAFKA_PORT": "70000"}, "kafka_port=70000 is not a TCP port"),
        ({"LOGSTREAM_SPARK_UI": "maybe"}, "spark_ui='maybe' is not a valid bool"),
        ({"LOGSTREAM_TOPIC_PARTITIONS": "0"}, "topic_partitions=0 must be >= 1"),
        # windows and thresholds are checked when the settings load, named
        (
            {"LOGSTREAM_WINDOWS": '{"error_rate": {"window": "0 minutes"}}'},
            "windows.error_rate.window='0 minutes' must be longer than zero",
        ),
        (
            {"LOGSTREAM_WINDOWS": '{"error_rate": {"window": "-5 minutes"}}'},
            "windows.error_rate.window: cannot read the interval '-5 minutes'",
        ),
        (
            {"LOGSTREAM_WINDOWS": '{"eror_rate": {"window": "1 minute"}}'},
            "windows: unknown metric famil(ies) eror_rate",
        ),
        (
            {"LOGSTREAM_WINDOWS": '{"error_rate": {"windw": "1 minute"}}'},
            "windows.error_rate: windw cannot be set",
        ),
        (
            {"LOGSTREAM_THRESHOLDS": '{"zscore": "abc"}'},
            "thresholds.zscore='abc' is not a number",
        ),
        (
            {"LOGSTREAM_THRESHOLDS": '{"error_rate_rise_points": -1}'},
            "thresholds.error_rate_rise_points=-1 must be a finite number >= 0",
        ),
        (
            {"LOGSTREAM_THRESHOLDS": '{"zscore_lookbak": 3}'},
            "thresholds: unknown threshold(s) zscore_lookbak",
        ),
        (
            {"LOGSTREAM_THRESHOLDS": '{"ddos_min_requests": 2.5}'},
            "thresholds.ddos_min_requests=2.5 is not an integer",
        ),
        ({"LOGSTREAM_PARSE_FORMAT": "xml"}, "parse_format: unknown log format 'xml'"),
        (
            {"LOGSTREAM_ACCESS_FORMATS": '{"edge": "$remote_addr$status"}'},
            "access_formats.edge: access-log format 'edge' has two variables",
        ),
        ({"LOGSTREAM_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "trusted_proxies: 'nope' is not"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.load(env=env)


def test_good_windows_thresholds_and_formats_load():
    settings = Settings.load(
        env={
            "LOGSTREAM_WINDOWS": '{"error_rate": {"window": "2 minutes", "delay": "0 seconds"}}',
            "LOGSTREAM_THRESHOLDS": '{"zscore": "2.5", "ddos_min_requests": 50}',
            "LOGSTREAM_PARSE_FORMAT": "nginx_main,json",
            "LOGSTREAM_FORMAT_BY_TOPIC": '{"edge": "mine"}',
            "LOGSTREAM_ACCESS_FORMATS": '{"mine": "$remote_addr [$time_local] $status"}',
        }
    )
    assert settings.format_by_topic == {"edge": "mine"}


def test_unknown_yaml_keys_are_rejected(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("kafka_prot: 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*kafka_prot"):
        Settings.load(config, env={})
