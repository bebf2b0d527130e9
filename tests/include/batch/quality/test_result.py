"""The verdict of a run: its lines and summary, and its JSON file written and read back."""

from __future__ import annotations

from datetime import date

import pytest

from logstream.batch.quality.result import (
    Failure,
    QualityFailedError,
    QualityResult,
    SuiteResult,
    judge_run,
    load_result,
    result_path,
    write_result,
)
from logstream.errors import LogstreamError
from tests.include.reports.hostile import HOSTILE


def verdict() -> QualityResult:
    negative = Failure(
        suite="error_rate",
        expectation="expect_column_values_to_be_between",
        column="error_count",
        unexpected_count=1,
        sample=[{"error_count": -1}],
        expected="min_value=0",
    )
    missing = Failure(
        suite="quarantine",
        expectation="expect_column_values_to_not_be_null",
        column="detail",
        error="column detail does not exist",
    )
    return QualityResult(
        day="2026-01-14",
        success=False,
        suites=[
            SuiteResult("events", True, 30),
            SuiteResult("error_rate", False, 20, [negative]),
            SuiteResult("quarantine", False, 25, [missing]),
        ],
        parameters={"fresh_since": "2026-01-14T23:00:00+00:00"},
        data_docs_index="file:///docs/index.html",
        run_id="manual__1",
    )


def test_failure_lines_and_summary():
    result = verdict()
    assert result.failed_suites == ["error_rate", "quarantine"]
    assert result.summary().splitlines() == [
        "quality 2026-01-14: 1/3 suites passed; failed: error_rate, quarantine",
        "  - error_rate: expect_column_values_to_be_between on error_count: "
        "1 unexpected, e.g. [{'error_count': -1}] (expected min_value=0)",
        "  - quarantine: expect_column_values_to_not_be_null on detail could not run: "
        "column detail does not exist",
        "  Data Docs: file:///docs/index.html",
    ]
    observed = Failure("events", "expect_column_max_to_be_between", "processing_time", "20:00")
    assert observed.line() == (
        "events: expect_column_max_to_be_between on processing_time: observed 20:00"
    )
    passed = QualityResult("2026-01-14", True, [SuiteResult("events", True, 30)], {}, "")
    assert passed.summary() == "quality 2026-01-14: 1/1 suites passed"


def test_written_result_reads_back(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    day = date(2026, 1, 14)
    assert load_result(local, day) is None
    path = write_result(local, verdict())
    assert path == result_path(local, day) == tmp_path / "quality" / "2026-01-14.json"
    assert [p.name for p in path.parent.iterdir()] == ["2026-01-14.json"]  # no partial file left
    assert load_result(local, day) == verdict()


def test_hostile_sample_values_read_back_as_they_were_from_embeddable_text(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    result = verdict()
    result.suites[1].failures[0].sample = [{"service": value} for value in HOSTILE]
    path = write_result(local, result)
    assert not {"<", ">", "&"} & set(path.read_text())
    assert load_result(local, date(2026, 1, 14)) == result


DAY = date(2026, 1, 14)


def test_judge_run_fails_for_good_on_a_failed_suite_even_if_the_job_failed(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    write_result(local, verdict())  # run manual__1, two suites failed
    with pytest.raises(
        QualityFailedError, match="1/3 suites passed; failed: error_rate, quarantine"
    ):
        judge_run(local, DAY, "manual__1")
    with pytest.raises(QualityFailedError):
        judge_run(local, DAY, "manual__1", RuntimeError("spark-submit exited 1"))


def test_judge_run_passes_the_job_error_on_when_it_left_no_verdict_of_this_run(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    broken = RuntimeError("spark-submit exited 1")
    with pytest.raises(RuntimeError, match="exited 1"):
        judge_run(local, DAY, "manual__2", broken)
    write_result(local, verdict())  # another run's verdict is not this run's
    with pytest.raises(RuntimeError, match="exited 1"):
        judge_run(local, DAY, "manual__2", broken)


def test_judge_run_says_where_it_looked_when_a_passed_job_left_no_verdict(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    with pytest.raises(
        LogstreamError, match="reports_dir must be a folder the Spark driver"
    ) as info:
        judge_run(local, DAY, "manual__3")
    assert not isinstance(info.value, QualityFailedError)
    assert f"{tmp_path}/quality/" in str(info.value)


def test_judge_run_returns_what_publish_announces(settings, tmp_path):
    local = settings.replace(reports_dir=str(tmp_path))
    passed = QualityResult(
        "2026-01-14",
        True,
        [SuiteResult("events", True, 30), SuiteResult("sla", True, 12)],
        {},
        "file:///docs/index.html",
        run_id="scheduled__4",
    )
    write_result(local, passed)
    assert judge_run(local, DAY, "scheduled__4") == {
        "date": "2026-01-14",
        "suites": ["events", "sla"],
        "data_docs": "file:///docs/index.html",
    }
