"""What a micro-batch lands (logstream.transforms.landing), on tiny static frames.

Expected rows are written by hand; times are 2026-03-02 UTC, shown as ``HH:mm:ss``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pyspark.sql import functions as F

from logstream import schemas
from logstream.transforms import landing
from logstream.transforms.parsing import ParseOptions, parse_log_records

KAFKA_TS = datetime(2026, 3, 3, 0, 10, tzinfo=UTC)  # the next day: quarantine_date follows it
BATCH_MS = int(datetime(2026, 3, 3, 0, 20, tzinfo=UTC).timestamp() * 1000)
HIGH_WATER_MS = int(datetime(2026, 3, 2, 23, 50, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
DELAYS = [("ip_requests", 10 * MINUTE), ("error_rate", 5 * MINUTE)]  # any order


def parsed(spark, settings):
    """Three records: two valid log events and one without a timestamp."""
    values = [
        {"timestamp": "2026-03-02T23:45:00Z", "service": "api"},
        {"timestamp": "2026-03-03T00:05:30Z", "service": "web"},
        {"service": "api"},
    ]
    rows = [
        (None, json.dumps(value).encode(), "logs", 1, offset, KAFKA_TS)
        for offset, value in enumerate(values)
    ]
    records = spark.createDataFrame(rows, schemas.KAFKA_RECORD)
    return records.transform(parse_log_records(ParseOptions.from_settings(settings)))


def text(frame, *columns):
    """Rows of ``columns``, timestamps as ``HH:mm:ss`` and dates as ISO text, sorted."""
    kinds = dict(frame.dtypes)
    shown = [
        F.date_format(c, "HH:mm:ss").alias(c)
        if kinds[c] == "timestamp"
        else F.col(c).cast("string").alias(c)
        if kinds[c] == "date"
        else F.col(c)
        for c in columns
    ]
    return sorted(tuple(row) for row in frame.select(*shown).collect())


def test_bronze_rows_are_the_valid_events_stamped_with_time_lateness_and_partitions(
    spark, settings
):
    bronze = parsed(spark, settings).transform(
        landing.bronze_rows(schemas.EVENTS, BATCH_MS, HIGH_WATER_MS)
    )
    assert bronze.columns == schemas.EVENTS.fieldNames()
    assert text(
        bronze, "event_id", "service", "processing_time", "lateness_ms", "event_date", "event_hour"
    ) == [
        ("logs:1:0", "api", "00:20:00", 5 * MINUTE, "2026-03-02", 23),
        ("logs:1:1", "web", "00:20:00", -15 * MINUTE - 30_000, "2026-03-03", 0),
    ]


def test_bronze_rows_of_a_first_batch_have_no_lateness(spark, settings):
    bronze = parsed(spark, settings).transform(landing.bronze_rows(schemas.EVENTS, BATCH_MS, None))
    assert text(bronze, "event_id", "lateness_ms") == [("logs:1:0", None), ("logs:1:1", None)]


def test_quarantine_rows_are_the_rejected_records_by_kafka_day(spark, settings):
    rejected = parsed(spark, settings).transform(landing.quarantine_rows(BATCH_MS))
    assert rejected.columns == schemas.QUARANTINE.fieldNames()
    assert text(
        rejected, "kafka_offset", "reason", "processing_time", "kafka_timestamp", "quarantine_date"
    ) == [(2, "missing_timestamp", "00:20:00", "00:10:00", "2026-03-03")]


def test_late_rows_are_those_later_than_the_smallest_delay_with_the_families_they_miss(spark):
    bronze = spark.createDataFrame(
        [("a", 11 * MINUTE), ("b", 7 * MINUTE), ("c", 5 * MINUTE), ("d", None), ("e", -MINUTE)],
        "event_id string, lateness_ms long",
    )
    late = bronze.transform(landing.late_rows(DELAYS))
    assert text(late, "event_id", "late_for") == [
        ("a", ["error_rate", "ip_requests"]),
        ("b", ["error_rate"]),
    ]


def test_the_late_threshold_is_the_smallest_delay():
    assert landing.late_threshold_ms(DELAYS) == 5 * MINUTE
    assert landing.late_threshold_ms([]) == 0


def test_batch_stats_count_and_bound_the_landed_rows(spark):
    def ms(minute: int) -> datetime:
        return datetime(2026, 3, 2, 10, minute, tzinfo=UTC)

    bronze = spark.createDataFrame(
        [
            (ms(1), 12 * MINUTE),  # late for both delays: not usable
            (ms(2), 7 * MINUTE),  # late for the smaller delay, usable for the larger
            (ms(5), 1 * MINUTE),
            (ms(9), None),  # first batch: neither late nor too late
        ],
        "event_time timestamp, lateness_ms long",
    )
    stats = bronze.transform(landing.batch_stats(DELAYS)).first().asDict()
    minute_ms = int(ms(0).timestamp() * 1000)
    assert stats == {
        "max_ms": minute_ms + 9 * MINUTE,
        "min_on_time_ms": minute_ms + 5 * MINUTE,
        "min_usable_ms": minute_ms + 2 * MINUTE,
        "valid": 4,
        "late": 2,
    }


def test_batch_stats_of_log_events_count_errors_and_sum_response_times(spark):
    at = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
    bronze = spark.createDataFrame(
        [(at, None, 200, 0.25), (at, None, 404, None), (at, None, 500, 1.5), (at, None, 399, 2.0)],
        "event_time timestamp, lateness_ms long, status_code int, response_time double",
    )
    stats = bronze.transform(landing.batch_stats(DELAYS)).first().asDict()
    assert (stats["errors"], stats["response_time_sum_s"], stats["response_time_count"]) == (
        2,  # 404 and 500; 399 is not an error
        3.75,
        3,  # the 404 has no response time
    )
    assert set(landing.TRAFFIC_TOTALS) <= set(stats)


def test_batch_stats_of_an_empty_batch_are_null_and_zero(spark):
    bronze = spark.createDataFrame([], "event_time timestamp, lateness_ms long")
    stats = bronze.transform(landing.batch_stats(DELAYS)).first().asDict()
    assert stats == {
        "max_ms": None,
        "min_on_time_ms": None,
        "min_usable_ms": None,
        "valid": 0,
        "late": 0,
    }


def test_late_user_counts_are_per_arrival_day_and_user(spark):
    late = spark.createDataFrame(
        [
            (datetime(2026, 3, 2, 23, 59, tzinfo=UTC), "u1"),
            (datetime(2026, 3, 3, 0, 1, tzinfo=UTC), "u1"),
            (datetime(2026, 3, 3, 0, 2, tzinfo=UTC), "u1"),
            (datetime(2026, 3, 3, 0, 2, tzinfo=UTC), "u2"),
            (datetime(2026, 3, 3, 0, 3, tzinfo=UTC), None),
        ],
        "processing_time timestamp, user_id string",
    )
    counts = sorted(tuple(row) for row in landing.late_user_counts(late).collect())
    assert counts == [("2026-03-02", "u1", 1), ("2026-03-03", "u1", 2), ("2026-03-03", "u2", 1)]
