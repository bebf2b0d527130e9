"""The restart policy: what one watchdog step does for a job in a given state, given its past
restarts. Pure functions of their arguments (time is passed in), so every case is a table test.

A dead or stalled job is restarted at once the first time, then after a backoff of
``supervisor_backoff_seconds x 2^(n-1)`` for ``n`` restarts within the window; after
``supervisor_max_restarts`` restarts within ``supervisor_restart_window_minutes`` it is a restart
loop: on-call is paged (once per window) and the job is not restarted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from logstream.config import Settings


def restarts_in_window(restart_times: Sequence[float], now: float, window_minutes: int) -> int:
    """How many of ``restart_times`` fall within the ``window_minutes`` before ``now``."""
    return sum(1 for at in restart_times if 0 <= now - at < window_minutes * 60)


def backoff_delay(recent_restarts: int, base_seconds: float) -> float:
    """Delay before the next restart: 0 without recent restarts, then base x 2^(n-1)."""
    return 0.0 if recent_restarts <= 0 else base_seconds * 2 ** (recent_restarts - 1)


def window_bucket(now: float, window_minutes: int) -> int:
    """The restart window ``now`` falls in: one page per restart loop and window."""
    return math.floor(now / (window_minutes * 60))


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` chose, and why."""

    action: str  # none | start | restart | wait | page
    reason: str
    restarts_in_window: int = 0
    backoff_remaining_s: float = 0.0


def decide(state: str, restart_times: Sequence[float], now: float, settings: Settings) -> Decision:
    """What one watchdog step does for a job in ``state`` given the past restarts."""
    if state in {"running", "starting"}:
        return Decision("none", f"job is {state}")
    if state == "held":
        return Decision("none", "job is held stopped by an operator; trigger with action=start")
    if state == "stopped":
        return Decision("start", "job not running yet")
    recent = restarts_in_window(restart_times, now, settings.supervisor_restart_window_minutes)
    if recent >= settings.supervisor_max_restarts:
        return Decision(
            "page",
            f"{recent} restarts within {settings.supervisor_restart_window_minutes} minutes "
            f"(limit {settings.supervisor_max_restarts}): restart loop",
            recent,
        )
    if recent:
        last = max(t for t in restart_times if now - t >= 0)
        remaining = backoff_delay(recent, settings.supervisor_backoff_seconds) - (now - last)
        if remaining > 0:
            return Decision("wait", f"backing off {remaining:.0f}s more", recent, remaining)
    return Decision("restart", f"job is {state}", recent)
