"""Fixtures shared by the supervisor tests: settings with the test's own state, checkpoints,
status files and alert file, and the stand-in job processes a test starts (killed afterwards)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from logstream.config import Settings


@pytest.fixture
def run(settings: Settings, tmp_path) -> Settings:
    """Settings with this test's own state, checkpoints, status files and alert file."""
    return settings.replace(
        state_dir=tmp_path / "state",
        checkpoint_root=str(tmp_path / "checkpoints"),
        status_dir=str(tmp_path / "status"),
        alert_sink=f"jsonl:{tmp_path / 'alerts.jsonl'}",
        logs_topic="logs-a",
        user_events_topic="user-events-a",
        supervisor_backoff_seconds=10,
        supervisor_max_restarts=3,
        supervisor_restart_window_minutes=30,
        supervisor_stall_seconds=300,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=10)
