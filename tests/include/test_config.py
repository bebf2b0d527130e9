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
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.load(env=env)


def test_unknown_yaml_keys_are_rejected(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("kafka_prot: 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting.*kafka_prot"):
        Settings.load(config, env={})
