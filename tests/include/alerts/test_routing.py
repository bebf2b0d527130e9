"""The ``alert_sink`` setting turned into sinks, and :func:`notify`'s fallback to the log."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from logstream.alerts import counters
from logstream.alerts.outbox import Outbox
from logstream.alerts.routing import build_alert_sink, notify
from logstream.config import Settings


def test_unconfigured_channel_logs_what_to_set_and_others_still_deliver(
    clean_env, receiver, alert, alert_settings, caplog
):
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")

    delivered = build_alert_sink("slack,email,webhook", alert_settings).send(alert)

    assert delivered is False  # slack and email are listed but have no address
    assert len(receiver.requests) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "logstream_slack" in errors[0] and "LOGSTREAM_SLACK_WEBHOOK_URL" in errors[0]
    assert "logstream_smtp" in errors[1] and "LOGSTREAM_SMTP_HOST" in errors[1]


def test_spec_parsing_accepts_log_and_jsonl_and_rejects_unknown_names(tmp_path, alert):
    path = tmp_path / "alerts.jsonl"
    sink = build_alert_sink(f"log, jsonl:{path}")  # the streaming job's one-argument call
    assert sink.send(alert) is True
    assert [json.loads(line)["dedup_key"] for line in path.read_text().splitlines()] == [
        "anomaly:abc123"
    ]
    with pytest.raises(ValueError, match="unknown alert sink 'pagerduty'"):
        build_alert_sink("log,pagerduty")


def test_notify_with_a_broken_spec_logs_instead_of_raising(alert, alert_settings, caplog):
    assert notify(alert, "pagerduty", alert_settings) is True  # fell back to the log sink
    assert any("alert configuration is invalid" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage() == alert.summary for r in caplog.records)


def test_notify_leaves_a_failed_channel_in_the_outbox_and_the_others_delivered(
    clean_env, receiver, alert, alert_settings, tmp_path
):
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    (tmp_path / "a-folder").mkdir()  # a JSON-lines "file" that cannot be written
    spec = f"webhook,jsonl:{tmp_path}/a-folder"

    assert notify(alert, spec, alert_settings) is False

    assert len(receiver.requests) == 1
    (entry,) = Outbox.from_settings(alert_settings).entries()
    assert entry["channels"] == [f"jsonl:{tmp_path}/a-folder"]
    assert entry["alert"]["dedup_key"] == alert.dedup_key


def test_notify_rate_limits_a_direct_channel_per_kind(clean_env, receiver, alert, tmp_path, caplog):
    counters.reset()
    caplog.set_level(logging.WARNING, logger="logstream")
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    settings = Settings.load(env={}, state_dir=tmp_path, alert_kind_rate_per_hour=2)
    jsonl = tmp_path / "all.jsonl"

    for n in range(3):
        assert notify(replace(alert, dedup_key=f"k{n}"), f"webhook,jsonl:{jsonl}", settings)
    assert notify(replace(alert, dedup_key="other", kind="latency"), "webhook", settings)

    assert [b["dedup_key"] for b in receiver.json_bodies()] == ["k0", "k1", "other"]
    assert len(jsonl.read_text().splitlines()) == 3  # not a direct channel: every alert
    assert counters.snapshot()["logstream_alerts_rate_limited_total"] == 1
    assert any("k2 not sent to webhook" in r.getMessage() for r in caplog.records)
