"""Pieces of the reconciliation report that need no Spark: durations, where the report goes and
when it can be read back."""

from __future__ import annotations

import json
from datetime import date

from logstream.batch.reconcile_report import format_duration_ms, read_report, report_path

D = date(2026, 11, 25)


def test_format_duration():
    assert format_duration_ms(None) == "n/a"
    assert format_duration_ms(250) == "250ms"
    assert format_duration_ms(59_000) == "59s"
    assert format_duration_ms(61_500) == "1m01s"
    assert format_duration_ms(3_723_000) == "1h02m03s"


def test_the_report_is_read_back_from_a_file_uri_folder(settings, tmp_path):
    local = settings.replace(reports_dir=f"file://{tmp_path}/")
    assert report_path(local, D) == f"file://{tmp_path}/reconciliation/2026-11-25.json"
    assert read_report(local, D) is None  # not written yet
    (tmp_path / "reconciliation").mkdir()
    (tmp_path / "reconciliation" / "2026-11-25.json").write_text(json.dumps({"totals": {}}))
    assert read_report(local, D) == {"totals": {}}
