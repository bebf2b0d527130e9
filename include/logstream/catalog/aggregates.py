"""The named aggregates metric families are computed from (SPEC §5.1, §5.3).

An :class:`Aggregate` is one Spark aggregate expression and the event columns it reads. Families
name the aggregates they need; :func:`logstream.transforms.aggregate.aggregate_batch` computes a
group's aggregates in one pass, and each family projects its table columns from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

PERCENTILE_ACCURACY = 10_000  # percentile_approx: rank error <= n / 10000


@dataclass(frozen=True)
class Aggregate:
    """A Spark aggregate (a factory: Columns bind a session) and the event columns it reads."""

    expression: Callable[[], Column]
    inputs: tuple[str, ...] = ()


def _latency_ms() -> Column:
    return (F.unix_millis("processing_time") - F.unix_millis("event_time")).cast("double")


def _sorted_actions() -> Column:
    ordered = F.array_sort(F.collect_list(F.struct("event_time", "action")))
    return F.transform(ordered, lambda item: item["action"])


_LATENCY_INPUTS = ("processing_time", "event_time")

#: Every aggregate a family can name.
AGGREGATES: dict[str, Aggregate] = {
    "n": Aggregate(lambda: F.count(F.lit(1))),
    "rt_avg": Aggregate(lambda: F.avg("response_time"), ("response_time",)),
    "rt_min": Aggregate(lambda: F.min("response_time"), ("response_time",)),
    "rt_max": Aggregate(lambda: F.max("response_time"), ("response_time",)),
    "rt_std": Aggregate(lambda: F.stddev_samp("response_time"), ("response_time",)),
    "rt_pct": Aggregate(
        lambda: F.percentile_approx("response_time", [0.5, 0.95, 0.99], PERCENTILE_ACCURACY),
        ("response_time",),
    ),
    "errors": Aggregate(lambda: F.count(F.when(F.col("status_code") >= 400, 1)), ("status_code",)),
    "fast": Aggregate(
        lambda: F.count(F.when(F.col("response_time") <= 1.0, 1)), ("response_time",)
    ),
    "ok": Aggregate(lambda: F.count(F.when(F.col("status_code") == 200, 1)), ("status_code",)),
    "users": Aggregate(lambda: F.collect_set("user_id"), ("user_id",)),
    "services": Aggregate(lambda: F.collect_set("service"), ("service",)),
    # an exact distinct count where only the number matters and keys are many (per IP and
    # minute): Spark's two-level distinct aggregation is twice as fast as a set per key there.
    # Not beside percentile_approx (measured 40x slower) or a second distinct column.
    "n_users": Aggregate(lambda: F.count_distinct("user_id"), ("user_id",)),
    "lat_avg": Aggregate(lambda: F.avg(_latency_ms()), _LATENCY_INPUTS),
    "lat_min": Aggregate(lambda: F.min(_latency_ms()), _LATENCY_INPUTS),
    "lat_max": Aggregate(lambda: F.max(_latency_ms()), _LATENCY_INPUTS),
    # user-events
    "actions_set": Aggregate(lambda: F.collect_set("action"), ("action",)),
    "actions_seq": Aggregate(_sorted_actions, ("event_time", "action")),
    "value_sum": Aggregate(lambda: F.sum("value"), ("value",)),
    "value_avg": Aggregate(lambda: F.avg("value"), ("value",)),
    "value_min": Aggregate(lambda: F.min("value"), ("value",)),
    "value_max": Aggregate(lambda: F.max("value"), ("value",)),
}
