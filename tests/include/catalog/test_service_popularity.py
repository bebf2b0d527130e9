"""``service_popularity`` (SPEC §5.1.6): requests and distinct users per service and minute.
Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.service_popularity import SERVICE_POPULARITY
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
    assert shape(SERVICE_POPULARITY) == (
        "events",
        ("service",),
        "1 minute",
        None,
        "5 minutes",
        "request_count",
    )
    assert SERVICE_POPULARITY.key_filter == ()


def test_requests_and_distinct_users_per_service_and_minute(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", service="api", user_id="u1"),
            ev("12:00:10", service="api", user_id="u1"),
            ev("12:00:20", service="api", user_id="u2"),
            ev("12:00:30", service="api", user_id=None),
            ev("12:00:40", service="web", user_id=None),  # requests without users: 0 users
            ev("12:01:00", service="api", user_id="u3"),  # at the window's end: the next one
        ],
    )
    want = [
        expected("12:00", "12:01", service="api", request_count=4, unique_users=2),
        expected("12:00", "12:01", service="web", request_count=1, unique_users=0),
        expected("12:01", "12:02", service="api", request_count=1, unique_users=1),
    ]
    assert_rows(table(SERVICE_POPULARITY, frame), want)
    assert_declared_invariants(SERVICE_POPULARITY, want)
