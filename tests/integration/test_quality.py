"""Quality gates over real Parquet tables: a clean day passes every suite; a broken partition
(duplicate window key, negative count, stale processing) fails exactly the expectations meant to
catch it, and the cross-table check still holds.

The clean day's metric tables (streamed and reconciled alike: no late data) are computed from
its events with logstream.transforms.aggregate; that is allowed here because the suites compare
tables with each other and with fixed bounds, and one count is checked by hand against the events.
"""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from logstream import catalog, schemas
from logstream.batch.quality import (
    SERVICE_REQUEST_COUNTS,
    load_result,
    resolve_suites,
    run_quality,
    write_result,
)
from logstream.config import Settings
from logstream.storage.tables import table_path, table_schema
from logstream.transforms import aggregate

DAY = date(2026, 1, 14)
#: the morning after: DAY is over, so fresh_since = 23:00 on DAY (60 minutes before its end)
NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
STALLED = datetime(2026, 1, 14, 20, 0)  # when the broken day's stream stopped processing
SERVICES = ("api", "web", "auth")
#: what the broken day breaks: (suite, expectation, column)
BROKEN = {
    ("events", "expect_column_max_to_be_between", "processing_time"),
    ("response_time", "expect_compound_columns_to_be_unique", "window_start,service"),
    ("processing_latency", "expect_column_values_to_be_between", "record_count"),
}
JOB = Path(__file__).resolve().parents[2] / "jobs" / "quality_check.py"


def day_events(day: date, count: int = 240, seed: int = 11) -> list[dict]:
    """Valid bronze events in the day's last two hours, processed two seconds after they occur."""
    rng = random.Random(seed)
    start = datetime.combine(day, time(22, 0))
    rows = []
    for n in range(count):
        event_time = start + timedelta(seconds=rng.randrange(7200), milliseconds=rng.randrange(999))
        row = {field.name: None for field in schemas.EVENTS.fields}
        status = rng.choice((200, 200, 200, 201, 404, 500))
        row.update(
            event_id=f"logs:{n % 2}:{n}",
            event_time=event_time,
            level="ERROR" if status >= 500 else "INFO",
            service=SERVICES[n % len(SERVICES)],
            message="request served",
            ip_address=f"198.51.100.{rng.randrange(1, 20)}",
            user_id=f"user-{rng.randrange(25)}" if n % 7 else None,
            request_id=f"req-{n}",
            response_time=round(rng.uniform(0.01, 2.0), 3),
            status_code=status,
            http_method="GET",
            path="/items",
            bytes_sent=512,
            extra={},
            source_format="json",
            kafka_topic="logs",
            kafka_partition=n % 2,
            kafka_offset=n // 2,
            kafka_timestamp=event_time + timedelta(seconds=1),
            processing_time=event_time + timedelta(seconds=2),
            lateness_ms=0,
            event_date=day,
            event_hour=event_time.hour,
        )
        rows.append(row)
    return rows


