"""The Data Docs site: built from a run's validations with a page per failed suite, kept on a
local folder, and pruned of old pages."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from logstream.batch.quality.docs import docs_dir, prune_docs
from logstream.errors import ConfigError
from tests.include.batch.quality.support import error_rate_row, validate


def test_docs_site_links_each_suite(run, spark, settings):
    outcome = validate(run, spark, settings, "error_rate", [error_rate_row(0, error_count=-1)])
    index = run.build_docs([outcome])
    assert index.startswith("file://") and index.endswith("index.html")
    assert outcome.docs_page.startswith("file://")
    assert (run.site_dir / "index.html").exists()


def test_docs_dir_is_local(settings, tmp_path):
    assert docs_dir(settings.replace(reports_dir=str(tmp_path))) == tmp_path / "data_docs"
    assert docs_dir(settings.replace(reports_dir=f"file://{tmp_path}")) == tmp_path / "data_docs"
    with pytest.raises(ConfigError, match="not a local folder"):
        docs_dir(settings.replace(reports_dir="s3a://bucket/reports"))


def test_prune_docs_keeps_recent_pages(tmp_path):
    old = tmp_path / "validations" / "events" / "run-a" / "old.html"
    new = tmp_path / "validations" / "events" / "run-b" / "new.html"
    for page in (old, new):
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    now = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    os.utime(old, (now - 31 * 86_400, now - 31 * 86_400))
    os.utime(new, (now - 29 * 86_400, now - 29 * 86_400))
    assert prune_docs(tmp_path, keep_days=30, now=now) == 1
    assert not old.parent.exists() and new.exists()
