"""Table suites on tiny inline DataFrames: a clean table passes, each kind of breakage fails
exactly the expectation meant to catch it, and the freshness parameter is decided at run time.

Expected verdicts are written by hand from the rows in support.py, never read back from the suites.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import types as T

from logstream.batch.quality.checks import table_checks
from logstream.batch.quality.expectations import consistency_rules, table_expectations
from logstream.batch.quality.plan import expectation_parameters
from logstream.storage.tables import table_schema
from tests.include.batch.quality.support import (
    DAY,
    NOW,
    T0,
    error_rate_row,
    event_row,
    failed,
    response_time_row,
    validate,
)


def test_consistency_rules_of_a_metric_table(settings):
    columns = {"window_start", "window_end", "service", "total_requests", "error_count"}
    assert consistency_rules(table_checks(settings)["error_rate"], columns) == [
        ("window_start < window_end", "window_end > window_start"),
        ("error_count <= total_requests", "total_requests >= error_count"),
    ]
    # an event table has no window and no family: nothing to order
    assert consistency_rules(table_checks(settings)["events"], {"event_id", "event_time"}) == []


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
