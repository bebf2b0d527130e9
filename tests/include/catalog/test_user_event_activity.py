"""``user_event_activity`` (SPEC §5.3): per user, 1-minute windows sliding 30 s: events,
distinct actions, total value and the actions in event-time order. Expected rows are worked out
by hand: an event lies in the two windows that start at or before it and end after it."""

from __future__ import annotations

from logstream.catalog.families.user_event_activity import USER_EVENT_ACTIVITY
from tests.include.catalog.support import (
    assert_declared_invariants,
    assert_rows,
    ev,
    expected,
    shape,
    table,
    user_events,
)


def test_the_declaration_follows_the_spec():
    assert shape(USER_EVENT_ACTIVITY) == (
        "user_events",
        ("user_id",),
        "1 minute",
        "30 seconds",
        "5 minutes",
        "total_events",
    )
    assert USER_EVENT_ACTIVITY.key_filter == ("user_id",)


def test_sliding_windows_and_the_action_sequence(spark):
    frame = user_events(
        spark,
        [
            ev("12:00:10", user_id="u1", action="click", value=1.0),
            ev("12:00:10", user_id="u1", action="add", value=2.0),  # same time: by action
            ev("12:00:40", user_id="u1", action="view", value=None),
            ev("12:00:30", user_id="u1", action="click", value=0.5),  # on a slide boundary
            ev("12:00:50", user_id="u2", action="view", value=4.0),
            ev("12:01:40", user_id="u3", action="view", value=None),
            ev("12:00:20", user_id=None, action="click", value=9.0),  # no user: left out
        ],
    )
    want = [
        expected(
            "11:59:30",
            "12:00:30",
            user_id="u1",
            total_events=2,
            unique_actions=2,
            total_value=3.0,
            actions=["add", "click"],
        ),
        expected(
            "12:00:00",
            "12:01:00",
            user_id="u1",
            total_events=4,
            unique_actions=3,
            total_value=3.5,
            actions=["add", "click", "click", "view"],
        ),
        expected(
            "12:00:00",
            "12:01:00",
            user_id="u2",
            total_events=1,
            unique_actions=1,
            total_value=4.0,
            actions=["view"],
        ),
        expected(
            "12:00:30",
            "12:01:30",
            user_id="u1",
            total_events=2,
            unique_actions=2,
            total_value=0.5,
            actions=["click", "view"],
        ),
        expected(
            "12:00:30",
            "12:01:30",
            user_id="u2",
            total_events=1,
            unique_actions=1,
            total_value=4.0,
            actions=["view"],
        ),
        expected(
            "12:01:00",
            "12:02:00",
            user_id="u3",
            total_events=1,
            unique_actions=1,
            total_value=None,  # no value in the window
            actions=["view"],
        ),
        expected(
            "12:01:30",
            "12:02:30",
            user_id="u3",
            total_events=1,
            unique_actions=1,
            total_value=None,
            actions=["view"],
        ),
    ]
    assert_rows(table(USER_EVENT_ACTIVITY, frame), want)
    assert_declared_invariants(USER_EVENT_ACTIVITY, want)
