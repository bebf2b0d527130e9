"""Where bronze rows live: the ``event_date``/``event_hour`` partitions of a time span."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession

from logstream.config import Settings
from logstream.storage.tables import read_partitions
from logstream.transforms.windows import DAY, within_span

_MICROSECOND = timedelta(microseconds=1)


def bronze_partitions(span: tuple[datetime, datetime]) -> list[tuple[date, int | None]]:
    """The bronze partitions holding event times in ``span``: ``(event_date, event_hour)``, with
    ``event_hour`` None when the whole date is needed (read the date folder)."""
    lo, hi = span
    last = hi - _MICROSECOND
    partitions: list[tuple[date, int | None]] = []
    current = lo.date()
    while current <= last.date():
        first_hour = lo.hour if current == lo.date() else 0
        last_hour = last.hour if current == last.date() else 23
        if first_hour == 0 and last_hour == 23:
            partitions.append((current, None))
        else:
            partitions.extend((current, hour) for hour in range(first_hour, last_hour + 1))
        current += DAY
    return partitions


def read_bronze(
    spark: SparkSession, settings: Settings, source: str, span: tuple[datetime, datetime]
) -> DataFrame:
    """Bronze rows of ``source`` with event times in ``span``, reading only their partitions."""
    folders = [
        f"event_date={event_date.isoformat()}" + (f"/event_hour={hour}" if hour is not None else "")
        for event_date, hour in bronze_partitions(span)
    ]
    return read_partitions(spark, settings, source, folders).transform(within_span(span))
