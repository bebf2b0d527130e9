"""``response_time`` (SPEC §5.1.1): request count and response-time statistics per service and
minute. Expected values are worked out by hand; percentiles follow the nearest-rank rule (the
smallest value with at least p of the values at or below it), which ``percentile_approx`` meets
exactly on a set this small."""

from __future__ import annotations

import math

from logstream.catalog.families.response_time import RESPONSE_TIME
from tests.include.catalog.support import (
    assert_declared_invariants,
    assert_rows,
    ev,
    events,
    expected,
    shape,
    table,
)


def test_the_declaration_follows_the_spec():
    assert shape(RESPONSE_TIME) == (
        "events",
        ("service",),
        "1 minute",
        None,
        "5 minutes",
        "request_count",
    )
    assert RESPONSE_TIME.key_filter == ()


def test_statistics_and_percentiles_per_service_and_minute(spark):
    api = [
        ev("12:00:05", service="api", response_time=0.1),
        ev("12:00:20", service="api", response_time=0.4),
        ev("12:00:30", service="api", response_time=0.2),
        ev("12:00:59.999999", service="api", response_time=0.3),
        ev("12:00:40", service="api", response_time=None),  # counted, not measured
        ev("12:01:00", service="api", response_time=2.0),  # at the window's end: the next one
    ]
    # 1.0, 2.0, ..., 20.0 s: p50 = 10 (10 of 20 at or below), p95 = 19 (19 of 20), p99 = 20
    web = [
        ev(f"12:00:{second:02d}", service="web", response_time=second + 1.0) for second in range(20)
    ]
    want = [
        expected(
            "12:00",
            "12:01",
            service="api",
            request_count=5,
            avg_response_time=0.25,
            min_response_time=0.1,
            max_response_time=0.4,
            # squared deviations from 0.25: 0.0225 + 0.0025 + 0.0025 + 0.0225 = 0.05, over n - 1
            stddev_response_time=math.sqrt(0.05 / 3),
            p50_response_time=0.2,
            p95_response_time=0.4,
            p99_response_time=0.4,
        ),
        expected(
            "12:00",
            "12:01",
            service="web",
            request_count=20,
            avg_response_time=10.5,
            min_response_time=1.0,
            max_response_time=20.0,
            stddev_response_time=math.sqrt(35.0),  # sample variance of 1..n is n(n+1)/12
            p50_response_time=10.0,
            p95_response_time=19.0,
            p99_response_time=20.0,
        ),
        expected(
            "12:01",
            "12:02",
            service="api",
            request_count=1,
            avg_response_time=2.0,
            min_response_time=2.0,
            max_response_time=2.0,
            stddev_response_time=None,  # a sample of one has no deviation
            p50_response_time=2.0,
            p95_response_time=2.0,
            p99_response_time=2.0,
        ),
    ]
    assert_rows(table(RESPONSE_TIME, events(spark, api + web)), want)
    assert_declared_invariants(RESPONSE_TIME, want)


def test_a_window_without_response_times_counts_its_requests_only(spark):
    frame = events(
        spark,
        [
            ev("12:00:01", service="static", response_time=None),
            ev("12:00:02", service="static", response_time=None),
        ],
    )
    want = [
        expected(
            "12:00",
            "12:01",
            service="static",
            request_count=2,
            avg_response_time=None,
            min_response_time=None,
            max_response_time=None,
            stddev_response_time=None,
            p50_response_time=None,
            p95_response_time=None,
            p99_response_time=None,
        )
    ]
    assert_rows(table(RESPONSE_TIME, frame), want)
    assert_declared_invariants(RESPONSE_TIME, want)
