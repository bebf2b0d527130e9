"""The warm-up: after the first signed-in request, today's reads repeat in the background."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pyarrow as pa

from logstream.config import Settings
from logstream.console import tables, warm
from tests.include.console.conftest import UTC_TIME, write


def test_touch_warms_today_and_keeps_warming(tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path)
    today = datetime.now(UTC).date()
    start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    write(
        tables.day_folder(settings, "late_events", today),
        {
            "service": (pa.string(), ["api"]),
            "lateness_ms": (pa.int64(), [1000]),
            "event_time": (UTC_TIME, [start]),
        },
    )
    calls = []

    def load() -> Settings:
        calls.append(time.monotonic())
        return settings

    warmer = warm.Warmer(load, interval_s=0.05)
    assert calls == []  # nothing before the first request
    warmer.touch()
    try:
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        warmer.stop()
    assert len(calls) >= 2  # warmed, then warmed again
    key = (
        (str(tables.day_folder(settings, "late_events", today)),),
        ("service", "lateness_ms"),
    )
    cached = tables.CACHE.get(key)
    assert cached is not None and cached.table["service"].to_pylist() == ["api"]
