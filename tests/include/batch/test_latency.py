"""Latency statistics (SPEC §7.3, §5.1.8): hand-computed statistics, levels and hours.

Tiny inline frames whose expected values are worked out by hand in the comments; percentiles on
sets this small are exact for percentile_approx (rank ceil(p * n) of the sorted values).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pyspark.sql import types as T

from logstream import schemas
from logstream.batch import latency as summary
from logstream.errors import ConfigError

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def event(service: str, at: datetime, to_kafka_ms: float, to_processed_ms: float) -> dict:
    """A bronze row with the three timestamps a latency stage needs (others left null)."""
    kafka = at + to_kafka_ms * MS
    row = {name: None for name in schemas.EVENTS.fieldNames()}
    row.update(
        event_id=f"logs:0:{at.timestamp()}:{service}",
        event_time=at,
        service=service,
        kafka_timestamp=kafka,
        processing_time=kafka + to_processed_ms * MS,
        event_date=at.date(),
        event_hour=at.hour,
    )
    return row


def events_frame(spark, rows: list[dict]):
    fields = schemas.EVENTS.fieldNames()
    return spark.createDataFrame([tuple(r[f] for f in fields) for r in rows], schemas.EVENTS)


def by_key(rows) -> dict[tuple[str, str], dict]:
    return {(r["service"], r["stage"]): r for r in (row.asDict() for row in rows)}


def test_event_stages_per_service_and_overall_match_hand_computed_values(spark):
    at = HOUR + timedelta(minutes=10)
    rows = [
        # api: event->kafka 100, 200, 50; kafka->processed 300, 500, 150; end-to-end 400, 700, 200
        event("api", at, 100, 300),
        event("api", at + timedelta(minutes=1), 200, 500),
        event("api", at + timedelta(minutes=2), 50, 150),
        # web: end-to-end 1000 and 2000; the second one is the hour's very last microsecond
        event("web", at, 10, 990),
        event("web", HOUR + timedelta(hours=1) - timedelta(microseconds=1), 20, 1980),
        # outside the hour: the next hour's first instant and the previous hour
        event("web", HOUR + timedelta(hours=1), 99_999, 99_999),
        event("api", HOUR - timedelta(seconds=1), 99_999, 99_999),
    ]
    report = (
        events_frame(spark, rows)
        .transform(summary.events_in_hour(HOUR))
        .transform(summary.event_stage_summary)
        .transform(summary.finish_report(HOUR))
        .collect()
    )
    got = by_key(report)
    assert len(report) == 9  # (api, web, *) x 3 stages

    expected = {
        # (service, stage): (count, p50, p95, p99, max, avg, level)
        ("api", "event_to_kafka_ms"): (3, 100, 200, 200, 200, 350 / 3, None),
        ("api", "kafka_to_processed_ms"): (3, 300, 500, 500, 500, 950 / 3, "OK"),
        ("api", "end_to_end_ms"): (3, 400, 700, 700, 700, 1300 / 3, "OK"),
        ("web", "event_to_kafka_ms"): (2, 10, 20, 20, 20, 15, None),
        ("web", "kafka_to_processed_ms"): (2, 990, 1980, 1980, 1980, 1485, "WARNING"),
        ("web", "end_to_end_ms"): (2, 1000, 2000, 2000, 2000, 1500, "WARNING"),
        # all five: end-to-end sorted 200 400 700 1000 2000 -> p50 rank 3, p95/p99 rank 5
        ("*", "event_to_kafka_ms"): (5, 50, 200, 200, 200, 76, None),
        ("*", "kafka_to_processed_ms"): (5, 500, 1980, 1980, 1980, 3920 / 5, "INFO"),
        ("*", "end_to_end_ms"): (5, 700, 2000, 2000, 2000, 860, "INFO"),
    }
    for key, (count, p50, p95, p99, top, avg, level) in expected.items():
        row = got[key]
        assert row["count"] == count, key
        assert (row["p50"], row["p95"], row["p99"], row["max"]) == pytest.approx(
            (p50, p95, p99, top), abs=1e-6
        ), key
        assert row["avg"] == pytest.approx(avg, rel=1e-9), key
        assert row["alert_level"] == level, key
        assert row["scope"] == ("all" if key[0] == "*" else "service")
        assert row["unit"] == "ms"
        assert row["report_hour"].astimezone(UTC) == HOUR
        assert row["report_date"] == date(2026, 11, 25)


#: end-to-end latency exactly at and just above each SPEC §5.1.8 threshold -> expected level
BOUNDARIES = {500.0: "OK", 500.5: "INFO", 1000.0: "INFO", 1000.5: "WARNING", 2000.0: "WARNING"}
BOUNDARIES[2000.5] = "CRITICAL"


def test_alert_levels_at_the_spec_boundaries(spark):
    # one service per boundary value, each with one event whose latency is exactly that value
    at = HOUR + timedelta(minutes=5)
    frame = events_frame(spark, [event(f"s{ms}", at, 0, ms) for ms in BOUNDARIES])
    report = by_key(
        frame.transform(summary.event_stage_summary)
        .transform(summary.finish_report(HOUR))
        .collect()
    )
    for ms, level in BOUNDARIES.items():
        assert report[(f"s{ms}", "end_to_end_ms")]["avg"] == ms
        assert report[(f"s{ms}", "end_to_end_ms")]["alert_level"] == level, ms
        assert report[(f"s{ms}", "kafka_to_processed_ms")]["alert_level"] == level, ms
        assert report[(f"s{ms}", "event_to_kafka_ms")]["alert_level"] is None


def test_an_hour_without_events_gives_no_rows(spark):
    empty = spark.createDataFrame([], schemas.EVENTS)
    report = empty.transform(summary.event_stage_summary).transform(summary.finish_report(HOUR))
    assert report.collect() == []
    assert report.schema.fieldNames() == schemas.LATENCY_REPORT.fieldNames()


def history(query: str, minute: int, **values) -> dict:
    return {"timestamp": (HOUR + timedelta(minutes=minute)).isoformat(), "query": query, **values}


def test_progress_history_becomes_query_stage_samples():
    records = [
        # ingestion: no watermark, Kafka lag and event-time lag
        history("ingest_logs", 1, batch_duration_ms=800, kafka_lag=12, event_time_lag_ms=1500.0),
        # metrics query before its first data: Spark reports the epoch as the watermark
        history("metrics_a", 2, batch_duration_ms=300, watermark="1970-01-01T00:00:00.000Z"),
        # metrics query: progress 13:03:00, watermark 12:58:00 -> 5 minutes = 300 000 ms
        history("metrics_a", 3, batch_duration_ms=400, watermark="2026-11-25T12:58:00.000Z"),
        history("metrics_a", 4, batch_duration_ms=None, kafka_lag=None, watermark=None),
    ]
    assert summary.progress_samples(records) == [
        ("query", "ingest_logs", "batch_duration_ms", "ms", 800.0),
        ("query", "ingest_logs", "kafka_lag_records", "records", 12.0),
        ("query", "ingest_logs", "event_time_lag_ms", "ms", 1500.0),
        ("query", "metrics_a", "batch_duration_ms", "ms", 300.0),
        ("query", "metrics_a", "batch_duration_ms", "ms", 400.0),
        ("query", "metrics_a", "watermark_delay_ms", "ms", 300_000.0),
    ]


def test_query_samples_summarise_to_hand_computed_statistics(spark):
    durations = [100.0, 400.0, 200.0, 300.0, 1000.0]  # sorted 100 200 300 400 1000
    samples = [("query", "ingest_logs", "batch_duration_ms", "ms", v) for v in durations]
    samples.append(("query", "ingest_logs", "kafka_lag_records", "records", 7.0))
    frame = spark.createDataFrame(samples, summary.SAMPLES)
    got = by_key(
        frame.transform(summary.sample_summary).transform(summary.finish_report(HOUR)).collect()
    )
    duration = got[("ingest_logs", "batch_duration_ms")]
    assert duration["count"] == 5
    assert (duration["p50"], duration["p95"], duration["p99"]) == (300.0, 1000.0, 1000.0)
    assert (duration["max"], duration["avg"]) == (1000.0, 400.0)
    assert duration["alert_level"] is None and duration["scope"] == "query"
    lag = got[("ingest_logs", "kafka_lag_records")]
    assert (lag["count"], lag["max"], lag["unit"]) == (1, 7.0, "records")


# -- hours -----------------------------------------------------------------------------------------
def test_the_reported_hour_is_the_param_or_the_full_hour_before_the_run():
    assert summary.report_hour_for_run("2026-11-25T07", None) == "2026-11-25T07"
    run_at = datetime(2026, 11, 25, 14, 5, tzinfo=UTC)
    assert summary.report_hour_for_run(None, run_at) == "2026-11-25T13"
    assert summary.report_hour_for_run("", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)) == (
        "2026-11-25T23"
    )
    assert summary.parse_hour("2026-11-25T13") == HOUR
    with pytest.raises(ConfigError, match="YYYY-MM-DDTHH"):
        summary.parse_hour("2026-11-25 13:00")
    with pytest.raises(ConfigError, match="param hour"):
        summary.report_hour_for_run(None, None)


def test_the_table_schema_is_the_declared_one(spark):
    frame = spark.createDataFrame([], summary.SAMPLES).transform(summary.sample_summary)
    finished = frame.transform(summary.finish_report(HOUR))
    assert [(f.name, f.dataType) for f in finished.schema.fields] == [
        (f.name, f.dataType) for f in schemas.LATENCY_REPORT.fields
    ]
    assert schemas.LATENCY_REPORT["report_date"].dataType == T.DateType()
