"""The alert of an anomaly (logstream.stream.alerting), against a hand-written Alert."""

from __future__ import annotations

from datetime import UTC, date, datetime

from logstream.alerts import Alert
from logstream.stream.alerting import anomaly_alert


def test_an_anomaly_alert_is_deduplicated_by_the_anomaly_id_and_links_its_window():
    row = {
        "anomaly_id": "abc123",
        "kind": "error_rate_spike",
        "entity": "api",
        "window_start": datetime(2026, 3, 2, 10, 1, tzinfo=UTC),
        "window_end": datetime(2026, 3, 2, 10, 2, tzinfo=UTC),
        "observed": 50.0,
        "threshold": 10.0,
        "baseline": 0.0,
        "severity": "critical",
        "detail": "error rate 50.0% after 0.0% (+50.0 points)",
        "window_date": date(2026, 3, 2),
    }
    alert = anomaly_alert(row, "/data/anomalies")
    assert alert == Alert(
        dedup_key="anomaly:abc123",
        kind="error_rate_spike",
        severity="critical",
        summary="error_rate_spike api: error rate 50.0% after 0.0% (+50.0 points)",
        details={"entity": "api", "observed": 50.0, "threshold": 10.0, "baseline": 0.0},
        links={
            "table": "/data/anomalies",
            "window": "2026-03-02T10:01:00+00:00/2026-03-02T10:02:00+00:00",
        },
        created_at=alert.created_at,
        service="api",
    )
