"""The alert path against real receivers: a loopback HTTP server (Slack, webhook) and a real SMTP
server (aiosmtpd). Expected payloads are written out by hand from the alert's fields."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from logstream.alerts import (
    Alert,
    BackgroundAlertSink,
    DedupAlertSink,
    DedupStore,
    JsonLinesAlertSink,
    build_alert_sink,
    notify,
    task_failure_alert,
)
from logstream.config import Settings
from logstream.logsetup import KeyValueFormatter
from tests.conftest import free_port
from tests.helpers import CHANNEL_ENV, Receiver


class MailRecorder:
    """aiosmtpd handler: keeps every accepted envelope."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No channel configuration leaks in from the machine running the tests."""
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def alert_settings(tmp_path: Path) -> Settings:
    return Settings.load(
        env={}, state_dir=tmp_path, alert_timeout_s=0.5, alert_retries=3, alert_dedup_seconds=600
    )


@pytest.fixture
def alert() -> Alert:
    return Alert(
        dedup_key="anomaly:abc123",
        kind="error_rate_spike",
        severity="critical",
        summary="error_rate_spike checkout: 42.0% errors (baseline 1.5%)",
        details={"entity": "checkout", "observed": 42.0, "threshold": 10.0},
        links={
            "run": "http://airflow.local/dags/d/runs/r1",
            "table": "/data/anomalies",
            "window": "2026-01-01T00:00:00/2026-01-01T00:01:00",
        },
        created_at="2026-01-01T00:02:00+00:00",
    )


