"""Which day, suites and parameter values a quality run checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logstream.batch.quality.plan import expectation_parameters, plan_run, resolve_suites
from logstream.errors import ConfigError
from tests.include.batch.quality.support import DAY, NOW


def test_parameters():
    finished = expectation_parameters(DAY, now=NOW)
    assert finished["fresh_since"] == datetime(2026, 1, 14, 23, 0, tzinfo=UTC)
    assert finished["day_start"] == datetime(2026, 1, 14, tzinfo=UTC)
    assert finished["day_end"] == datetime(2026, 1, 15, tzinfo=UTC)
    during = expectation_parameters(
        DAY, {"freshness_minutes": "15"}, now=datetime(2026, 1, 14, 9, 0)
    )
    assert during["fresh_since"] == datetime(2026, 1, 14, 8, 45, tzinfo=UTC)
    given = expectation_parameters(DAY, {"fresh_since": "2026-01-14T12:00:00+01:00"}, now=NOW)
    assert given["fresh_since"] == datetime(2026, 1, 14, 11, 0, tzinfo=UTC)
    for bad in ({"fresh_since": "noon"}, {"freshness_minutes": "soon"}, {"colour": "red"}):
        with pytest.raises(ConfigError):
            expectation_parameters(DAY, bad)


def test_suite_selection(settings):
    everything = resolve_suites(settings, None)
    assert {"events", "quarantine", "anomalies", "user_events", "late_events"} <= set(everything)
    assert {"response_time", "reconciled/response_time", "cross/request_counts"} <= set(everything)
    assert len(everything) == 6 + 2 * 12 + 1
    streamed = resolve_suites(settings, "streamed")
    assert not any(name.startswith(("reconciled/", "cross/")) for name in streamed)
    assert resolve_suites(settings, "sla, events") == ["events", "sla"]
    with pytest.raises(ConfigError, match="unknown quality suite 'nope'"):
        resolve_suites(settings, "nope")


def test_plan_run():
    hourly = datetime(2026, 1, 14, 10, 15, tzinfo=UTC)
    assert plan_run("scheduled", hourly) == {"date": "2026-01-14", "suites": "streamed"}
    assert plan_run("backfill", hourly) == {"date": "2026-01-14", "suites": "streamed"}
    assert plan_run("manual", hourly) == {"date": "2026-01-13", "suites": "all"}
    assert plan_run("asset_triggered", None, asset_extras=[{"dates": ["2026-01-10"]}]) == {
        "date": "2026-01-10",
        "suites": "all",
    }
    backfilled = [{"days": ["2015-05-17", "2015-05-18"], "origin": "backfill"}]
    assert plan_run("asset_triggered", None, asset_extras=backfilled) == {
        "date": "2015-05-18",
        "suites": "reconciled",
    }
    assert plan_run("manual", hourly, "2026-01-01", "events") == {
        "date": "2026-01-01",
        "suites": "events",
    }
    with pytest.raises(ConfigError):
        plan_run("manual", hourly, "yesterday")
