"""A replayed family-day compared with the streamed table, and the day's late events: tiny
inline frames, expected rows written by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from logstream import catalog
from logstream.storage.tables import table_schema
from logstream.transforms.comparisons import change_counts, late_event_stats, window_changes

D = date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
FAMILY = catalog.FAMILY_BY_NAME


def at(hours: int = 0, minutes: int = 0) -> datetime:
    return MIDNIGHT + timedelta(hours=hours, minutes=minutes)


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
    # per family: 4 reconciled windows, 4 streamed rows, one of each change; counts
    # 10+5+4+2 reconciled - (10+4+1+2) streamed = 4
    counts = change_counts(compared).collect()
    assert [row.asDict() for row in counts] == [
        {
            "family": "error_rate",
            "windows": 4,
            "streamed_windows": 4,
            "missing_in_stream": 1,
            "different": 2,
            "only_in_stream": 1,
            "count_delta": 4,
        }
    ]


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


def test_late_events_are_those_later_than_the_threshold(spark):
    rows = [("api", None), ("api", 1_000), ("api", 1_001), ("web", 5_000), ("web", 20)]
    events = spark.createDataFrame(rows, "service string, lateness_ms long")
    per_service = {
        row["service"]: (row["events"], row["late_events"], row["max_lateness_ms"])
        for row in events.transform(late_event_stats(1_000, ("service",))).collect()
    }
    # exactly the threshold is not late; a null lateness (first batch) is an event, not late
    assert per_service == {"api": (3, 1, 1_001), "web": (2, 1, 5_000)}
    overall = events.transform(late_event_stats(1_000)).collect()
    assert [(r["events"], r["late_events"], r["max_lateness_ms"]) for r in overall] == [
        (5, 2, 5_000)
    ]
