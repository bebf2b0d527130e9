"""The late-data user rule (SPEC §5.2.6): the per-day counters the stream keeps
(logstream.stream.state.IngestState) and the ``anomalies`` row of a user above the limit
(logstream.catalog.anomalies.late_data_user). Expected values are written by hand."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

from logstream.catalog import anomalies
from logstream.stream.state import IngestState


def test_late_users_are_reported_once_when_their_day_count_goes_above_the_limit():
    state = IngestState()
    assert state.count_late_users([("2026-03-02", "u1", 2)], limit=2) == []
    crossed = state.count_late_users([("2026-03-02", "u1", 1), ("2026-03-02", "u2", 5)], limit=2)
    assert crossed == [(date(2026, 3, 2), "u1", 3), (date(2026, 3, 2), "u2", 5)]
    assert state.count_late_users([("2026-03-02", "u1", 4)], limit=2) == []  # already reported
    assert state.late_users == {"2026-03-02": {"u1": 7, "u2": 5}}


def test_the_late_user_counters_keep_two_days():
    state = IngestState(late_users={"2026-03-01": {"u1": 1}, "2026-03-02": {"u1": 1}})
    crossed = state.count_late_users([("2026-03-03", "u1", 3)], limit=2)
    assert crossed == [(date(2026, 3, 3), "u1", 3)]
    assert state.late_users == {"2026-03-02": {"u1": 1}, "2026-03-03": {"u1": 3}}


def test_the_late_data_user_row():
    row = anomalies.late_data_user(
        anomalies.Thresholds(late_user_min_events=5), "u9", date(2026, 3, 2), 6
    )
    assert row == {
        "anomaly_id": hashlib.sha256(b"late_data_user|u9|2026-03-02").hexdigest(),
        "kind": "late_data_user",
        "entity": "u9",
        "window_start": datetime(2026, 3, 2, tzinfo=UTC),
        "window_end": datetime(2026, 3, 3, tzinfo=UTC),
        "observed": 6.0,
        "threshold": 5.0,
        "baseline": None,
        "severity": "warning",
        "detail": "6 late events today (more than 5)",
        "window_date": date(2026, 3, 2),
    }
