"""``sla`` (SPEC §5.1.4): availability (status 200) and performance (response time <= 1.0 s)
per service and minute. Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.sla import SLA
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
    assert shape(SLA) == ("events", ("service",), "1 minute", None, "5 minutes", "total_requests")
    assert SLA.key_filter == ()


def test_fast_means_at_most_one_second_and_successful_means_status_200(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", service="api", response_time=0.5, status_code=200),  # fast, ok
            ev("12:00:01", service="api", response_time=1.0, status_code=200),  # fast, ok
            ev("12:00:02", service="api", response_time=1.000001, status_code=200),  # ok
            ev("12:00:03", service="api", response_time=0.2, status_code=201),  # fast
            ev("12:00:04", service="api", response_time=None, status_code=200),  # ok
            ev("12:00:05", service="api", response_time=3.0, status_code=500),  # neither
            ev("12:01:00", service="api", response_time=0.1, status_code=200),  # next window
        ],
    )
    want = [
        expected(
            "12:00",
            "12:01",
            service="api",
            total_requests=6,
            fast_requests=3,
            successful_requests=4,
            availability_pct=4 / 6 * 100,
            performance_pct=50.0,
        ),
        expected(
            "12:01",
            "12:02",
            service="api",
            total_requests=1,
            fast_requests=1,
            successful_requests=1,
            availability_pct=100.0,
            performance_pct=100.0,
        ),
    ]
    assert_rows(table(SLA, frame), want)
    assert_declared_invariants(SLA, want)
