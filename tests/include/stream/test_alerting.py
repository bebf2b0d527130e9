"""The alerts of a batch's anomalies (logstream.stream.alerting): one per row, against a
hand-written Alert, but ONE per window for late_data_user naming its top users. Rows and expected
alerts are written by hand."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from logstream.alerts import Alert
from logstream.stream.alerting import anomaly_alert, anomaly_alerts

DAY = datetime(2026, 3, 2, tzinfo=UTC)
NEXT = datetime(2026, 3, 3, tzinfo=UTC)

SPIKE = {
    "anomaly_id": "spike1",
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


def late(user: str, count: int, start: datetime = DAY, end: datetime = NEXT) -> dict:
    return {
        "anomaly_id": f"id-{user}",
        "kind": "late_data_user",
        "entity": user,
        "window_start": start,
        "window_end": end,
        "observed": float(count),
        "threshold": 5.0,
        "baseline": None,
        "severity": "warning",
        "detail": f"{count} late events today (more than 5)",
        "window_date": start.date(),
    }


def test_an_anomaly_alert_is_deduplicated_by_the_anomaly_id_and_links_its_window():
    alert = anomaly_alert(SPIKE, "/data/anomalies")
    assert alert == Alert(
        dedup_key="anomaly:spike1",
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


def test_late_users_of_a_window_are_one_alert_naming_the_top_ten():
    # 12 users: u00 has 30 late events, u01 29, ... u11 19; u12 ties u11 at 19
    users = [late(f"u{n:02d}", 30 - n) for n in range(12)] + [late("u12", 19)]
    rows = [users[5], SPIKE, *users[:5], *users[6:]]

    alerts = anomaly_alerts(rows, "/data/anomalies")

    assert [a.kind for a in alerts] == ["late_data_user", "error_rate_spike"]
    grouped, spike = alerts
    ids = "|".join(sorted(f"id-u{n:02d}" for n in range(13)))
    assert grouped.dedup_key == f"anomaly:late_data_user:{hashlib.sha256(ids.encode()).hexdigest()}"
    assert grouped.severity == "warning"
    assert grouped.summary == (
        "late_data_user: 13 users sent more than 5 late events on 2026-03-02; top: "
        "u00 (30), u01 (29), u02 (28), u03 (27), u04 (26), u05 (25), u06 (24), u07 (23), "
        "u08 (22), u09 (21) and 3 more"
    )
    assert grouped.details == {
        "users": 13,
        "late_events": sum(range(19, 31)) + 19,
        "threshold": 5.0,
        "top_users": {f"u{n:02d}": 30 - n for n in range(10)},
        "users_not_listed": 3,
    }
    assert grouped.links == {
        "table": "/data/anomalies",
        "window": "2026-03-02T00:00:00+00:00/2026-03-03T00:00:00+00:00",
    }
    assert grouped.service == ""
    assert spike.dedup_key == "anomaly:spike1" and spike.service == "api"


def test_each_window_is_its_own_alert_and_a_lone_user_keeps_the_rows_key():
    later = late("z", 7, NEXT, datetime(2026, 3, 4, tzinfo=UTC))
    alerts = anomaly_alerts([late("a", 6), later, late("b", 9)], "/t")

    assert [a.dedup_key for a in alerts] == [
        "anomaly:late_data_user:" + hashlib.sha256(b"id-a|id-b").hexdigest(),
        "anomaly:id-z",
    ]
    assert alerts[0].summary == (
        "late_data_user: 2 users sent more than 5 late events on 2026-03-02; top: b (9), a (6)"
    )
    assert alerts[1].summary == (
        "late_data_user: 1 user sent more than 5 late events on 2026-03-03; top: z (7)"
    )


def test_a_replayed_batch_raises_the_same_keys():
    rows = [late("a", 6), late("b", 9)]
    assert [a.dedup_key for a in anomaly_alerts(rows, "/t")] == [
        a.dedup_key for a in anomaly_alerts(list(reversed(rows)), "/t")
    ]