def rendered_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record with its ``extra`` fields, as the production formatter prints it."""
    formatter = KeyValueFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


# --------------------------------------------------------------------------------------------
# Payloads delivered to real receivers
# --------------------------------------------------------------------------------------------


def test_slack_message_has_text_blocks_details_and_links(
    clean_env, receiver, alert, alert_settings
):
    clean_env.setenv("LOGSTREAM_SLACK_WEBHOOK_URL", f"{receiver.url}/services/T0/B0/s3cr3tTok")

    assert build_alert_sink("slack", alert_settings).send(alert) is True

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/services/T0/B0/s3cr3tTok"
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(request["body"])
    assert body["text"] == (
        ":rotating_light: CRITICAL: error_rate_spike checkout: 42.0% errors (baseline 1.5%)"
    )
    blocks_text = json.dumps(body["blocks"])
    for expected in (
        "*CRITICAL*",
        "error_rate_spike",
        "*entity*\\ncheckout",
        "*observed*\\n42.0",
        "*threshold*\\n10.0",
        "<http://airflow.local/dags/d/runs/r1|run>",
        "*table*: /data/anomalies",
        "anomaly:abc123",
    ):
        assert expected in blocks_text
    assert {block["type"] for block in body["blocks"]} == {"section", "context"}


def test_webhook_posts_the_alert_as_json(clean_env, receiver, alert, alert_settings):
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hooks/logstream")

    assert build_alert_sink("webhook", alert_settings).send(alert) is True

    assert [request["path"] for request in receiver.requests] == ["/hooks/logstream"]
    assert receiver.json_bodies() == [
        {
            "source": "logstream",
            "dedup_key": "anomaly:abc123",
            "kind": "error_rate_spike",
            "severity": "critical",
            "summary": "error_rate_spike checkout: 42.0% errors (baseline 1.5%)",
            "details": {"entity": "checkout", "observed": 42.0, "threshold": 10.0},
            "links": {
                "run": "http://airflow.local/dags/d/runs/r1",
                "table": "/data/anomalies",
                "window": "2026-01-01T00:00:00/2026-01-01T00:01:00",
            },
            "created_at": "2026-01-01T00:02:00+00:00",
        }
    ]


def test_email_subject_recipients_dedup_header_and_body(clean_env, alert, alert_settings):
    recorder = MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        clean_env.setenv("LOGSTREAM_SMTP_HOST", "127.0.0.1")
        clean_env.setenv("LOGSTREAM_SMTP_PORT", str(controller.port))
        clean_env.setenv("LOGSTREAM_SMTP_FROM", "logstream@example.com")
        clean_env.setenv("LOGSTREAM_SMTP_TO", "oncall@example.com, data@example.com")

        assert build_alert_sink("email", alert_settings).send(alert) is True
    finally:
        controller.stop()

    assert len(recorder.envelopes) == 1
    envelope = recorder.envelopes[0]
    assert envelope.mail_from == "logstream@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "data@example.com"]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == (
        "[logstream][CRITICAL] error_rate_spike checkout: 42.0% errors (baseline 1.5%)"
    )
    assert message["X-Logstream-Dedup-Key"] == "anomaly:abc123"
    assert message["To"] == "oncall@example.com, data@example.com"
    body = message.get_content()
    for expected in (
        "entity: checkout",
        "observed: 42.0",
        "run: http://airflow.local/dags/d/runs/r1",
        "table: /data/anomalies",
        "dedup key: anomaly:abc123",
    ):
        assert expected in body


def test_email_login_and_rejected_password_is_not_retried_nor_logged(
    clean_env, alert, alert_settings, caplog
):
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"right-pa55word", handled=False)

    recorder = MailRecorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
        # PLAIN only: smtplib falls back from a refused PLAIN to LOGIN, which aiosmtpd's
        # LOGIN exchange leaves hanging on smtplib's initial response
        auth_exclude_mechanism=["LOGIN"],
    )
    controller.start()
    caplog.set_level(logging.DEBUG, logger="logstream")
    try:
        clean_env.setenv("LOGSTREAM_SMTP_HOST", "127.0.0.1")
        clean_env.setenv("LOGSTREAM_SMTP_PORT", str(controller.port))
        clean_env.setenv("LOGSTREAM_SMTP_USER", "alerts")
        clean_env.setenv("LOGSTREAM_SMTP_TO", "oncall@example.com")
        clean_env.setenv("LOGSTREAM_SMTP_PASSWORD", "right-pa55word")
        assert build_alert_sink("email", alert_settings).send(alert) is True

        clean_env.setenv("LOGSTREAM_SMTP_PASSWORD", "wrong-pa55word")
        assert build_alert_sink("email", alert_settings).send(alert) is False
    finally:
        controller.stop()

    # one good login, then one refused login: a 535 is permanent, so it is not retried
    assert logins == [("alerts", "right-pa55word"), ("alerts", "wrong-pa55word")]
    assert len(recorder.envelopes) == 1
    # no LOGSTREAM_SMTP_FROM and a login that is not an address: logstream@<this host>
    assert recorder.envelopes[0].mail_from == f"logstream@{socket.gethostname()}"
    logs = rendered_logs(caplog)
    assert "smtp-535" in logs
    assert "pa55word" not in logs


# --------------------------------------------------------------------------------------------
# Failures: retried, bounded, logged without secrets, never raised
# --------------------------------------------------------------------------------------------


def test_server_error_is_retried_then_logged(clean_env, alert, alert_settings, caplog):
    caplog.set_level(logging.INFO, logger="logstream")
    with Receiver(status=500) as failing:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{failing.url}/hook")
        assert build_alert_sink("webhook", alert_settings).send(alert) is False

    assert len(failing.requests) == alert_settings.alert_retries == 3
    final = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(final) == 1
    assert (final[0].channel, final[0].status, final[0].attempts) == ("webhook", "http-500", 3)
    assert "LOGSTREAM_ALERT_WEBHOOK_URL" in final[0].getMessage()


def test_client_error_is_not_retried(clean_env, alert, alert_settings):
    with Receiver(status=404) as missing:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{missing.url}/wrong-path")
        assert build_alert_sink("webhook", alert_settings).send(alert) is False
    assert len(missing.requests) == 1


def test_hanging_receiver_costs_about_timeout_times_retries(clean_env, alert, tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path, alert_timeout_s=0.5, alert_retries=2)
    with Receiver(delay_s=30) as hanging:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{hanging.url}/hook")
        started = time.monotonic()
        delivered = build_alert_sink("webhook", settings).send(alert)
        elapsed = time.monotonic() - started

    assert delivered is False
    assert len(hanging.requests) == 2
    # 2 attempts x 0.5 s timeout + one 0.5 s backoff, plus scheduling slack on a busy machine
    assert 1.0 <= elapsed < 4.0


def test_secrets_never_reach_the_logs(clean_env, alert, alert_settings, caplog):
    caplog.set_level(logging.DEBUG, logger="logstream")
    secret = "T0SECRET/B0SECRET/XOXB-very-secret-token"
    with Receiver(status=503) as failing:
        clean_env.setenv("LOGSTREAM_SLACK_WEBHOOK_URL", f"{failing.url}/services/{secret}")
        assert build_alert_sink("slack", alert_settings).send(alert) is False
    # the same URL with nobody listening any more, then a URL without a scheme
    assert build_alert_sink("slack", alert_settings).send(alert) is False
    clean_env.setenv("LOGSTREAM_SLACK_WEBHOOK_URL", f"hooks.slack.com/services/{secret}")
    assert build_alert_sink("slack", alert_settings).send(alert) is False

    logs = rendered_logs(caplog)
    assert "http-503" in logs and "unreachable" in logs and "bad-url" in logs
    assert "SECRET" not in logs and "very-secret" not in logs
    assert "LOGSTREAM_SLACK_WEBHOOK_URL" in logs  # where to look, without the value


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


def test_spec_parsing_keeps_old_sinks_and_rejects_unknown_names(tmp_path, alert):
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


# --------------------------------------------------------------------------------------------
# Dedup
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Airflow connections and the failure callback
# --------------------------------------------------------------------------------------------


def test_airflow_connections_win_over_the_environment(clean_env, receiver, alert, alert_settings):
    recorder = MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/from-env")
        clean_env.setenv(
            "AIRFLOW_CONN_LOGSTREAM_WEBHOOK",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": receiver.port,
                    "schema": "from-connection",
                    "extra": {"headers": {"Authorization": "Bearer hdr-s3cret"}},
                }
            ),
        )
        clean_env.setenv(
            "AIRFLOW_CONN_LOGSTREAM_SLACK",
            json.dumps(
                {"conn_type": "http", "host": f"{receiver.url}/services", "password": "T1/B1/x"}
            ),
        )
        clean_env.setenv(
            "AIRFLOW_CONN_LOGSTREAM_SMTP",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "extra": {"from": "af@example.com", "to": "a@example.com,b@example.com"},
                }
            ),
        )
        assert build_alert_sink("webhook,slack,email", alert_settings).send(alert) is True
    finally:
        controller.stop()

    paths = [request["path"] for request in receiver.requests]
    assert paths == ["/from-connection", "/services/T1/B1/x"]
    assert receiver.requests[0]["headers"]["Authorization"] == "Bearer hdr-s3cret"
    assert [(e.mail_from, e.rcpt_tos) for e in recorder.envelopes] == [
        ("af@example.com", ["a@example.com", "b@example.com"])
    ]


class FailedTaskInstance:
    """The attributes Airflow's RuntimeTaskInstance exposes to an on_failure_callback."""

    dag_id = "nightly"
    task_id = "reconcile"
    run_id = "scheduled__2026-01-01T00:00:00+00:00"
    map_index = -1
    try_number = 3
    log_url = "http://airflow.local/dags/nightly/runs/scheduled__2026/tasks/reconcile?try_number=3"


