"""What a metric table is: a :class:`Family` of :class:`Metric` columns over one window.

A family names its grouping keys, window, slide and watermark delay, the named aggregates it
needs (:data:`logstream.catalog.aggregates.AGGREGATES`), and its columns. Each column says how it
is computed from the aggregates and what every value must satisfy, so the table's schema, its
quality checks, its reconciliation count column and its stream/replay aggregation all come from
this one declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column
from pyspark.sql import functions as F

from logstream.timeutil import interval_ms


@dataclass(frozen=True)
class Metric:
    """One column of a metric table.

    ``low``/``high`` bound every non-null value (inclusive; None = unbounded), ``values`` is the
    set every value belongs to (None = any).
    """

    name: str
    value: Callable[[], Column]
    low: float | None = None
    high: float | None = None
    values: tuple | None = None

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None


def count(name: str, aggregate: str = "n") -> Metric:
    """A row count: an aggregate as it is, never negative."""
    return Metric(name, lambda: F.col(aggregate), low=0)


def set_size(name: str, aggregate: str) -> Metric:
    """The number of distinct values an aggregate collected, never negative."""
    return Metric(name, lambda: F.size(aggregate), low=0)


def percentage(part: str, whole: str = "n") -> Column:
    """Aggregate ``part`` as a percentage of aggregate ``whole``."""
    return F.col(part) / F.col(whole) * 100.0


def percent_of(name: str, part: str, whole: str = "n") -> Metric:
    """``part`` as a percentage of ``whole``, in [0, 100]."""
    return Metric(name, lambda: percentage(part, whole), low=0, high=100)


def value(name: str, expression: Callable[[], Column], low: float | None = None) -> Metric:
    """Any other column; ``low`` bounds it from below when given."""
    return Metric(name, expression, low=low)


@dataclass(frozen=True)
class Family:
    """One metric table: what to group by, over which window, and what to compute."""

    name: str
    source: str  # "events" | "user_events"
    keys: tuple[str, ...]
    window: str
    delay: str
    aggregates: tuple[str, ...]
    metrics: tuple[Metric, ...]
    #: the column counting the events of a window (reconciliation compares the stream with it)
    count_column: str
    slide: str | None = None
    time_column: str = "event_time"
    key_filter: tuple[str, ...] = field(default=())  # keys that must be non-null
    #: (larger, smaller): larger >= smaller on every row where both are present
    orderings: tuple[tuple[str, str], ...] = ()
    #: (min, mean, max): min <= mean <= max, up to rounding
    mean_bounds: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:
        names = [metric.name for metric in self.metrics]
        if self.count_column not in names:
            raise ValueError(f"{self.name}: count column {self.count_column} is not a metric")
        for pair in (*self.orderings, *self.mean_bounds):
            missing = set(pair) - set(names)
            if missing:
                raise ValueError(f"{self.name}: {sorted(missing)} are not metrics of the family")

    @property
    def group_signature(self) -> tuple:
        return (self.source, self.keys, self.window, self.slide, self.delay, self.time_column)

    @property
    def delay_ms(self) -> int:
        return interval_ms(self.delay)

    @property
    def counts_service_requests(self) -> bool:
        """Its count column is the number of bronze events per (service, window)."""
        return self.source == "events" and self.keys == ("service",)

    def metric(self, name: str) -> Metric:
        return next(metric for metric in self.metrics if metric.name == name)
