"""``user_activity`` (SPEC §5.1.5): requests, distinct services and mean response time per user
over 5-minute windows. Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.user_activity import USER_ACTIVITY
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
    assert shape(USER_ACTIVITY) == (
        "events",
        ("user_id",),
        "5 minutes",
        None,
        "10 minutes",
        "activity_count",
    )
    assert USER_ACTIVITY.key_filter == ("user_id",)


def test_requests_services_and_mean_response_time_per_user_over_five_minutes(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", user_id="u1", service="web", response_time=0.2),
            ev("12:02:00", user_id="u1", service="api", response_time=0.4),
            ev("12:04:00", user_id="u1", service="web", response_time=None),
            ev("12:05:00", user_id="u1", service="web", response_time=1.0),  # next window
            ev("12:03:00", user_id="u2", service="web", response_time=0.3),
            ev("12:01:00", user_id=None, service="web", response_time=0.9),  # no user: left out
        ],
    )
    want = [
        expected(
            "12:00",
            "12:05",
            user_id="u1",
            activity_count=3,
            distinct_services=2,
            avg_response_time=0.3,  # (0.2 + 0.4) / 2: a request without a time is not averaged
        ),
        expected(
            "12:00",
            "12:05",
            user_id="u2",
            activity_count=1,
            distinct_services=1,
            avg_response_time=0.3,
        ),
        expected(
            "12:05",
            "12:10",
            user_id="u1",
            activity_count=1,
            distinct_services=1,
            avg_response_time=1.0,
        ),
    ]
    assert_rows(table(USER_ACTIVITY, frame), want)
    assert_declared_invariants(USER_ACTIVITY, want)
