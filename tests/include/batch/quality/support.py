"""Hand-written rows of the quality tests and a helper that validates them as one table suite.

Expected verdicts are written by hand from these rows, never read back from the suites.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from logstream import schemas
from logstream.batch.quality.checks import table_checks
from logstream.batch.quality.expectations import table_expectations
from logstream.storage.tables import table_schema

DAY = date(2026, 1, 14)
T0 = datetime(2026, 1, 14, 23, 40)  # naive = UTC (the test session's time zone is UTC)
NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)  # the day is over: fresh_since = 23:00 on DAY


def validate(run, spark, settings, table, rows, params=None):
    """``rows`` as one day of ``table``, validated against its suite."""
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
