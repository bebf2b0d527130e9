"""``error_rate`` (SPEC §5.1.2): requests, errors (status >= 400) and their percentage per
service and minute. Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.error_rate import ERROR_RATE
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
    assert shape(ERROR_RATE) == (
        "events",
        ("service",),
        "1 minute",
        None,
        "5 minutes",
        "total_requests",
    )
    assert ERROR_RATE.key_filter == ()


def test_errors_are_statuses_from_400_per_service_and_minute(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", service="api", status_code=200),
            ev("12:00:30", service="api", status_code=500),
            ev("12:00:59.999999", service="api", status_code=200),
            ev("12:01:00", service="api", status_code=404),  # at the window's end: the next one
            ev("12:00:10", service="web", status_code=399),
            ev("12:00:11", service="web", status_code=400),
            ev("12:00:12", service="web", status_code=None),  # no status: a request, no error
            ev("12:00:13", service="web", status_code=201),
            ev("12:00:20", service="pay", status_code=200),
            ev("12:00:21", service="pay", status_code=302),
        ],
    )
    want = [
        expected(
            "12:00",
            "12:01",
            service="api",
            total_requests=3,
            error_count=1,
            error_rate=100 / 3,
        ),
        expected("12:00", "12:01", service="pay", total_requests=2, error_count=0, error_rate=0.0),
        expected("12:00", "12:01", service="web", total_requests=4, error_count=1, error_rate=25.0),
        expected(
            "12:01", "12:02", service="api", total_requests=1, error_count=1, error_rate=100.0
        ),
    ]
    assert_rows(table(ERROR_RATE, frame), want)
    assert_declared_invariants(ERROR_RATE, want)
