"""The anomaly rules run on a family's new windows (logstream.stream.detect), on tiny static
frames. Expected rows are written by hand; ids are sha256 of ``kind|entity|window start``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pyspark.sql import functions as F

from logstream import catalog
from logstream.catalog import anomalies
from logstream.stream.detect import detect, window_rows

THRESHOLDS = anomalies.Thresholds(ddos_min_requests=10, ddos_max_users=3)


def at(minute: int) -> datetime:
    return datetime(2026, 3, 2, 10, minute, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_window_rows_give_the_bounds_as_aware_utc_datetimes(spark):
    frame = spark.createDataFrame(
        [(at(0), at(1), "api")], "window_start timestamp, window_end timestamp, service string"
    )
    assert window_rows(frame, [F.col("service")]) == [
        {"window_start": at(0), "window_end": at(1), "service": "api"}
    ]


def test_a_filter_rule_reports_the_matching_windows_only(spark):
    windows = spark.createDataFrame(
        [
            (at(0), at(1), "10.0.0.1", 11, 2),  # many requests, few users: DDoS suspect
            (at(0), at(1), "10.0.0.2", 11, 3),  # as many users as the limit: not
            (at(0), at(1), "10.0.0.3", 10, 1),  # requests at the limit: not
        ],
        "window_start timestamp, window_end timestamp, ip_address string, "
        "request_count long, unique_users int",
    )
    found = detect(catalog.FAMILY_BY_NAME["ip_requests"], windows, THRESHOLDS, {})
    assert found == [
        {
            "anomaly_id": sha("ddos_suspect|10.0.0.1|2026-03-02 10:00:00"),
            "kind": "ddos_suspect",
            "entity": "10.0.0.1",
            "window_start": at(0),
            "window_end": at(1),
            "observed": 11.0,
            "threshold": 10.0,
            "baseline": None,
            "severity": "critical",
            "detail": "11 requests in 1 min from 2 users",
            "window_date": at(0).date(),
        }
    ]


def test_a_look_back_rule_compares_with_the_history_and_extends_it(spark):
    rule = next(r for r in anomalies.HISTORY_RULES if r.kind == "error_rate_spike")
    history = anomalies.KeyHistory(rule, THRESHOLDS)
    history.add([{"service": "api", "window_start": at(0), "window_end": at(1), "error_rate": 2.0}])
    windows = spark.createDataFrame(
        [(at(1), at(2), "api", 10, 2, 20.0), (at(1), at(2), "web", 10, 0, 0.0)],
        "window_start timestamp, window_end timestamp, service string, total_requests long, "
        "error_count long, error_rate double",
    )
    found = detect(catalog.FAMILY_BY_NAME["error_rate"], windows, THRESHOLDS, {rule.kind: history})
    assert found == [
        {
            "anomaly_id": sha("error_rate_spike|api|2026-03-02 10:01:00"),
            "kind": "error_rate_spike",
            "entity": "api",
            "window_start": at(1),
            "window_end": at(2),
            "observed": 20.0,
            "threshold": 10.0,
            "baseline": 2.0,
            "severity": "warning",
            "detail": "error rate 20.0% after 2.0% (+18.0 points)",
            "window_date": at(1).date(),
        }
    ]
    assert [w["window_start"] for w in history.windows["api"]] == [at(1)]
    assert [w["window_start"] for w in history.windows["web"]] == [at(1)]


def test_a_family_without_rules_has_no_anomalies(spark):
    windows = spark.createDataFrame([], "window_start timestamp, window_end timestamp")
    assert detect(catalog.FAMILY_BY_NAME["sla"], windows, THRESHOLDS, {}) == []
