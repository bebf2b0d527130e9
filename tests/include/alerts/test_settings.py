"""The alert settings (logstream.config): defaults and rejected values, by hand."""

from __future__ import annotations

import pytest

from logstream.config import Settings
from logstream.errors import ConfigError


def test_alert_defaults():
    settings = Settings.load(env={})
    assert settings.alert_sink == "log,alertmanager"
    assert (settings.alertmanager_port, settings.alertmanager_config) == (0, "")
    assert settings.alertmanager_resolve_s == 3600
    assert (settings.alert_group_seconds, settings.alert_kind_rate_per_hour) == (60, 20)
    assert (settings.alert_outbox_max, settings.alert_outbox_max_age_s) == (10_000, 172_800)
    assert settings.alert_outbox_retry_s == 30


def test_alert_settings_from_the_environment():
    settings = Settings.load(
        env={"LOGSTREAM_ALERTMANAGER_PORT": "19095", "LOGSTREAM_ALERT_OUTBOX_MAX": "5"}
    )
    assert (settings.alertmanager_port, settings.alert_outbox_max) == (19095, 5)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("alertmanager_port", 70000, "LOGSTREAM_ALERTMANAGER_PORT"),
        ("alert_outbox_max", 0, "LOGSTREAM_ALERT_OUTBOX_MAX"),
        ("alert_outbox_retry_s", 0, "LOGSTREAM_ALERT_OUTBOX_RETRY_S"),
        ("alert_kind_rate_per_hour", 0, "LOGSTREAM_ALERT_KIND_RATE_PER_HOUR"),
    ],
)
def test_bad_alert_settings_name_the_variable(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.load(env={}, **{name: value})
