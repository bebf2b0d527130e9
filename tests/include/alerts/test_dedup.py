"""Dedup against a real webhook receiver and a real state file: at most one delivery per dedup
key and channel within the window, across sink instances, threads and failed attempts."""

from __future__ import annotations

import json
import threading

from logstream.alerts.channels import JsonLinesAlertSink
from logstream.alerts.dedup import DedupAlertSink, DedupStore
from logstream.alerts.model import Alert
from logstream.alerts.routing import build_alert_sink, notify
from tests.helpers import Receiver


def test_notify_dedups_within_the_window_across_sink_instances(
    clean_env, receiver, alert, alert_settings
):
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")

    assert notify(alert, "webhook", alert_settings) is True
    assert notify(alert, "webhook", alert_settings) is True  # suppressed, counts as delivered
    # a fresh sink over the same state file (another Airflow run) also stays quiet
    sink = build_alert_sink("webhook", alert_settings, dedup=True)
    assert sink.send(alert) is True
    assert len(receiver.requests) == 1

    other = Alert("anomaly:other", "error_rate_spike", "warning", "another window")
    assert notify(other, "webhook", alert_settings) is True
    assert [body["dedup_key"] for body in receiver.json_bodies()] == [
        "anomaly:abc123",
        "anomaly:other",
    ]
    state = json.loads((alert_settings.state_dir / "alerts" / "sent.json").read_text())
    assert set(state) == {"webhook|anomaly:abc123", "webhook|anomaly:other"}


def test_failed_delivery_is_not_recorded_so_the_next_call_retries(clean_env, alert, alert_settings):
    with Receiver(status=500) as flaky:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{flaky.url}/hook")
        assert notify(alert, "webhook", alert_settings) is False
        flaky.status = 200
        assert notify(alert, "webhook", alert_settings) is True
        assert notify(alert, "webhook", alert_settings) is True  # now a duplicate
    assert len(flaky.requests) == 3 + 1


def test_dedup_is_per_channel(clean_env, receiver, alert, alert_settings):
    """A channel that failed does not make the working ones page again."""
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    assert notify(alert, "webhook,slack", alert_settings) is False  # slack: no URL
    clean_env.setenv("LOGSTREAM_SLACK_WEBHOOK_URL", f"{receiver.url}/slack")
    assert notify(alert, "webhook,slack", alert_settings) is True
    assert [request["path"] for request in receiver.requests] == ["/hook", "/slack"]


def test_concurrent_notifies_deliver_once(clean_env, receiver, alert, alert_settings):
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    threads = [
        threading.Thread(target=notify, args=(alert, "webhook", alert_settings)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(receiver.requests) == 1


def test_dedup_window_expires(tmp_path):
    store = DedupStore(tmp_path / "sent.json")
    assert store.claim("k", window_s=10, now=100.0) == 100.0
    assert store.claim("k", window_s=10, now=109.9) is None
    assert store.claim("k", window_s=10, now=110.0) == 110.0
    store.release("k", 110.0)
    assert json.loads((tmp_path / "sent.json").read_text()) == {}


def test_dedup_wrapper_over_any_sink(tmp_path, alert):
    path = tmp_path / "alerts.jsonl"
    sink = DedupAlertSink(JsonLinesAlertSink(path), tmp_path / "state" / "sent.json", 60)
    sink.send(alert)
    DedupAlertSink(JsonLinesAlertSink(path), tmp_path / "state" / "sent.json", 60).send(alert)
    assert len(path.read_text().splitlines()) == 1
