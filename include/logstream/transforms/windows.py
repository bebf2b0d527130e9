"""Window and day arithmetic shared by the stream, the nightly replay and the reports.

Windows start at every multiple of their slide (the window length when tumbling) counted from the
epoch, in UTC, as Spark's ``window()`` places them.

Which events a day needs
    The windows starting on day D cover event times from the first start on D to the last start
    on D plus the window length. Nothing before D is needed (a window starting on D holds no
    earlier event). Windows that start before midnight and end after it (every sliding family:
    the 1-minute/30-second user activity runs until D+1 00:00:30) need the first minutes of D+1.
    :func:`family_span` and :func:`event_span` compute that range;
    :func:`logstream.storage.bronze.bronze_partitions` turns it into the partitions to read.

Deterministic output
    Floating-point sums (averages, stddev) and ``percentile_approx`` depend on the order in which
    rows and partial aggregates are combined. :func:`arrange_for_aggregation` hash-partitions the
    rows so that every window's rows sit in ONE partition (by the group keys, or by the tumbling
    window's index for the global family) and sorts them by (event time, event id) inside it, so
    each window is aggregated from one fixed row sequence whatever the cluster does.
    :func:`windows_of_day` gathers a family-day's rows into one partition sorted by
    (window_start, keys): one file, the same bytes on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from logstream.catalog import Family
from logstream.timeutil import from_ms, interval_ms, to_ms
from logstream.transforms import aggregate

DAY = timedelta(days=1)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def is_tumbling(family: Family) -> bool:
    """Whether the family's windows do not overlap (no slide, or a slide equal to the window)."""
    return family.slide is None or interval_ms(family.slide) == interval_ms(family.window)


def family_span(family: Family, day: date) -> tuple[datetime, datetime] | None:
    """Event times ``[from, until)`` that the windows of ``family`` starting on ``day`` cover.

    Windows start at every multiple of the slide (the window length when tumbling) counted from
    the epoch; an event at ``t`` is in each window with ``start <= t < start + window``. ``None``
    if no window starts on that day (a slide longer than a day).
    """
    size = interval_ms(family.window)
    slide = interval_ms(family.slide) if family.slide else size
    first_ms = -(-to_ms(day_start(day)) // slide) * slide  # first multiple of slide >= midnight
    last_ms = (to_ms(day_start(day + DAY)) - 1) // slide * slide  # last one before next midnight
    if first_ms > last_ms:
        return None
    return from_ms(first_ms), from_ms(last_ms + size)


def event_span(families: Iterable[Family], day: date) -> tuple[datetime, datetime] | None:
    """The union of :func:`family_span` over ``families`` (one contiguous range)."""
    spans = [span for family in families if (span := family_span(family, day)) is not None]
    if not spans:
        return None
    return min(lo for lo, _ in spans), max(hi for _, hi in spans)


def within_span(
    span: tuple[datetime, datetime], time_column: str = "event_time"
) -> Callable[[DataFrame], DataFrame]:
    """Events with ``span[0] <= time < span[1]``."""
    lo, hi = span
    return lambda events: events.where(
        (F.col(time_column) >= F.lit(lo)) & (F.col(time_column) < F.lit(hi))
    )


def arrange_for_aggregation(
    group: Sequence[Family], partitions: int
) -> Callable[[DataFrame], DataFrame]:
    """Put every window's rows in one partition, in (event time, event id) order.

    This is what makes the floating-point aggregates and percentiles of a re-run identical: each
    window is aggregated from one fixed row sequence, never from partial results merged in the
    order a shuffle happens to deliver them. Keyed families partition by their keys; the global
    family by its tumbling window's index; a global sliding family needs a single partition.
    """
    head = group[0]

    def transform(events: DataFrame) -> DataFrame:
        if head.keys:
            spread = events.repartition(partitions, *head.keys)
        elif is_tumbling(head):
            size_us = interval_ms(head.window) * 1_000
            index = F.floor(F.unix_micros(head.time_column) / F.lit(size_us))
            spread = events.repartition(partitions, index)
        else:
            spread = events.repartition(1)
        return spread.sortWithinPartitions(head.time_column, "event_id")

    return transform


def windows_of_day(family: Family, day: date) -> Callable[[DataFrame], DataFrame]:
    """A group's aggregates -> the family's rows for windows starting on ``day``, as ONE
    partition sorted by (window_start, keys) (the aggregation itself stays parallel; only its
    small output is gathered)."""

    def transform(aggregates: DataFrame) -> DataFrame:
        return (
            aggregates.transform(aggregate.project(family))
            .where(F.col("window_date") == F.lit(day))
            .repartition(1)
            .sortWithinPartitions("window_start", *family.keys)
        )

    return transform
