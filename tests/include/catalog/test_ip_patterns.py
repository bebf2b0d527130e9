"""``ip_patterns`` (SPEC §5.1.3): requests, distinct users and the sorted set of services per
client IP over 5-minute windows. Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.ip_patterns import IP_PATTERNS
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
    assert shape(IP_PATTERNS) == (
        "events",
        ("ip_address",),
        "5 minutes",
        None,
        "10 minutes",
        "request_count",
    )
    assert IP_PATTERNS.key_filter == ("ip_address",)


def test_requests_users_and_sorted_services_per_ip_over_five_minutes(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", ip_address="10.0.0.1", service="web", user_id="u1"),
            ev("12:01:00", ip_address="10.0.0.1", service="api", user_id="u2"),
            ev("12:03:00", ip_address="10.0.0.1", service="auth", user_id=None),
            ev("12:04:59.999999", ip_address="10.0.0.1", service="web", user_id="u1"),
            ev("12:05:00", ip_address="10.0.0.1", service="web", user_id="u1"),  # next window
            ev("12:02:00", ip_address="10.0.0.2", service="api", user_id="u3"),
            ev("12:02:00", ip_address=None, service="web", user_id="u9"),  # no IP: left out
        ],
    )
    want = [
        expected(
            "12:00",
            "12:05",
            ip_address="10.0.0.1",
            request_count=4,
            unique_users=2,  # u1, u2; a request without a user counts as no user
            services_used=["api", "auth", "web"],
        ),
        expected(
            "12:00",
            "12:05",
            ip_address="10.0.0.2",
            request_count=1,
            unique_users=1,
            services_used=["api"],
        ),
        expected(
            "12:05",
            "12:10",
            ip_address="10.0.0.1",
            request_count=1,
            unique_users=1,
            services_used=["web"],
        ),
    ]
    assert_rows(table(IP_PATTERNS, frame), want)
    assert_declared_invariants(IP_PATTERNS, want)
