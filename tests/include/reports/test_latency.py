"""Where the latency report's files go. Writing and delivering them runs against a real Spark in
tests/integration/test_latency_report.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from logstream.errors import ConfigError
from logstream.reports.latency import report_folder


def test_the_report_folder_is_under_reports_dir_local_or_shared(settings, tmp_path: Path):
    assert report_folder(settings.replace(reports_dir=str(tmp_path))) == tmp_path / "latency"
    assert report_folder(settings.replace(reports_dir=f"file://{tmp_path}")) == (
        tmp_path / "latency"
    )
    assert report_folder(settings.replace(reports_dir="s3a://bucket/reports/")) == (
        "s3a://bucket/reports/latency"
    )
    assert (
        report_folder(settings.replace(reports_dir="hdfs://nn:8020/r"))
        == "hdfs://nn:8020/r/latency"
    )
    with pytest.raises(ConfigError, match="not supported outside Spark"):
        report_folder(settings.replace(reports_dir="abfss://c@account/reports"))