def day_user_events(day: date, count: int = 60, seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    start = datetime.combine(day, time(23, 0))
    rows = []
    for n in range(count):
        event_time = start + timedelta(seconds=rng.randrange(3000))
        row = {field.name: None for field in schemas.USER_EVENTS.fields}
        row.update(
            event_id=f"user-events:0:{n}",
            event_time=event_time,
            user_id=f"user-{rng.randrange(8)}",
            action=rng.choice(("view", "click", "buy")),
            value=round(rng.uniform(0, 50), 2),
            session_id=f"s-{n % 5}",
            kafka_topic="user-events",
            kafka_partition=0,
            kafka_offset=n,
            kafka_timestamp=event_time,
            processing_time=event_time + timedelta(seconds=1),
            lateness_ms=0,
            event_date=day,
            event_hour=event_time.hour,
        )
        rows.append(row)
    return rows


def _write(spark, settings: Settings, table: str, rows, partition_by: list[str]) -> None:
    frame = rows
    if isinstance(rows, list):
        frame = spark.createDataFrame(rows, table_schema(spark, table))
    frame.write.mode("overwrite").partitionBy(*partition_by).parquet(table_path(settings, table))


def write_day(
    spark,
    settings: Settings,
    day: date,
    *,
    broken: bool = False,
    families: Iterable[str] | None = None,
) -> list[dict]:
    """Write one day of every table (or of ``families`` only, with events) under data_root.

    ``broken``: the stream stalled at 20:00 (events' processing_time), one response_time window
    is written twice and one processing_latency count is negative. Returns the events.
    """
    events = day_events(day)
    user_events = day_user_events(day)
    bronze = [row | {"processing_time": STALLED} for row in events] if broken else events
    _write(spark, settings, "events", bronze, ["event_date", "event_hour"])
    sources = {
        "events": spark.createDataFrame(events, schemas.EVENTS),
        "user_events": spark.createDataFrame(user_events, schemas.USER_EVENTS),
    }
    wanted = set(families) if families is not None else set(catalog.FAMILY_BY_NAME)
    chosen = [f for f in catalog.configured_families(settings.windows) if f.name in wanted]
    for group in aggregate.group_families(chosen):
        aggregates = sources[group[0].source].transform(aggregate.aggregate_batch(group)).cache()
        for family in group:
            table = aggregates.transform(aggregate.project(family))
            _write(spark, settings, family.name, table, ["window_date"])
            # no late data: the reconciled table is the streamed one (a file copy is enough)
            shutil.copytree(
                table_path(settings, family.name),
                table_path(settings, f"reconciled/{family.name}"),
                dirs_exist_ok=True,
            )
            if broken and family.name == "response_time":
                duplicate = table.orderBy("window_start", "service").limit(1)
                _write(spark, settings, family.name, table.unionByName(duplicate), ["window_date"])
            if broken and family.name == "processing_latency":
                first = table.agg(F.min("window_start")).first()[0]
                negative = table.withColumn(
                    "record_count",
                    F.when(F.col("window_start") == first, -4).otherwise(F.col("record_count")),
                )
                _write(spark, settings, family.name, negative, ["window_date"])
        aggregates.unpersist()
    if families is not None:
        return events

    _write(spark, settings, "user_events", user_events, ["event_date", "event_hour"])
    late = [events[0] | {"late_for": ["response_time"]}]
    _write(spark, settings, "late_events", late, ["event_date"])
    start = datetime.combine(day, time(23, 10))
    anomaly = {
        "anomaly_id": "a1",
        "kind": "error_rate_spike",
        "entity": "api",
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "observed": 40.0,
        "threshold": 10.0,
        "baseline": 5.0,
        "severity": "critical",
        "detail": "error rate 40.0% after 5.0% (+35.0 points)",
        "window_date": day,
    }
    _write(spark, settings, "anomalies", [anomaly], ["window_date"])
    quarantined = [
        {
            "reason": reason,
            "detail": "test record",
            "raw_value": b"{oops",
            "raw_length": 5,
            "kafka_topic": "logs",
            "kafka_partition": 0,
            "kafka_offset": 1000 + n,
            "kafka_timestamp": start,
            "processing_time": start,
            "quarantine_date": day,
        }
        for n, reason in enumerate(("invalid_json", "missing_timestamp"))
    ]
    _write(spark, settings, "quarantine", quarantined, ["quarantine_date"])
    return events


@pytest.fixture(scope="module")
def clean(spark, settings, tmp_path_factory) -> tuple[Settings, list[dict]]:
    root = tmp_path_factory.mktemp("quality-clean")
    day_settings = settings.replace(data_root=str(root / "data"), reports_dir=str(root / "reports"))
    return day_settings, write_day(spark, day_settings, DAY)


def test_clean_day_passes_every_suite(spark, clean):
    day_settings, events = clean
    # the hand check: api requests in the 23:10 window, counted from the events themselves
    window = datetime(2026, 1, 14, 23, 10)
    expected = sum(
        1
        for e in events
        if e["service"] == "api" and window <= e["event_time"] < window + timedelta(minutes=1)
    )
    assert expected > 0
    stored = (
        spark.read.parquet(table_path(day_settings, "reconciled/response_time"))
        .where(f"service = 'api' AND window_start = '{window}'")
        .select("request_count")
        .collect()
    )
    assert [row.request_count for row in stored] == [expected]

    result = run_quality(spark, day_settings, DAY, now=NOW, run_id="clean-run")
    assert result.success, result.summary()
    assert [suite.suite for suite in result.suites] == resolve_suites(day_settings, "all")
    assert all(suite.evaluated >= 3 for suite in result.suites)
    assert result.parameters["fresh_since"] == "2026-01-14T23:00:00+00:00"
    index = Path(result.data_docs_index.removeprefix("file://"))
    assert index == Path(day_settings.reports_dir) / "data_docs" / "index.html"
    assert index.exists() and "events" in index.read_text()

    path = write_result(day_settings, result)
    assert json.loads(path.read_text())["success"] is True
    assert load_result(day_settings, DAY).run_id == "clean-run"


def test_broken_partition_fails_the_right_expectations(spark, settings, tmp_path):
    day_settings = settings.replace(
        data_root=str(tmp_path / "data"), reports_dir=str(tmp_path / "reports")
    )
    # only what the selected suites read: events and the per-service request-count families
    write_day(spark, day_settings, DAY, broken=True, families=SERVICE_REQUEST_COUNTS)
    suites = "events,response_time,processing_latency,reconciled/response_time,cross/request_counts"
    result = run_quality(spark, day_settings, DAY, suites, now=NOW)

    assert not result.success
    assert {(f.suite, f.expectation, f.column) for f in result.failures} == BROKEN
    assert result.failed_suites == ["events", "response_time", "processing_latency"]
    by_suite = {f.suite: f for f in result.failures}
    assert by_suite["events"].observed.startswith("2026-01-14 20:00:00")
    assert by_suite["response_time"].unexpected_count == 2
    assert by_suite["processing_latency"].sample[0]["record_count"] == -4
    assert all(suite.docs_page for suite in result.suites if not suite.success)
    summary = result.summary()
    assert "processing_latency: expect_column_values_to_be_between on record_count" in summary
    assert "(expected min_value=2026-01-14T23:00:00+00:00)" in summary  # the freshness bound


def _job():
    spec = importlib.util.spec_from_file_location("quality_check_job", JOB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "argv",
    [
        ["--date", "2026-13-01"],
        ["--date", "2026-01-14", "--suites", "events,nope"],
        ["--date", "2026-01-14", "--param", "colour=red"],
        ["--date", "2026-01-14", "--param", "fresh_since"],
        ["--date", "2026-01-14", "--set", "no_such_setting=1"],
    ],
)
def test_job_rejects_bad_arguments_before_starting_spark(argv, capsys):
    assert _job().main(argv) == 2
    assert capsys.readouterr().err.startswith("quality_check: ")
