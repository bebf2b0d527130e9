"""Reconciliation pieces: day/partition arithmetic (hand-computed), the run's day list, the
comparison with the stream, deterministic partitioning, the atomic swap, an empty day, and the
job's argument errors."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from logstream import catalog, schemas
from logstream.batch.reconcile import (
    DayPublisher,
    arrange_for_aggregation,
    days_to_reconcile,
    format_duration_ms,
    previous_utc_day,
    read_report,
    reconcile_day,
    window_changes,
)
from logstream.errors import ConfigError
from logstream.storage.bronze import bronze_partitions
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_table, table_schema
from logstream.transforms.windows import event_span, family_span

D = date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
NEXT = MIDNIGHT + timedelta(days=1)
FAMILY = catalog.FAMILY_BY_NAME


def at(hours: int = 0, minutes: int = 0, seconds: int = 0, base: datetime = MIDNIGHT) -> datetime:
    return base + timedelta(hours=hours, minutes=minutes, seconds=seconds)


# -- which events a day needs ----------------------------------------------------------------


def test_tumbling_windows_of_a_day_need_exactly_that_day():
    assert family_span(FAMILY["response_time"], D) == (MIDNIGHT, NEXT)
    assert family_span(FAMILY["ip_patterns"], D) == (MIDNIGHT, NEXT)


def test_sliding_windows_starting_late_in_the_day_reach_into_the_next():
    # 1 min sliding 30 s: the last window starting on D is 23:59:30-00:00:30
    assert family_span(FAMILY["user_event_activity"], D) == (MIDNIGHT, at(seconds=30, base=NEXT))
    # 2 min sliding 1 min: last start 23:59, end 00:01
    assert family_span(FAMILY["action_metrics"], D) == (MIDNIGHT, at(minutes=1, base=NEXT))
    # 5 min sliding 2 min: starts at even minutes, the last 23:58, end 00:03
    assert family_span(FAMILY["user_event_counts"], D) == (MIDNIGHT, at(minutes=3, base=NEXT))


def test_windows_not_aligned_to_midnight_follow_the_epoch_grid():
    # 2026-11-25 is day 20782 after the epoch: 20782 * 1440 minutes = 2 (mod 7), so the first
    # 7-minute window of the day starts at 00:05 and the last at 23:53 (ending at midnight)
    seven = replace(FAMILY["response_time"], window="7 minutes")
    assert family_span(seven, D) == (at(minutes=5), NEXT)
    # a 2-day window starts on even epoch days only: 20782 is even, 20783 is not
    two_days = replace(FAMILY["response_time"], window="2 days")
    assert family_span(two_days, D) == (MIDNIGHT, NEXT + timedelta(days=1))
    assert family_span(two_days, D + timedelta(days=1)) is None


def test_event_span_is_the_union_over_families():
    logs = [f for f in catalog.FAMILIES if f.source == "events"]
    users = [f for f in catalog.FAMILIES if f.source == "user_events"]
    assert event_span(logs, D) == (MIDNIGHT, NEXT)
    assert event_span(users, D) == (MIDNIGHT, at(minutes=3, base=NEXT))
    assert event_span([], D) is None


def test_bronze_partitions_read_whole_days_and_only_the_needed_hours():
    assert bronze_partitions((MIDNIGHT, NEXT)) == [(D, None)]
    assert bronze_partitions((MIDNIGHT, at(minutes=3, base=NEXT))) == [
        (D, None),
        (date(2026, 11, 26), 0),
    ]
    assert bronze_partitions((at(11, 30), at(13))) == [(D, 11), (D, 12)]
    assert bronze_partitions((at(22), at(1, 30, base=NEXT))) == [
        (D, 22),
        (D, 23),
        (date(2026, 11, 26), 0),
        (date(2026, 11, 26), 1),
    ]


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


def test_format_duration():
    assert format_duration_ms(None) == "n/a"
    assert format_duration_ms(250) == "250ms"
    assert format_duration_ms(59_000) == "59s"
    assert format_duration_ms(61_500) == "1m01s"
    assert format_duration_ms(3_723_000) == "1h02m03s"


# -- comparison with the streamed table ------------------------------------------------------


def _error_rows(spark, rows):
    schema = table_schema(spark, "error_rate")
    return spark.createDataFrame([(*row, row[0].date()) for row in rows], schema)


def test_window_changes_finds_missing_different_and_stream_only_windows(spark):
    w1, w2, w3, w4 = at(12, 0), at(12, 1), at(12, 2), at(12, 3)
    minute = timedelta(minutes=1)
    reconciled = _error_rows(
        spark,
        [
            (w1, w1 + minute, "auth", 10, 1, 10.0),
            (w2, w2 + minute, "auth", 5, 0, 0.0),
            (w3, w3 + minute, "cart", 4, 2, 50.0),
            (w1, w1 + minute, "cart", 2, 1, 50.0),
        ],
    )
    streamed = _error_rows(
        spark,
        [
            (w1, w1 + minute, "auth", 10, 1, 10.0 * (1 + 1e-12)),  # equal within 1e-9
            (w2, w2 + minute, "auth", 4, 0, 0.0),  # the stream missed an event
            (w4, w4 + minute, "cart", 1, 0, 0.0),  # never in bronze
            (w1, w1 + minute, "cart", 2, 1, 49.0),  # same count, different value
        ],
    )
    compared = reconciled.transform(window_changes(FAMILY["error_rate"], streamed, D))
    got = {
        (r["change"], r["window_start"].astimezone(UTC), r["entity"]): (
            r["streamed_count"],
            r["reconciled_count"],
            r["changed_columns"],
            r["count_column"],
        )
        for r in compared.collect()
    }
    assert got == {
        (None, w1, "auth"): (10, 10, [], "total_requests"),
        ("different", w2, "auth"): (4, 5, ["total_requests"], "total_requests"),
        ("missing_in_stream", w3, "cart"): (None, 4, None, "total_requests"),
        ("only_in_stream", w4, "cart"): (1, None, None, "total_requests"),
        ("different", w1, "cart"): (2, 2, ["error_rate"], "total_requests"),
    }


def test_window_changes_of_the_global_family_have_no_entity(spark):
    schema = table_schema(spark, "system_health")
    start = at(3)
    row = (start, start + timedelta(minutes=1), 3, 2, 2, 0.5, 0, 0.0, 100, D)
    reconciled = spark.createDataFrame([row], schema)
    streamed = spark.createDataFrame([], schema)
    compared = reconciled.transform(window_changes(FAMILY["system_health"], streamed, D)).collect()
    assert [(r["change"], r["entity"], r["reconciled_count"]) for r in compared] == [
        ("missing_in_stream", None, 3)
    ]


# -- deterministic partitioning ---------------------------------------------------------------


def test_every_window_is_aggregated_from_one_sorted_partition(spark):
    rows = []
    for n in range(200):
        moment = at(10, n % 7, n % 50)
        rows.append((f"logs:0:{n}", moment, f"svc-{n % 5}"))
    events = spark.createDataFrame(rows, "event_id string, event_time timestamp, service string")
    for family, key in ((FAMILY["response_time"], "service"), (FAMILY["system_health"], None)):
        arranged = events.transform(arrange_for_aggregation((family,), 3)).select(
            "*",
            F.spark_partition_id().alias("part"),
            F.date_trunc("minute", "event_time").alias("minute"),
        )
        placed = arranged.collect()
        partitions: dict = {}
        for row in placed:
            partitions.setdefault(row[key or "minute"], set()).add(row["part"])
        assert all(len(parts) == 1 for parts in partitions.values()), partitions
        for part in {row["part"] for row in placed}:
            inside = [(r["event_time"], r["event_id"]) for r in placed if r["part"] == part]
            assert inside == sorted(inside)


# -- atomic publication --------------------------------------------------------------------------


def test_publisher_swaps_a_day_partition_and_leaves_nothing_behind(spark, settings, tmp_path):
    local = settings.replace(data_root=str(tmp_path / "data"))
    publisher = DayPublisher(spark, local, D)
    partition = f"window_date={D}"
    table = tmp_path / "data" / "reconciled" / "error_rate"
    for version in (1, 2):
        frame = spark.createDataFrame([(version,)], "version int").coalesce(1)
        ready = publisher.stage(frame, "reconciled/error_rate", partition)
        assert not (table / partition).exists() or version == 2
        published = publisher.publish(ready, "reconciled/error_rate", partition)
        assert published.endswith(f"reconciled/error_rate/{partition}")
        files = sorted(p.name for p in (table / partition).iterdir() if p.suffix == ".parquet")
        assert files == ["part-00000.parquet"]
        got = spark.read.parquet(str(table / partition)).collect()
        assert [r["version"] for r in got] == [version]
    publisher.reset()
    assert not (tmp_path / "data" / "reconciled" / "_staging" / D.isoformat()).exists()
    assert HadoopFS(spark).list_names(str(table)) == [partition]


# -- a day without events ------------------------------------------------------------------------


def test_a_day_without_events_publishes_empty_partitions_and_an_empty_report(
    spark, settings, tmp_path
):
    local = settings.replace(data_root=str(tmp_path / "data"), reports_dir=str(tmp_path / "rep"))
    # bronze exists, but only for another day
    other = datetime(2026, 11, 20, 10, tzinfo=UTC)
    row = {name: None for name in schemas.USER_EVENTS.fieldNames()}
    row.update(
        event_id="user-events:0:0",
        event_time=other,
        user_id="u1",
        action="view",
        event_date=other.date(),
        event_hour=10,
    )
    frame = spark.createDataFrame(
        [[row[n] for n in schemas.USER_EVENTS.fieldNames()]], schemas.USER_EVENTS
    )
    frame.write.partitionBy("event_date", "event_hour").parquet(
        str(tmp_path / "data" / "user_events")
    )

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
    path = Path(__file__).resolve().parents[2] / "jobs" / "reconcile_day.py"
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
