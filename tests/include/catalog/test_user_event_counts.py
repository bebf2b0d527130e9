"""``user_event_counts`` (the input of the high-activity rule, SPEC §5.2.5): a user's events in
5-minute windows sliding 2 minutes. Windows start on even minutes; an event lies in every window
that starts at or before it and ends after it (two or three of them). Counted by hand."""

from __future__ import annotations

from datetime import date

from logstream.catalog.families.user_event_counts import USER_EVENT_COUNTS
from tests.include.catalog.support import (
    DAY,
    assert_declared_invariants,
    assert_rows,
    ev,
    expected,
    shape,
    table,
    ts,
    user_events,
)

NEXT_DAY = date(2026, 11, 26)


def test_the_declaration_follows_the_spec():
    assert shape(USER_EVENT_COUNTS) == (
        "user_events",
        ("user_id",),
        "5 minutes",
        "2 minutes",
        "5 minutes",
        "event_count",
    )
    assert USER_EVENT_COUNTS.key_filter == ("user_id",)


def test_events_per_user_in_overlapping_windows(spark):
    frame = user_events(
        spark,
        [
            ev("12:00:30", user_id="u1"),  # 11:56, 11:58, 12:00
            ev("12:03:00", user_id="u1"),  # 12:00, 12:02 (11:58-12:03 ends at it)
            ev("12:01:00", user_id="u2"),  # 11:58, 12:00 (11:56-12:01 ends at it)
            ev("12:00:00", user_id=None),  # no user: left out
        ],
    )
    want = [
        expected("11:56", "12:01", user_id="u1", event_count=1),
        expected("11:58", "12:03", user_id="u1", event_count=1),
        expected("11:58", "12:03", user_id="u2", event_count=1),
        expected("12:00", "12:05", user_id="u1", event_count=2),
        expected("12:00", "12:05", user_id="u2", event_count=1),
        expected("12:02", "12:07", user_id="u1", event_count=1),
    ]
    assert_rows(table(USER_EVENT_COUNTS, frame), want)
    assert_declared_invariants(USER_EVENT_COUNTS, want)


def test_a_window_across_midnight_is_dated_by_its_start(spark):
    frame = user_events(spark, [ev(ts("00:01", NEXT_DAY), user_id="u1")])
    want = [
        expected(ts("23:58"), ts("00:03", NEXT_DAY), user_id="u1", event_count=1, window_date=DAY),
        expected(
            ts("00:00", NEXT_DAY),
            ts("00:05", NEXT_DAY),
            user_id="u1",
            event_count=1,
            window_date=NEXT_DAY,
        ),
    ]
    assert_rows(table(USER_EVENT_COUNTS, frame), want)
    assert_declared_invariants(USER_EVENT_COUNTS, want)
