"""Quality suites on tiny inline DataFrames: a clean table passes, each kind of breakage fails
exactly the expectation meant to catch it, and the freshness parameter is decided at run time.

Expected verdicts are written by hand from the rows below, never read back from the suites.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import Row
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from logstream import schemas
from logstream.batch.quality import (
    QualityResult,
    QualityRun,
    expectation_parameters,
    plan_run,
    prune_docs,
    quality_alert,
    request_counts_comparison,
    request_counts_expectations,
    resolve_suites,
    table_checks,
    table_expectations,
)
from logstream.errors import ConfigError
from logstream.storage.tables import table_schema

DAY = date(2026, 1, 14)
T0 = datetime(2026, 1, 14, 23, 40)  # naive = UTC (the test session's time zone is UTC)
NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)  # the day is over: fresh_since = 23:00 on DAY


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    params = expectation_parameters(DAY, now=NOW)
    return QualityRun(spark, tmp_path_factory.mktemp("docs"), params, "unit")


def validate(run, spark, settings, table, rows, params=None):
    schema = table_schema(spark, table)
    frame = spark.createDataFrame(rows, schema)
    check = table_checks(settings)[table]
    expectations = table_expectations(check, schema)
    return run.validate(table, frame, expectations, check.keys, params=params)


def failed(result) -> set[tuple[str, str | None]]:
    return {(failure.expectation, failure.column) for failure in result.failures}


def response_time_row(minute: int, service: str = "api", **changes) -> dict:
    start = T0 + timedelta(minutes=minute)
    row = {
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "service": service,
        "request_count": 3,
        "avg_response_time": 0.2,
        "min_response_time": 0.1,
        "max_response_time": 0.4,
        "stddev_response_time": 0.1,
        "p50_response_time": 0.1,
        "p95_response_time": 0.4,
        "p99_response_time": 0.4,
        "window_date": DAY,
    }
    row.update(changes)
    return row


def error_rate_row(minute: int, **changes) -> dict:
    start = T0 + timedelta(minutes=minute)
    row = {
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "service": "api",
        "total_requests": 10,
        "error_count": 1,
        "error_rate": 10.0,
        "window_date": DAY,
    }
    row.update(changes)
    return row


def event_row(number: int, **changes) -> dict:
    event_time = T0 + timedelta(seconds=number)
    row = {field.name: None for field in schemas.EVENTS.fields}
    row.update(
        event_id=f"logs:0:{number}",
        event_time=event_time,
        service="api",
        response_time=0.25,
        status_code=200,
        source_format="json",
        kafka_topic="logs",
        kafka_partition=0,
        kafka_offset=number,
        kafka_timestamp=event_time,
        processing_time=event_time + timedelta(seconds=2),
        lateness_ms=0,
        event_date=DAY,
        event_hour=event_time.hour,
    )
    row.update(changes)
    return row


def test_clean_tables_pass(run, spark, settings):
    rows = [response_time_row(0), response_time_row(1), response_time_row(0, service="web")]
    result = validate(run, spark, settings, "response_time", rows)
    assert result.success, result.failures
    assert result.evaluated > 20  # schema, keys, ranges, orderings, day bounds, freshness
    result = validate(run, spark, settings, "error_rate", [error_rate_row(0), error_rate_row(1)])
    assert result.success, result.failures


def test_each_breakage_fails_its_own_expectation(run, spark, settings):
    # three requests of 0.1 s: Spark's mean is 0.30000000000000004 / 3 > 0.1 = max; allowed
    rounded = 0.1 * 3 / 3
    assert rounded > 0.1
    same = dict(min_response_time=0.1, max_response_time=0.1, stddev_response_time=0.0)
    same |= dict(p50_response_time=0.1, p95_response_time=0.1, p99_response_time=0.1)
    rows = [
        response_time_row(0),
        response_time_row(1),  # duplicate window key ...
        response_time_row(1, request_count=5),  # ... same (window_start, service)
        response_time_row(2, request_count=-2),  # negative count
        response_time_row(3, p95_response_time=0.35, p99_response_time=0.3),  # p95 > p99
        response_time_row(4, avg_response_time=0.5),  # mean above max
        response_time_row(5, avg_response_time=rounded, **same),  # rounding only: fine
    ]
    result = validate(run, spark, settings, "response_time", rows)
    by_type = {(f.expectation, f.column): f for f in result.failures}
    assert set(by_type) == {
        ("expect_compound_columns_to_be_unique", "window_start,service"),
        ("expect_column_values_to_be_between", "request_count"),
        ("unexpected_rows_expectation", None),  # the row-consistency rules
    }
    minute = lambda m: (T0 + timedelta(minutes=m)).isoformat(sep=" ")  # noqa: E731
    duplicate = by_type[("expect_compound_columns_to_be_unique", "window_start,service")]
    assert duplicate.unexpected_count == 2  # both rows of the repeated key
    assert {(row["window_start"], row["service"]) for row in duplicate.sample} == {
        (minute(1), "api")
    }
    negative = by_type[("expect_column_values_to_be_between", "request_count")]
    assert negative.unexpected_count == 1
    assert negative.sample == [{"window_start": minute(2), "service": "api", "request_count": -2}]
    consistency = by_type[("unexpected_rows_expectation", None)]
    assert consistency.unexpected_count == 2  # not the row whose mean is only rounded
    assert sorted((row["window_start"], row["violated"]) for row in consistency.sample) == [
        (minute(3), "p95_response_time <= p99_response_time"),
        (minute(4), "avg_response_time <= max_response_time"),
    ]


def test_error_rate_above_100_fails_its_range(run, spark, settings):
    rows = [error_rate_row(0), error_rate_row(1, error_rate=140.0)]
    result = validate(run, spark, settings, "error_rate", rows)
    assert failed(result) == {("expect_column_values_to_be_between", "error_rate")}
    assert result.failures[0].sample[0]["error_rate"] == 140.0


def test_stale_events_fail_freshness_and_the_parameter_decides(run, spark, settings):
    fresh = [event_row(n) for n in range(5)]
    assert validate(run, spark, settings, "events", fresh).success

    # the stream stalled at 20:00: nothing processed in the day's last hour
    stalled = datetime(2026, 1, 14, 20, 0)
    stale = [event_row(n, processing_time=stalled) for n in range(5)]
    result = validate(run, spark, settings, "events", stale)
    assert failed(result) == {("expect_column_max_to_be_between", "processing_time")}
    assert result.failures[0].observed.startswith("2026-01-14 20:00:00")
    assert result.failures[0].expected == "min_value=2026-01-14T23:00:00+00:00"

    # the same rows pass when the run is told that 19:30 is fresh enough
    lenient = expectation_parameters(DAY, {"fresh_since": "2026-01-14T19:30:00"}, now=NOW)
    assert validate(run, spark, settings, "events", stale, params=lenient).success


def test_event_keys_and_day_bounds(run, spark, settings):
    rows = [event_row(0), event_row(1, event_id="logs:0:0"), event_row(2, service=None)]
    rows.append(event_row(3, event_time=datetime(2026, 1, 15, 0, 0, 1)))
    result = validate(run, spark, settings, "events", rows)
    assert failed(result) == {
        ("expect_column_values_to_be_unique", "event_id"),
        ("expect_column_values_to_not_be_null", "service"),
        ("expect_column_values_to_be_between", "event_time"),
    }


def test_quarantine_reasons_and_schema_drift(run, spark, settings):
    base = {
        "reason": "invalid_json",
        "detail": "not an object",
        "raw_value": b"[1]",
        "raw_length": 3,
        "kafka_topic": "logs",
        "kafka_partition": 0,
        "kafka_offset": 7,
        "kafka_timestamp": T0,
        "processing_time": T0,
        "quarantine_date": DAY,
    }
    clean = validate(run, spark, settings, "quarantine", [base])
    assert clean.success, clean.failures
    unknown = validate(run, spark, settings, "quarantine", [base | {"reason": "cosmic_ray"}])
    assert failed(unknown) == {("expect_column_values_to_be_in_set", "reason")}

    # a writer that dropped `detail` and wrote raw_length as a string
    schema = table_schema(spark, "quarantine")
    drifted_schema = T.StructType(
        [
            T.StructField(f.name, T.StringType()) if f.name == "raw_length" else f
            for f in schema.fields
            if f.name != "detail"
        ]
    )
    row = {k: (str(v) if k == "raw_length" else v) for k, v in base.items() if k != "detail"}
    drifted = spark.createDataFrame([row], drifted_schema)
    check = table_checks(settings)["quarantine"]
    result = run.validate("quarantine", drifted, table_expectations(check, schema), check.keys)
    assert {
        ("expect_table_columns_to_match_set", None),
        ("expect_column_values_to_be_of_type", "raw_length"),
    } <= failed(result)
    missing = [f for f in result.failures if f.column == "detail"]
    assert missing and all(f.error for f in missing)  # GX could not evaluate a missing column


def test_request_count_comparison_against_hand_counts(run, spark):
    w0, w1 = datetime(2026, 1, 14, 10, 0), datetime(2026, 1, 14, 10, 1)
    events = spark.createDataFrame(
        [
            event_row(1, event_time=w0 + timedelta(seconds=5)),
            event_row(2, event_time=w0 + timedelta(seconds=50)),
            event_row(3, event_time=w1 + timedelta(seconds=1)),
            event_row(4, event_time=w1 + timedelta(seconds=2), service="web"),
        ],
        schemas.EVENTS,
    )
    reconciled = spark.createDataFrame(
        [
            Row(window_start=w0, service="api", request_count=2),
            Row(window_start=w1, service="api", request_count=1),
            Row(window_start=w1, service="auth", request_count=4),  # no such bronze events
        ]
    )
    comparison = request_counts_comparison(events, {"response_time": reconciled}, "1 minute")
    expected = spark.createDataFrame(
        [
            Row(window_start=w0, service="api", events_count=2, response_time_count=2),
            Row(window_start=w1, service="api", events_count=1, response_time_count=1),
            Row(window_start=w1, service="auth", events_count=0, response_time_count=4),
            Row(window_start=w1, service="web", events_count=1, response_time_count=0),
        ]
    )
    assertDataFrameEqual(comparison, expected)

    result = run.validate(
        "cross/request_counts",
        comparison,
        request_counts_expectations(["response_time"], "1 minute"),
        ["window_start", "service"],
    )
    assert failed(result) == {("unexpected_rows_expectation", None)}
    assert result.failures[0].unexpected_count == 2
    assert {row["service"] for row in result.failures[0].sample} == {"auth", "web"}


def test_docs_site_and_alert(run, spark, settings):
    outcome = validate(run, spark, settings, "error_rate", [error_rate_row(0, error_count=-1)])
    index = run.build_docs([outcome])
    assert index.startswith("file://") and index.endswith("index.html")
    assert outcome.docs_page.startswith("file://")
    assert (run.site_dir / "index.html").exists()

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
    assert QualityResult.from_dict(result.to_dict()).failures[0].column == "error_count"


def test_parameters():
    finished = expectation_parameters(DAY, now=NOW)
    assert finished["fresh_since"] == datetime(2026, 1, 14, 23, 0, tzinfo=UTC)
    assert finished["day_start"] == datetime(2026, 1, 14, tzinfo=UTC)
    assert finished["day_end"] == datetime(2026, 1, 15, tzinfo=UTC)
    during = expectation_parameters(
        DAY, {"freshness_minutes": "15"}, now=datetime(2026, 1, 14, 9, 0)
    )
    assert during["fresh_since"] == datetime(2026, 1, 14, 8, 45, tzinfo=UTC)
    given = expectation_parameters(DAY, {"fresh_since": "2026-01-14T12:00:00+01:00"}, now=NOW)
    assert given["fresh_since"] == datetime(2026, 1, 14, 11, 0, tzinfo=UTC)
    for bad in ({"fresh_since": "noon"}, {"freshness_minutes": "soon"}, {"colour": "red"}):
        with pytest.raises(ConfigError):
            expectation_parameters(DAY, bad)


def test_suite_selection(settings):
    everything = resolve_suites(settings, None)
    assert {"events", "quarantine", "anomalies", "user_events", "late_events"} <= set(everything)
    assert {"response_time", "reconciled/response_time", "cross/request_counts"} <= set(everything)
    assert len(everything) == 6 + 2 * 12 + 1
    streamed = resolve_suites(settings, "streamed")
    assert not any(name.startswith(("reconciled/", "cross/")) for name in streamed)
    assert resolve_suites(settings, "sla, events") == ["events", "sla"]
    with pytest.raises(ConfigError, match="unknown quality suite 'nope'"):
        resolve_suites(settings, "nope")


def test_plan_run():
    hourly = datetime(2026, 1, 14, 10, 15, tzinfo=UTC)
    assert plan_run("scheduled", hourly) == {"date": "2026-01-14", "suites": "streamed"}
    assert plan_run("backfill", hourly) == {"date": "2026-01-14", "suites": "streamed"}
    assert plan_run("manual", hourly) == {"date": "2026-01-13", "suites": "all"}
    assert plan_run("asset_triggered", None, asset_extras=[{"dates": ["2026-01-10"]}]) == {
        "date": "2026-01-10",
        "suites": "all",
    }
    backfilled = [{"days": ["2015-05-17", "2015-05-18"], "origin": "backfill"}]
    assert plan_run("asset_triggered", None, asset_extras=backfilled) == {
        "date": "2015-05-18",
        "suites": "reconciled",
    }
    assert plan_run("manual", hourly, "2026-01-01", "events") == {
        "date": "2026-01-01",
        "suites": "events",
    }
    with pytest.raises(ConfigError):
        plan_run("manual", hourly, "yesterday")


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
