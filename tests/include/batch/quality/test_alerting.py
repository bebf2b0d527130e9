"""The on-call alert of a failed run, built from a real failed validation."""

from __future__ import annotations

from logstream.batch.quality.alerting import quality_alert
from logstream.batch.quality.result import QualityResult
from tests.include.batch.quality.support import DAY, error_rate_row, validate


def test_alert_names_the_failed_suite_and_expectation(run, spark, settings):
    outcome = validate(run, spark, settings, "error_rate", [error_rate_row(0, error_count=-1)])
    index = run.build_docs([outcome])
    result = QualityResult(
        day=DAY.isoformat(),
        success=False,
        suites=[outcome],
        parameters={},
        data_docs_index=index,
    )
    alert = quality_alert(result)
    assert alert.kind == "quality_failure"
    assert alert.dedup_key == "quality:2026-01-14:error_rate"
    assert "error_rate" in alert.summary
    assert any("error_count" in line for line in alert.details["failed_expectations"])
    assert alert.links["data_docs"] == index
    assert alert.links["data_docs:error_rate"] == outcome.docs_page
    assert QualityResult.from_dict(result.to_dict()).failures[0].column == "error_count"

    with_log = quality_alert(result, {"log": "http://airflow/log"})
    assert with_log.links["log"] == "http://airflow/log"
