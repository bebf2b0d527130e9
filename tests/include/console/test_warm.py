"""The warm-up: from the server's start or the first request, today's reads repeat in the
background; while nobody uses the console, in one process only."""

from __future__ import annotations

import threading
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
    key = (str(tables.day_folder(settings, "late_events", today)), ("service", "lateness_ms"))
    cached = tables.CACHE.get(key)
    assert cached is not None and cached.table["service"].to_pylist() == ["api"]


def _recorded_warm_ups(monkeypatch) -> list[threading.Thread]:
    """The thread of each warm-up (warm_today itself is tested above)."""
    calls: list[threading.Thread] = []
    monkeypatch.setattr(
        warm, "warm_today", lambda settings: calls.append(threading.current_thread())
    )
    return calls


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_server_start_warms_in_one_process_only(tmp_path, monkeypatch):
    settings = Settings.load(env={}, state_dir=tmp_path)
    calls = _recorded_warm_ups(monkeypatch)
    first = warm.Warmer(lambda: settings, interval_s=0.05, idle_interval_s=0.05)
    other = warm.Warmer(lambda: settings, interval_s=0.05, idle_interval_s=0.05)

    def by(warmer: warm.Warmer) -> int:
        return sum(thread is warmer._thread for thread in calls)

    try:
        first.start()  # no request: idle, and it takes the lock
        _wait_for(lambda: by(first) >= 2)
        assert by(first) >= 2
        assert warm.lock_file(settings).exists()
        other.start()  # another API server worker, idle: the lock is taken
        time.sleep(0.5)
        assert by(other) == 0
        first.stop()  # ... until the first one lets go
        _wait_for(lambda: by(other) >= 2)
        assert by(other) >= 2
    finally:
        first.stop()
        other.stop()


def test_a_request_warms_without_the_lock(tmp_path, monkeypatch):
    settings = Settings.load(env={}, state_dir=tmp_path)
    calls = _recorded_warm_ups(monkeypatch)
    owner = warm.Warmer(lambda: settings, interval_s=60, idle_interval_s=60)
    busy = warm.Warmer(lambda: settings, interval_s=0.05, idle_interval_s=60)
    try:
        owner.start()
        _wait_for(lambda: len(calls) >= 1)
        busy.touch()  # a page asked for in this worker: it warms, lock or not
        _wait_for(lambda: len(calls) >= 3)
        assert len(calls) >= 3
    finally:
        owner.stop()
        busy.stop()


def test_the_root_middleware_starts_the_warm_up_with_the_server(tmp_path, monkeypatch):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from logstream.console.app import StartWarmUp, create_app

    settings = Settings.load(env={}, state_dir=tmp_path)
    calls = _recorded_warm_ups(monkeypatch)
    console = create_app(lambda: settings)
    root = FastAPI()
    root.add_middleware(StartWarmUp, console=console)
    root.mount("/logstream", console)
    try:
        assert calls == []
        with TestClient(root):  # runs the lifespan, as the API server does when it starts
            _wait_for(lambda: len(calls) >= 1)
        assert len(calls) >= 1  # without any request
    finally:
        console.state.warmer.stop()
