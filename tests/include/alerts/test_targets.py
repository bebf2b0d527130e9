"""Channel addresses from Airflow connections (``AIRFLOW_CONN_*``), which win over the
environment, delivered to a real HTTP receiver and a real SMTP server."""

from __future__ import annotations

import json

from aiosmtpd.controller import Controller

from logstream.alerts.routing import build_alert_sink
from tests.conftest import free_port
from tests.include.alerts.support import MailRecorder


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
