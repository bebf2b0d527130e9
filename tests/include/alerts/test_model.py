"""The alert record and :func:`safe_send`, the one place a sink's exception becomes a logged
failure instead of reaching the pipeline."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from logstream.alerts.model import Alert, safe_send


class FixedSink:
    """Returns ``result`` from ``send``, or raises it when it is an exception."""

    def __init__(self, result: object) -> None:
        self.result = result
        self.sent: list[str] = []

    def send(self, alert: Alert) -> bool | None:
        self.sent.append(alert.dedup_key)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


def test_alert_as_dict_and_severity_label():
    alert = Alert("k", "kind", "Critical", "s", details={"a": 1}, created_at="2026-01-01T00:00Z")
    assert alert.as_dict() == {
        "dedup_key": "k",
        "kind": "kind",
        "severity": "Critical",
        "summary": "s",
        "details": {"a": 1},
        "links": {},
        "created_at": "2026-01-01T00:00Z",
        "service": "",
    }
    assert Alert.from_dict({**alert.as_dict(), "added_later": 1}) == alert
    assert alert.severity_label == "CRITICAL"


def test_alert_created_at_defaults_to_now_in_utc_to_the_second():
    before = datetime.now(UTC).replace(microsecond=0)
    created_at = Alert("k", "kind", "info", "s").created_at
    after = datetime.now(UTC)
    assert created_at.endswith("+00:00") and "." not in created_at
    assert before <= datetime.fromisoformat(created_at) <= after


def test_safe_send_counts_none_as_delivered_and_never_raises(caplog):
    alert = Alert("k", "kind", "info", "s")
    assert safe_send(FixedSink(None), alert) is True
    assert safe_send(FixedSink(True), alert) is True
    assert safe_send(FixedSink(False), alert) is False

    assert safe_send(FixedSink(RuntimeError("receiver exploded")), alert) is False
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage() == "alert delivery through FixedSink failed: receiver exploded"
