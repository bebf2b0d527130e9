"""``ip_requests`` (the input of the DDoS rule, SPEC §5.2.3): requests and distinct users per
client IP and minute. Expected rows are counted by hand."""

from __future__ import annotations

from logstream.catalog.families.ip_requests import IP_REQUESTS
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
    assert shape(IP_REQUESTS) == (
        "events",
        ("ip_address",),
        "1 minute",
        None,
        "5 minutes",
        "request_count",
    )
    assert IP_REQUESTS.key_filter == ("ip_address",)


def test_requests_and_distinct_users_per_ip_and_minute(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", ip_address="10.0.0.1", user_id="u1"),
            ev("12:00:10", ip_address="10.0.0.1", user_id="u1"),
            ev("12:00:20", ip_address="10.0.0.1", user_id="u2"),
            ev("12:00:30", ip_address="10.0.0.1", user_id=None),
            ev("12:01:00", ip_address="10.0.0.1", user_id="u1"),  # at the window's end: next
            ev("12:00:59", ip_address="10.0.0.2", user_id=None),
            ev("12:00:00", ip_address=None, user_id="u5"),  # no IP: left out
        ],
    )
    want = [
        expected("12:00", "12:01", ip_address="10.0.0.1", request_count=4, unique_users=2),
        expected("12:00", "12:01", ip_address="10.0.0.2", request_count=1, unique_users=0),
        expected("12:01", "12:02", ip_address="10.0.0.1", request_count=1, unique_users=1),
    ]
    assert_rows(table(IP_REQUESTS, frame), want)
    assert_declared_invariants(IP_REQUESTS, want)