def test_task_failure_alert_links_the_log_and_bounds_the_error(
    clean_env, receiver, tmp_path, monkeypatch
):
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    clean_env.setenv("LOGSTREAM_ALERT_SINK", "webhook")
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    error = RuntimeError("disk full\n" + "x" * 20_000)
    context = {"ti": FailedTaskInstance(), "run_id": FailedTaskInstance.run_id, "exception": error}

    task_failure_alert(context)
    task_failure_alert(context)  # the same failed run again: deduplicated

    [body] = receiver.json_bodies()
    assert body["dedup_key"] == "pipeline:nightly:reconcile:scheduled__2026-01-01T00:00:00+00:00"
    assert (body["kind"], body["severity"]) == ("pipeline_failure", "critical")
    assert body["links"]["log"] == FailedTaskInstance.log_url
    assert body["summary"].startswith("nightly.reconcile failed: RuntimeError: disk full x")
    assert len(body["summary"]) <= 400
    assert body["details"]["error"].startswith("RuntimeError: disk full\nxxx")
    assert len(body["details"]["error"]) <= 2_100
    assert body["details"]["try_number"] == 3


def test_task_failure_alert_survives_an_empty_context(clean_env, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LOGSTREAM_STATE_DIR", str(tmp_path))
    task_failure_alert({})
    assert any("?.? failed" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------
# Background delivery: real threads, real slow sinks
# --------------------------------------------------------------------------------------------


class GatedSink:
    """A channel that hangs: each ``send`` waits until ``gate`` opens (at most ``hold_s``, so a
    failing test never leaves a thread stuck), then records the dedup key; keys in ``raise_on``
    raise instead, keys in ``refuse`` return False."""

    def __init__(
        self, hold_s: float = 2.0, raise_on: tuple[str, ...] = (), refuse: tuple[str, ...] = ()
    ) -> None:
        self.gate = threading.Event()
        self.hold_s = hold_s
        self.raise_on = raise_on
        self.refuse = refuse
        self.entered: list[str] = []  # keys whose delivery started
        self.received: list[str] = []  # keys delivered
        self._changed = threading.Condition()

    def send(self, alert: Alert) -> bool:
        with self._changed:
            self.entered.append(alert.dedup_key)
            self._changed.notify_all()
        self.gate.wait(self.hold_s)
        if alert.dedup_key in self.raise_on:
            raise RuntimeError(f"receiver exploded on {alert.dedup_key}")
        if alert.dedup_key in self.refuse:
            return False
        with self._changed:
            self.received.append(alert.dedup_key)
            self._changed.notify_all()
        return True

    def wait_entered(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.entered) >= count, timeout_s)

    def wait_received(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received) >= count, timeout_s)


