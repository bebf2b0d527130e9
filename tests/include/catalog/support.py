"""Helpers shared by the catalogue tests: bronze rows from the few fields a test names, one
family's table computed as the stream and the replay compute it, and a comparison with rows
written by hand that allows rounding in doubles.

Every test day is 2026-11-25 (UTC, the session time zone); a field a test does not name is null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from logstream import schemas
from logstream.catalog.model import Family
from logstream.transforms import aggregate

DAY = date(2026, 11, 25)


def ts(clock: str, day: date = DAY) -> datetime:
    """A UTC moment from ``HH:MM``, ``HH:MM:SS`` or ``HH:MM:SS.ffffff`` on ``day``."""
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=UTC)


def ms_after(moment: datetime, milliseconds: int) -> datetime:
    return moment + timedelta(milliseconds=milliseconds)


def ev(clock: str | datetime, **fields: Any) -> dict[str, Any]:
    """One event at ``clock`` (see :func:`ts`) with the given fields."""
    moment = ts(clock) if isinstance(clock, str) else clock
    return {"event_time": moment, **fields}


def _frame(spark: SparkSession, schema: T.StructType, rows: Iterable[Mapping]) -> DataFrame:
    fields = schema.fieldNames()
    data = []
    for number, given in enumerate(rows):
        unknown = set(given) - set(fields)
        assert not unknown, f"not a column of the table: {sorted(unknown)}"
        row: dict[str, Any] = dict.fromkeys(fields)
        row["event_id"] = f"test:0:{number}"
        row.update(given)
        moment = row["event_time"]
        row["event_date"] = moment.date()
        row["event_hour"] = moment.hour
        data.append(tuple(row[name] for name in fields))
    return spark.createDataFrame(data, schema)


def events(spark: SparkSession, rows: Iterable[Mapping]) -> DataFrame:
    """Bronze ``events`` rows (schemas.EVENTS)."""
    return _frame(spark, schemas.EVENTS, rows)


def user_events(spark: SparkSession, rows: Iterable[Mapping]) -> DataFrame:
    """Bronze ``user_events`` rows (schemas.USER_EVENTS)."""
    return _frame(spark, schemas.USER_EVENTS, rows)


def _utc(value: Any) -> Any:
    # collect() gives naive datetimes in the process's local time
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def table(family: Family, frame: DataFrame) -> list[dict[str, Any]]:
    """The family's table over the events, as the stream and the replay compute it: its rows as
    dicts (columns in table order) sorted by window start and keys, times in UTC."""
    result = frame.transform(aggregate.aggregate_batch((family,))).transform(
        aggregate.project(family)
    )
    rows = [{name: _utc(value) for name, value in row.asDict().items()} for row in result.collect()]
    return sorted(
        rows,
        key=lambda row: [
            (row[name] is not None, row[name]) for name in ("window_start", *family.keys)
        ],
    )


def expected(
    start: str | datetime,
    end: str | datetime,
    *,
    window_date: date = DAY,
    **columns: Any,
) -> dict[str, Any]:
    """One table row written by hand: window, keys and metrics in table order, then the
    ``window_date`` partition column."""
    return {
        "window_start": ts(start) if isinstance(start, str) else start,
        "window_end": ts(end) if isinstance(end, str) else end,
        **columns,
        "window_date": window_date,
    }


def _approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12) if isinstance(value, float) else value


def assert_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Same rows in the same order, same columns in the same order; doubles up to rounding."""
    assert len(got) == len(want), got
    for got_row, want_row in zip(got, want, strict=True):
        assert list(got_row) == list(want_row)
        assert got_row == {name: _approx(value) for name, value in want_row.items()}


def assert_declared_invariants(family: Family, rows: list[dict[str, Any]]) -> None:
    """What the declaration says of every row (bounds, value sets, orderings, mean bounds) holds
    on rows worked out by hand: the quality checks built from it accept correct tables."""
    assert rows
    for row in rows:
        assert row[family.count_column] >= 1, row
        for metric in family.metrics:
            got = row[metric.name]
            if got is None:
                continue
            if metric.low is not None:
                assert got >= metric.low, (metric.name, row)
            if metric.high is not None:
                assert got <= metric.high, (metric.name, row)
            if metric.values is not None:
                assert got in metric.values, (metric.name, row)
        for larger, smaller in family.orderings:
            if row[larger] is not None and row[smaller] is not None:
                assert row[larger] >= row[smaller], (larger, smaller, row)
        for low, mean, high in family.mean_bounds:
            if row[mean] is not None:
                assert row[low] - 1e-9 <= row[mean] <= row[high] + 1e-9, (low, mean, high, row)


def shape(family: Family) -> tuple:
    """(source, keys, window, slide, delay, count column) of a declaration."""
    return (
        family.source,
        family.keys,
        family.window,
        family.slide,
        family.delay,
        family.count_column,
    )
