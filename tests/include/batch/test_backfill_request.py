"""A backfill request, the chunks its files are landed in, the reconciliation runs that cover it
and what the DAG passes to the job. Expected values are written out by hand; the Spark landing is
tested in tests/integration/test_backfill.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from logstream.batch.backfill_request import (
    BackfillRequest,
    job_arguments,
    plan_chunks,
    read_summary,
    reconcile_ranges,
    reconciliation_runs,
    summary_file,
)
from logstream.errors import ConfigError, LogstreamError
from logstream.storage.fs import FileStatus

D = date.fromisoformat


def status(name: str, size: int = 100, modified_ms: int = 1_000) -> FileStatus:
    return FileStatus(f"file:/archive/{name}", f"file:/archive/{name}", size, modified_ms)


# -- the request -----------------------------------------------------------------------------------


def test_request_from_params_reads_blank_as_not_given():
    request = BackfillRequest.from_params(" /logs/*.gz ", "", "  ", "", None)
    assert request == BackfillRequest("/logs/*.gz")
    dated = BackfillRequest.from_params("/logs", "nginx", "shop", "2015-12-01", " 2015-12-31 ")
    assert dated == BackfillRequest("/logs", "nginx", "shop", D("2015-12-01"), D("2015-12-31"))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (("",), "path is empty"),
        (("/logs", None, None, "2015-12-31", "2015-12-01"), "is before start_date"),
        (("/logs", None, None, "2015-13-01"), "is not a date"),
        (("/logs", None, None, None, "31/12/2015"), "is not a date"),
    ],
)
def test_request_rejects_bad_params_with_a_message(params, message):
    with pytest.raises(ConfigError, match=message):
        BackfillRequest.from_params(*params)


@pytest.mark.parametrize(
    ("start", "end", "inside", "outside"),
    [
        (None, None, [D("1999-01-01"), D("2030-01-01")], []),
        ("2015-12-22", None, [D("2015-12-22"), D("2016-01-01")], [D("2015-12-21")]),
        (None, "2015-12-22", [D("2015-01-01"), D("2015-12-22")], [D("2015-12-23")]),
        ("2015-12-22", "2015-12-23", [D("2015-12-22"), D("2015-12-23")], [D("2015-12-24")]),
    ],
)
def test_date_range_is_inclusive_and_may_be_open(start, end, inside, outside):
    request = BackfillRequest.from_params("/logs", start_date=start, end_date=end)
    assert [request.in_range(day) for day in inside] == [True] * len(inside)
    assert [request.in_range(day) for day in outside] == [False] * len(outside)


def test_parse_options_take_format_and_service_from_the_request(settings):
    options = BackfillRequest("/logs", "apache", "shop").parse_options(settings)
    assert (options.format, options.default_service) == ("apache", "shop")
    defaults = BackfillRequest("/logs").parse_options(settings)
    assert (defaults.format, defaults.default_service) == ("auto", "web")
    with pytest.raises(ConfigError, match="syslog"):
        BackfillRequest("/logs", "syslog").parse_options(settings)


# -- planning --------------------------------------------------------------------------------------


def test_chunks_hold_at_most_n_files_and_bytes():
    sizes = {"a": 40, "b": 40, "c": 40, "d": 500, "e": 10, "f": 10}
    files = [status(name, size) for name, size in sizes.items()]
    chunks = plan_chunks(files, max_files=2, max_bytes=100)
    names = [[file.uri.rsplit("/", 1)[1] for file in chunk] for chunk in chunks]
    # two files at most (c starts a chunk); d is larger than a chunk: alone, then e and f
    assert names == [["a", "b"], ["c"], ["d"], ["e", "f"]]
    assert plan_chunks([]) == []


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ([], []),
        (["2015-12-22"], [("2015-12-22", "2015-12-22")]),
        # days 92 days apart or more: one run each, from the first day of a group to its last
        (
            ["2015-12-23", "2015-05-17", "2015-05-18"],
            [("2015-05-17", "2015-05-18"), ("2015-12-23", "2015-12-23")],
        ),
        # sparse days spanning 92 days (2015-05-17..2015-08-16): one run from the first to the last
        (["2015-05-17", "2015-05-18", "2015-08-16"], [("2015-05-17", "2015-08-16")]),
        # 2015-08-17 is the 93rd day from 2015-05-17: a second run starts there
        (
            ["2015-05-17", "2015-08-17", "2015-08-20", "2015-12-23"],
            [
                ("2015-05-17", "2015-05-17"),
                ("2015-08-17", "2015-08-20"),
                ("2015-12-23", "2015-12-23"),
            ],
        ),
        # days after today are left out
        (["2026-12-01", "2027-01-05"], [("2026-12-01", "2026-12-01")]),
    ],
)
def test_reconcile_ranges_cover_the_touched_days(days, expected):
    ranges = reconcile_ranges(days, today=D("2026-12-06"))
    assert ranges == [(D(lo), D(hi)) for lo, hi in expected]


# -- what the DAG passes on ------------------------------------------------------------------------


def test_job_arguments_carry_the_request():
    """The settings are not the request's: the submit path adds every one of them
    (tests/jobs/test_job_settings.py)."""
    request = BackfillRequest("s3a://b/x/*.gz", "nginx", None, D("2015-12-01"), None)
    arguments = job_arguments(request, "/reports/backfill/run.json")
    assert arguments == [
        "--path",
        "s3a://b/x/*.gz",
        "--summary",
        "/reports/backfill/run.json",
        "--format",
        "nginx",
        "--start-date",
        "2015-12-01",
    ]


def test_summary_file_is_named_after_the_run_under_reports_dir(settings, tmp_path: Path):
    local = settings.replace(reports_dir=str(tmp_path))
    path = summary_file(local, "manual__2026-12-06T10:00:00+00:00")
    assert path == tmp_path / "backfill" / "manual__2026-12-06T10_00_00_00_00.json"
    shared = settings.replace(reports_dir="s3a://bucket/reports")
    assert summary_file(shared, "run") == "s3a://bucket/reports/backfill/run.json"
    with pytest.raises(ConfigError, match="not supported outside Spark"):
        summary_file(settings.replace(reports_dir="gs://bucket/reports"), "run")


def test_reconciliation_runs_are_the_confs_of_the_touched_ranges():
    summary = {"days_touched": ["2015-12-03", "2015-12-01", "2026-12-07"]}  # the last: future
    assert reconciliation_runs(summary, today=D("2026-12-06")) == [
        {"start_date": "2015-12-01", "end_date": "2015-12-03", "origin": "backfill"}
    ]
    assert reconciliation_runs({"days_touched": []}, today=D("2026-12-06")) == []


def test_a_missing_summary_says_where_the_job_should_have_left_it(tmp_path):
    with pytest.raises(LogstreamError, match=r"left no summary at .*run\.json: reports_dir must"):
        read_summary(tmp_path / "run.json")
    (tmp_path / "run.json").write_text('{"files": 2, "days_touched": ["2015-12-01"]}')
    assert read_summary(tmp_path / "run.json") == {"files": 2, "days_touched": ["2015-12-01"]}
