"""Window and day arithmetic (hand-computed spans on the epoch grid) and the deterministic
arrangement of rows before a replay's aggregation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import functions as F

from logstream import catalog, schemas
from logstream.transforms import aggregate
from logstream.transforms.windows import (
    arrange_for_aggregation,
    day_start,
    event_span,
    family_span,
    is_tumbling,
    windows_of_day,
)

D = date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
NEXT = MIDNIGHT + timedelta(days=1)
FAMILY = catalog.FAMILY_BY_NAME


def at(hours: int = 0, minutes: int = 0, seconds: int = 0, base: datetime = MIDNIGHT) -> datetime:
    return base + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_a_day_starts_at_utc_midnight():
    assert day_start(D) == MIDNIGHT


def test_tumbling_means_no_slide_or_a_slide_equal_to_the_window():
    assert is_tumbling(FAMILY["response_time"])  # 1 minute, no slide
    assert not is_tumbling(FAMILY["user_event_activity"])  # 1 minute sliding 30 s
    assert is_tumbling(replace(FAMILY["response_time"], slide="60 seconds"))


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


def test_windows_of_a_day_are_one_partition_sorted_by_window_and_keys(spark):
    family = FAMILY["error_rate"]  # per service and minute
    fields = schemas.EVENTS.fieldNames()
    rows = []
    for n, (service, moment, status) in enumerate(
        [
            ("web", at(23, 59, 10), 500),
            ("api", at(23, 59, 30), 200),
            ("api", at(0, 0, 10, base=NEXT), 200),  # a window of the next day
            ("api", at(0, 0, 5), 404),
        ]
    ):
        row = dict.fromkeys(fields)
        row.update(event_id=f"logs:0:{n}", event_time=moment, service=service, status_code=status)
        rows.append(tuple(row[name] for name in fields))
    events = spark.createDataFrame(rows, schemas.EVENTS)
    day = events.transform(aggregate.aggregate_batch((family,))).transform(
        windows_of_day(family, D)
    )
    assert day.rdd.getNumPartitions() == 1
    got = [
        (r["window_start"].astimezone(UTC), r["service"], r["total_requests"], r["error_count"])
        for r in day.collect()
    ]
    assert got == [
        (at(0, 0), "api", 1, 1),
        (at(23, 59), "api", 1, 0),
        (at(23, 59), "web", 1, 1),
    ]
