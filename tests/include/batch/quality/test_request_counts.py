"""The cross-table suite: which families it compares, the comparison frame against counts made
by hand, and the mismatch rows it reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from logstream import schemas
from logstream.batch.quality.request_counts import (
    SERVICE_REQUEST_COUNTS,
    request_counts_comparison,
    request_counts_expectations,
    request_counts_families,
)
from tests.include.batch.quality.support import event_row, failed


def test_families_counting_requests_per_service(settings):
    assert SERVICE_REQUEST_COUNTS == {
        "response_time": "request_count",
        "error_rate": "total_requests",
        "sla": "total_requests",
        "service_popularity": "request_count",
        "processing_latency": "record_count",
    }
    assert {f.name for f in request_counts_families(settings)} == set(SERVICE_REQUEST_COUNTS)
    # a family on another window than response_time's cannot be compared per minute
    wider = settings.replace(windows={"sla": {"window": "2 minutes"}})
    assert {f.name for f in request_counts_families(wider)} == {
        "response_time",
        "error_rate",
        "service_popularity",
        "processing_latency",
    }


def test_request_count_comparison_against_hand_counts(run, spark):
    w0, w1 = datetime(2026, 1, 14, 10, 0), datetime(2026, 1, 14, 10, 1)
    events = spark.createDataFrame(
        [
            event_row(1, event_time=w0 + timedelta(seconds=5)),
            event_row(2, event_time=w0 + timedelta(seconds=50)),
            event_row(3, event_time=w1 + timedelta(seconds=1)),
            event_row(4, event_time=w1 + timedelta(seconds=2), service="web"),
        ],
        schemas.EVENTS,
    )
    reconciled = spark.createDataFrame(
        [
            Row(window_start=w0, service="api", request_count=2),
            Row(window_start=w1, service="api", request_count=1),
            Row(window_start=w1, service="auth", request_count=4),  # no such bronze events
        ]
    )
    comparison = request_counts_comparison(events, {"response_time": reconciled}, "1 minute")
    expected = spark.createDataFrame(
        [
            Row(window_start=w0, service="api", events_count=2, response_time_count=2),
            Row(window_start=w1, service="api", events_count=1, response_time_count=1),
            Row(window_start=w1, service="auth", events_count=0, response_time_count=4),
            Row(window_start=w1, service="web", events_count=1, response_time_count=0),
        ]
    )
    assertDataFrameEqual(comparison, expected)

    result = run.validate(
        "cross/request_counts",
        comparison,
        request_counts_expectations(["response_time"], "1 minute"),
        ["window_start", "service"],
    )
    assert failed(result) == {("unexpected_rows_expectation", None)}
    assert result.failures[0].unexpected_count == 2
    assert {row["service"] for row in result.failures[0].sample} == {"auth", "web"}