@pytest.fixture
def gated() -> Iterator[GatedSink]:
    sink = GatedSink()
    yield sink
    sink.gate.set()  # let any worker still inside send() finish


def alerts_numbered(alert: Alert, count: int, prefix: str = "anomaly") -> list[Alert]:
    return [replace(alert, dedup_key=f"{prefix}:{n}") for n in range(count)]


def timed_sends(sink: BackgroundAlertSink, alerts: list[Alert]) -> tuple[list, float]:
    started = time.monotonic()
    results = [sink.send(one) for one in alerts]
    return results, time.monotonic() - started


def test_background_send_returns_at_once_and_delivers_in_order(gated, alert):
    background = BackgroundAlertSink(gated)
    batch = alerts_numbered(alert, 5)

    results, elapsed = timed_sends(background, batch)

    assert results == [None] * 5  # accepted
    assert elapsed < 0.5  # the sink holds each alert up to 2 s
    assert gated.wait_entered(1)
    assert gated.received == []  # nothing got through while the receiver hangs
    gated.gate.set()
    assert background.close(timeout_s=5.0) == 0  # close() itself waits for the queue to drain
    assert gated.received == [one.dedup_key for one in batch]
    assert (background.delivered, background.failed, background.dropped) == (5, 0, 0)
    assert background.close() == 0  # idempotent


def test_background_send_does_not_wait_for_a_slow_webhook(clean_env, alert, tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path, alert_timeout_s=3.0, alert_retries=1)
    with Receiver(delay_s=0.3) as slow:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{slow.url}/hook")
        background = BackgroundAlertSink(build_alert_sink("webhook", settings))
        batch = alerts_numbered(alert, 2)

        results, elapsed = timed_sends(background, batch)
        left = background.close(timeout_s=5.0)

        assert results == [None, None]
        assert elapsed < 0.25  # two deliveries take >= 0.6 s
        assert left == 0
        assert [body["dedup_key"] for body in slow.json_bodies()] == ["anomaly:0", "anomaly:1"]


def test_full_queue_drops_with_an_error_and_never_blocks(gated, alert, caplog):
    caplog.set_level(logging.WARNING, logger="logstream")
    background = BackgroundAlertSink(gated, max_queued=2)
    first, *rest = alerts_numbered(alert, 5)
    assert background.send(first) is None
    assert gated.wait_entered(1)  # in flight, hanging: the queue is empty again

    results, elapsed = timed_sends(background, rest)

    assert results == [None, None, False, False]  # two fit in the queue, two do not
    assert elapsed < 0.5
    assert background.dropped == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    for key, message in zip(["anomaly:3", "anomaly:4"], errors, strict=True):
        assert key in message and alert.kind in message
        assert "queue is full" in message and "anomalies table" in message
    gated.gate.set()
    assert background.close(timeout_s=5.0) == 0
    assert gated.received == ["anomaly:0", "anomaly:1", "anomaly:2"]


def test_a_sink_that_raises_or_refuses_does_not_stop_the_worker(alert, caplog):
    sink = GatedSink(raise_on=("anomaly:0",), refuse=("anomaly:1",))
    sink.gate.set()
    background = BackgroundAlertSink(sink)

    for one in alerts_numbered(alert, 3):
        background.send(one)

    assert sink.wait_received(1)
    assert background.close(timeout_s=5.0) == 0
    assert sink.received == ["anomaly:2"]
    assert (background.delivered, background.failed) == (1, 2)
    assert any(
        "receiver exploded on anomaly:0" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
    )


def test_close_with_a_hanging_sink_returns_what_was_left(gated, alert, caplog):
    caplog.set_level(logging.WARNING, logger="logstream")
    background = BackgroundAlertSink(gated, name="alerts-under-test")
    for one in alerts_numbered(alert, 3):
        background.send(one)
    assert gated.wait_entered(1)

    started = time.monotonic()
    left = background.close(timeout_s=0.2)
    elapsed = time.monotonic() - started

    assert left == 3  # one in flight, two never started
    assert 0.15 <= elapsed < 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "3 alert(s) not delivered" in warnings[0]
    assert "anomaly:1" in warnings[0] and "anomaly:2" in warnings[0]
    assert background.close(timeout_s=5.0) == 3  # idempotent, and returns at once
    assert background.send(replace(alert, dedup_key="late")) is False
    assert background.dropped == 1

    # the in-flight alert finishes, then the worker exits without taking the abandoned ones
    gated.gate.set()
    worker = next(t for t in threading.enumerate() if t.name == "alerts-under-test")
    worker.join(timeout=2.0)
    assert not worker.is_alive()
    assert gated.entered == ["anomaly:0"]
