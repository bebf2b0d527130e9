"""The Alertmanager channel (logstream.alerts.alertmanager): the v2 body of an alert, written by
hand, hostile text made safe for labels, and delivery to a loopback receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from logstream.alerts.alertmanager import (
    AlertmanagerAlertSink,
    alertmanager_alert,
    alertname,
    annotation,
    category,
    label_value,
)
from logstream.alerts.routing import build_alert_sink
from logstream.config import Settings

NOW = datetime(2026, 1, 1, 0, 2, 30, tzinfo=UTC)


def test_an_alert_becomes_labels_annotations_times_and_a_generator_url(alert):
    assert alertmanager_alert(alert, resolve_s=3600, now=NOW) == {
        "labels": {
            "alertname": "LogstreamErrorRateSpike",
            "kind": "error_rate_spike",
            "severity": "critical",
            "category": "data",
            "dedup_key": "anomaly:abc123",
        },
        "annotations": {
            "summary": "error_rate_spike checkout: 42.0% errors (baseline 1.5%)",
            "details": "entity: checkout\nobserved: 42.0\nthreshold: 10.0",
            "links": "run: http://airflow.local/dags/d/runs/r1\n"
            "table: /data/anomalies\n"
            "window: 2026-01-01T00:00:00/2026-01-01T00:01:00",
        },
        "startsAt": "2026-01-01T00:02:00.000Z",
        "endsAt": "2026-01-01T01:02:00.000Z",
        "generatorURL": "http://airflow.local/dags/d/runs/r1",
    }


def test_a_late_delivery_still_fires_for_five_minutes(alert):
    late = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    body = alertmanager_alert(alert, resolve_s=3600, now=late)
    assert (body["startsAt"], body["endsAt"]) == (
        "2026-01-01T00:02:00.000Z",
        "2026-01-03T12:05:00.000Z",
    )


def test_hostile_text_loses_control_characters_and_is_bounded():
    assert label_value("api\x1b[31m\r\n\u202eevil\u200b\x00 x") == "api[31m evil x"
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    assert len(label_value(long_a)) == 200
    assert label_value(long_a).startswith("a" * 186 + "…~")
    assert label_value(long_a) != label_value(long_b)
    assert annotation("line one\x07\nline\ttwo\x1b", 100) == "line one\nline two"
    assert annotation("x" * 50, 10) == "x" * 9 + "…"


def test_names_and_categories_of_kinds():
    assert alertname("restart_loop") == "LogstreamPipelineDown"
    assert alertname("checkpoint_invalid") == "LogstreamPipelineDown"
    assert alertname("late_data_user") == "LogstreamLateDataUser"
    assert alertname("pipeline_failure") == "LogstreamPipelineFailure"
    assert [category(k) for k in ("restart_loop", "ddos_suspect", "quality_failure")] == [
        "pipeline_down",
        "data",
        "quality",
    ]
    assert [category(k) for k in ("pipeline_failure", "latency", "whatever")] == [
        "pipeline",
        "latency",
        "other",
    ]


def test_the_sink_posts_a_list_of_one_alert_to_the_v2_api(receiver, alert, alert_settings):
    sink = build_alert_sink(f"alertmanager:{receiver.url}/am/", alert_settings)

    assert sink.send(alert) is True

    assert [r["path"] for r in receiver.requests] == ["/am/api/v2/alerts"]
    (body,) = receiver.json_bodies()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["labels"]["dedup_key"] == "anomaly:abc123"
    assert body[0]["startsAt"] == "2026-01-01T00:02:00.000Z"


def test_without_a_local_alertmanager_the_plain_entry_posts_nothing(alert, alert_settings, caplog):
    caplog.set_level("INFO", logger="logstream")
    sink = AlertmanagerAlertSink.from_settings(alert_settings)
    assert sink.send(alert) is True
    assert sink.send(alert) is True
    told = [r.getMessage() for r in caplog.records if "no local Alertmanager" in r.getMessage()]
    assert len(told) == 1  # said once, not per alert


def test_the_recorded_local_port_is_used(receiver, alert, tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path, alert_retries=1)
    (tmp_path / "alertmanager").mkdir()
    (tmp_path / "alertmanager" / "port").write_text(str(receiver.port))

    assert build_alert_sink("log,alertmanager", settings).send(alert) is True

    assert [r["path"] for r in receiver.requests] == ["/api/v2/alerts"]
    assert json.loads(receiver.requests[0]["body"])[0]["labels"]["kind"] == "error_rate_spike"


def test_a_malformed_alertmanager_url_is_rejected_with_the_fix(alert_settings):
    with pytest.raises(ValueError, match="alertmanager:http://HOST:PORT"):
        build_alert_sink("alertmanager:127.0.0.1:9095", alert_settings)
