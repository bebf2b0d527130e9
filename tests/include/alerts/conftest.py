"""Fixtures shared by the alert tests: one hand-written alert, fast delivery settings, a loopback
HTTP receiver and an environment without channel configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logstream.alerts.model import Alert
from logstream.config import Settings
from tests.helpers import CHANNEL_ENV, Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No channel configuration leaks in from the machine running the tests."""
    for name in CHANNEL_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def alert_settings(tmp_path: Path) -> Settings:
    return Settings.load(
        env={}, state_dir=tmp_path, alert_timeout_s=0.5, alert_retries=3, alert_dedup_seconds=600
    )


@pytest.fixture
def alert() -> Alert:
    return Alert(
        dedup_key="anomaly:abc123",
        kind="error_rate_spike",
        severity="critical",
        summary="error_rate_spike checkout: 42.0% errors (baseline 1.5%)",
        details={"entity": "checkout", "observed": 42.0, "threshold": 10.0},
        links={
            "run": "http://airflow.local/dags/d/runs/r1",
            "table": "/data/anomalies",
            "window": "2026-01-01T00:00:00/2026-01-01T00:01:00",
        },
        created_at="2026-01-01T00:02:00+00:00",
    )
