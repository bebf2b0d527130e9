"""The restart policy: backoff, the restart window, and what one watchdog step decides."""

from __future__ import annotations

import pytest

from logstream.supervisor.policy import backoff_delay, decide, restarts_in_window, window_bucket
from tests.include.supervisor.support import NOW


def test_backoff_doubles_per_recent_restart():
    assert [backoff_delay(n, 10) for n in range(5)] == [0, 10, 20, 40, 80]


def test_restarts_count_only_inside_the_window():
    times = [NOW - 31 * 60, NOW - 29 * 60, NOW - 60, NOW]
    assert restarts_in_window(times, NOW, 30) == 3
    assert restarts_in_window(times, NOW, 1) == 1


@pytest.mark.parametrize(
    ("state", "ago", "action", "remaining"),
    [
        ("running", [], "none", 0),
        ("starting", [], "none", 0),
        ("held", [], "none", 0),
        ("stopped", [], "start", 0),
        ("failed", [], "restart", 0),
        ("stalled", [], "restart", 0),
        ("failed", [4], "wait", 6),  # 1 recent restart: 10 s backoff, 4 s elapsed
        ("failed", [11], "restart", 0),
        ("failed", [300, 15], "wait", 5),  # 2 recent restarts: 20 s backoff
        ("failed", [300, 25], "restart", 0),
        ("failed", [900, 300, 100], "page", 0),  # 3 within 30 min = restart loop
        ("failed", [3600, 2000, 100], "restart", 0),  # two are outside the window
    ],
)
def test_decide(run, state, ago, action, remaining):
    decision = decide(state, [NOW - s for s in ago], NOW, run)
    assert decision.action == action
    assert decision.backoff_remaining_s == pytest.approx(remaining)


def test_window_bucket_changes_once_per_window():
    start = 1_800_000_000 - 1_800_000_000 % 1800  # a 30-minute boundary
    assert window_bucket(start, 30) == window_bucket(start + 1799, 30)
    assert window_bucket(start + 1800, 30) == window_bucket(start, 30) + 1
