"""``action_metrics`` (SPEC §5.3): per action, 2-minute windows sliding 1 minute: events,
distinct users and value statistics. Expected rows are worked out by hand: an event lies in the
two windows that start at or before it and end after it."""

from __future__ import annotations

from logstream.catalog.families.action_metrics import ACTION_METRICS
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
    assert shape(ACTION_METRICS) == (
        "user_events",
        ("action",),
        "2 minutes",
        "1 minute",
        "5 minutes",
        "action_count",
    )
    assert ACTION_METRICS.key_filter == ("action",)


def _row(start: str, end: str, action: str, count: int, users: int, values: list[float]) -> dict:
    return expected(
        start,
        end,
        action=action,
        action_count=count,
        unique_users=users,
        avg_value=sum(values) / len(values) if values else None,
        max_value=max(values) if values else None,
        min_value=min(values) if values else None,
    )


def test_sliding_windows_per_action(spark):
    frame = user_events(
        spark,
        [
            ev("12:00:30", action="click", user_id="u1", value=1.0),  # 11:59, 12:00
            ev("12:01:00", action="click", user_id="u2", value=3.0),  # 12:00, 12:01
            ev("12:01:30", action="click", user_id="u1", value=2.0),  # 12:00, 12:01
            ev("12:02:00", action="view", user_id="u1", value=None),  # 12:01, 12:02
            ev("12:03:10", action="buy", user_id=None, value=5.0),  # 12:02, 12:03
            ev("12:00:30", action=None, user_id="u9", value=100.0),  # no action: left out
        ],
    )
    want = [
        _row("11:59", "12:01", "click", 1, 1, [1.0]),
        _row("12:00", "12:02", "click", 3, 2, [1.0, 3.0, 2.0]),
        _row("12:01", "12:03", "click", 2, 2, [3.0, 2.0]),
        _row("12:01", "12:03", "view", 1, 1, []),
        _row("12:02", "12:04", "buy", 1, 0, [5.0]),
        _row("12:02", "12:04", "view", 1, 1, []),
        _row("12:03", "12:05", "buy", 1, 0, [5.0]),
    ]
    assert_rows(table(ACTION_METRICS, frame), want)
    assert_declared_invariants(ACTION_METRICS, want)
