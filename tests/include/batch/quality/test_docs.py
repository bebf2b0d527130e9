"""The Data Docs site: built from a run's validations with a page per failed suite, kept on a
local folder, and pruned of old pages."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from logstream.batch.quality.docs import docs_dir, prune_docs
from logstream.errors import ConfigError
from tests.include.batch.quality.support import (
    DAY,
    T0,
    error_rate_row,
    event_row,
    failed,
    validate,
)
from tests.include.reports.hostile import HOSTILE, assert_shown_as_text


def test_docs_site_links_each_suite(run, spark, settings):
    outcome = validate(run, spark, settings, "error_rate", [error_rate_row(0, error_count=-1)])
    index = run.build_docs([outcome])
    assert index.startswith("file://") and index.endswith("index.html")
    assert outcome.docs_page.startswith("file://")
    assert (run.site_dir / "index.html").exists()


def test_docs_dir_is_under_reports_dir_local_or_shared(settings, tmp_path):
    assert docs_dir(settings.replace(reports_dir=str(tmp_path))) == tmp_path / "data_docs"
    assert docs_dir(settings.replace(reports_dir=f"file://{tmp_path}")) == tmp_path / "data_docs"
    shared = settings.replace(reports_dir="s3a://bucket/reports")
    assert docs_dir(shared) == "s3a://bucket/reports/data_docs"
    with pytest.raises(ConfigError, match="not supported outside Spark"):
        docs_dir(settings.replace(reports_dir="gs://bucket/reports"))


def pages_31_and_29_days_old(site):
    """Two validation pages under ``site``, 31 and 29 days old at the returned ``now``."""
    old = site / "validations" / "events" / "run-a" / "old.html"
    new = site / "validations" / "events" / "run-b" / "new.html"
    for page in (old, new):
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    now = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    os.utime(old, (now - 31 * 86_400, now - 31 * 86_400))
    os.utime(new, (now - 29 * 86_400, now - 29 * 86_400))
    return old, new, now


def test_prune_docs_keeps_recent_pages(tmp_path):
    old, new, now = pages_31_and_29_days_old(tmp_path)
    assert prune_docs(tmp_path, keep_days=30, now=now) == 1
    assert not old.parent.exists() and new.exists()


# -- hostile sample values ------------------------------------------------------------------------


def pl_row(minute: int, **changes) -> dict:
    """A consistent ``processing_latency`` row (ms)."""
    start = T0 + timedelta(minutes=minute)
    row = {
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "service": "api",
        "record_count": 2,
        "avg_latency_ms": 150.0,
        "max_latency_ms": 200.0,
        "min_latency_ms": 100.0,
        "alert_level": "OK",
        "window_date": DAY,
    }
    row.update(changes)
    return row


def _page(outcome) -> str:
    assert outcome.docs_page.startswith("file://")
    return Path(outcome.docs_page.removeprefix("file://").split("?")[0]).read_text()


def test_data_docs_show_hostile_sample_values_as_text(run, spark, settings):
    """GX 1.x pastes sampled values into its pages unescaped; the site escapes them first."""
    levels = [
        pl_row(minute, service=value, alert_level=value) for minute, value in enumerate(HOSTILE)
    ]
    latency = validate(run, spark, settings, "processing_latency", levels)
    events = [
        event_row(n, event_id=value, service=value, path=value, user_agent=value, user_id=value)
        for n, value in enumerate([*HOSTILE, *HOSTILE])  # each id twice: not unique
    ]
    bronze = validate(run, spark, settings, "events", events)
    assert ("expect_column_values_to_be_in_set", "alert_level") in failed(latency)
    assert ("expect_column_values_to_be_unique", "event_id") in failed(bronze)
    # the verdict keeps the values as they are
    samples = {
        str(item.get("alert_level"))
        for failure in latency.failures
        if failure.column == "alert_level"
        for item in failure.sample
    }
    assert samples == set(HOSTILE)

    run.build_docs([latency, bronze])

    assert_shown_as_text(_page(latency), shown=HOSTILE, own_scripts=True)
    # five sampled rows of ten duplicates: some of the values, each shown as text
    shown = assert_shown_as_text(_page(bronze), shown=(), own_scripts=True)
    assert sum(value in shown for value in HOSTILE) >= 2
    assert_shown_as_text((run.site_dir / "index.html").read_text(), shown=(), own_scripts=True)


def test_prune_docs_of_a_shared_site_goes_through_storage(settings, tmp_path):
    from logstream.storage.fs import Storage

    old, new, now = pages_31_and_29_days_old(tmp_path)
    site = f"file://{tmp_path}"  # a location string: the same code path as hdfs:// and s3a://
    assert prune_docs(site, keep_days=30, now=now, storage=Storage(settings)) == 1
    assert not old.exists() and new.exists()
    assert not old.exists() and new.exists()
