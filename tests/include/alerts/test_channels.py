"""The delivery channels against real receivers: a loopback HTTP server (Slack, webhook) and a
real SMTP server (aiosmtpd). Expected payloads are written out by hand from the alert's fields;
failures are retried, bounded, logged without secrets and never raised."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from logstream.alerts.routing import build_alert_sink
from logstream.config import Settings
from tests.conftest import free_port
from tests.helpers import Receiver
from tests.include.alerts.support import MailRecorder, rendered_logs


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
            "service": "",
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
