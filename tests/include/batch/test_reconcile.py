"""The reconciliation run: which days a request reconciles, which days have bronze data, a day
without it (no Spark job), a day whose bronze holds no rows, and the job's argument errors. The
full run against an oracle is in tests/integration/test_reconciliation.py."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql.types import StructType

from logstream import catalog, schemas
from logstream.batch.reconcile import (
    days_to_reconcile,
    has_bronze,
    previous_utc_day,
    reconcile_day,
)
from logstream.batch.reconcile_report import read_report
from logstream.errors import ConfigError
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_table

D = date(2026, 11, 25)


# -- which days a run reconciles --------------------------------------------------------------


def test_previous_utc_day():
    assert previous_utc_day(datetime(2026, 11, 26, 2, 30, tzinfo=UTC)) == D
    # 08:00 in UTC+9 is 23:00 UTC the day before
    tokyo = timezone(timedelta(hours=9))
    assert previous_utc_day(datetime(2026, 11, 26, 8, 0, tzinfo=tokyo)) == date(2026, 11, 24)
    assert previous_utc_day(datetime(2026, 11, 26, 0, 0)) == D  # naive = UTC


def test_days_to_reconcile_from_params():
    today = date(2026, 11, 26)
    assert days_to_reconcile(None, None, D, today) == [D]
    assert days_to_reconcile("", "", D, today) == [D]
    assert days_to_reconcile("2026-11-20", None, D, today) == [date(2026, 11, 20)]
    assert days_to_reconcile(None, "2026-11-21", D, today) == [date(2026, 11, 21)]
    assert days_to_reconcile("2026-11-23", "2026-11-26", D, today) == [
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 26),
    ]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-25", "2026-11-20", "before start_date"),
        ("2026-11-25", "2026-11-27", "after today"),
        ("2026-08-01", "2026-11-25", "at most 92"),
        ("25/11/2026", None, "YYYY-MM-DD"),
    ],
)
def test_days_to_reconcile_refuses_bad_ranges_with_a_clear_message(start, end, message):
    with pytest.raises(ConfigError, match=message):
        days_to_reconcile(start, end, D, date(2026, 11, 26))


# -- a day without bronze data, and a day whose bronze files hold no rows ------------------------


def _user_event(moment: datetime) -> list:
    row = {name: None for name in schemas.USER_EVENTS.fieldNames()}
    row.update(
        event_id=f"user-events:0:{moment.timestamp():.0f}",
        event_time=moment,
        user_id="u1",
        action="view",
        event_date=moment.date(),
        event_hour=moment.hour,
    )
    return [row[n] for n in schemas.USER_EVENTS.fieldNames()]


def test_which_days_have_bronze_data_is_told_by_listing_their_partitions(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"))
    moments = [datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 22, 0, 0, 10, tzinfo=UTC)]
    spark.createDataFrame([_user_event(m) for m in moments], schemas.USER_EVENTS).write.partitionBy(
        "event_date", "event_hour"
    ).parquet(str(tmp_path / "data" / "user_events"))
    # a staging leftover does not count: readers skip "_" folders
    staged = tmp_path / "data" / "user_events" / "event_date=2026-11-24" / "_staging" / "x.parquet"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"")
    expected = {
        date(2026, 11, 19): False,  # needs 11-20's first hour only
        date(2026, 11, 20): True,
        date(2026, 11, 21): True,  # sliding user windows of 11-21 run into 11-22 00:00:30
        date(2026, 11, 22): True,
        date(2026, 11, 23): False,
        date(2026, 11, 24): False,
    }
    fs = HadoopFS(spark)
    assert {day: has_bronze(local, day) for day in expected} == expected  # Python-side Storage
    assert {day: has_bronze(local, day, fs=fs) for day in expected} == expected  # Hadoop
    assert has_bronze(settings.replace(data_root="abfss://c@account/data"), D) is None


def test_a_day_without_bronze_data_runs_no_spark_job_and_writes_nothing(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"), reports_dir=str(tmp_path / "rep"))
    other = datetime(2026, 11, 20, 10, tzinfo=UTC)  # bronze exists, but only for another day
    spark.createDataFrame([_user_event(other)], schemas.USER_EVENTS).write.partitionBy(
        "event_date", "event_hour"
    ).parquet(str(tmp_path / "data" / "user_events"))
    context = spark.sparkContext
    context.setJobGroup("reconcile-empty-day", "a day without bronze data")
    try:
        report = reconcile_day(spark, local, D)
        jobs = context.statusTracker().getJobIdsForGroup("reconcile-empty-day")
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)

    assert jobs == []
    assert report == {
        "report_date": "2026-11-25",
        "reconciled": False,
        "summary": "no bronze data for 2026-11-25: nothing to reconcile",
        "totals": {"windows": 0, "windows_corrected": 0, "only_in_stream": 0},
    }
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["user_events"]
    assert not (tmp_path / "rep").exists()


def test_a_day_whose_bronze_files_hold_no_rows_publishes_empty_partitions_and_report(
    spark, settings, tmp_path
):
    local = settings.replace(data_root=str(tmp_path / "data"), reports_dir=str(tmp_path / "rep"))
    # one bronze file of the day, without rows
    partition = tmp_path / "data" / "user_events" / f"event_date={D}" / "event_hour=10"
    columns = [f for f in schemas.USER_EVENTS.fields if f.name not in ("event_date", "event_hour")]
    spark.createDataFrame([], StructType(columns)).coalesce(1).write.parquet(str(partition))

    report = reconcile_day(spark, local, D)

    for family in catalog.FAMILIES:
        folder = tmp_path / "data" / "reconciled" / family.name / f"window_date={D}"
        assert [p.name for p in folder.iterdir() if p.suffix == ".parquet"] == [
            "part-00000.parquet"
        ]
        assert read_table(spark, local, f"reconciled/{family.name}").count() == 0
    assert report["totals"] == {"windows": 0, "windows_corrected": 0, "only_in_stream": 0}
    assert report["late"]["events"]["events"] == 0
    assert report["late"]["events"]["max_lateness_ms"] is None
    assert report["late"]["user_events"]["events"] == 0
    assert read_report(local, D) == report
    assert json.loads((tmp_path / "rep" / "reconciliation" / f"{D}.json").read_text()) == report
    report_folder = tmp_path / "data" / "reconciliation_report" / f"report_date={D}"
    assert spark.read.parquet(str(report_folder)).count() == 0


# -- the job's arguments ---------------------------------------------------------------------------


def _job():
    path = Path(__file__).resolve().parents[3] / "jobs" / "reconcile_day.py"
    spec = importlib.util.spec_from_file_location("reconcile_day_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--date", "2026-13-01"], "YYYY-MM-DD"),
        (["--date", "2999-01-01"], "nothing to reconcile yet"),
        (["--date", "2026-11-25", "--set", "no_equals_sign"], "KEY=VALUE"),
        (["--date", "2026-11-25", "--set", "colour=blue"], "unknown setting"),
        (["--date", "2026-11-25", "--set", 'windows={"nope": {}}'], "unknown metric famil"),
    ],
)
def test_job_rejects_bad_arguments_with_exit_2(argv, message, capsys):
    assert _job().main(argv) == 2
    assert message in capsys.readouterr().err


def test_job_requires_a_date():
    with pytest.raises(SystemExit) as exit_info:
        _job().main([])
    assert exit_info.value.code == 2
