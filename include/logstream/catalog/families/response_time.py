"""``response_time``: request count and response-time statistics per service and minute (SPEC
§5.1.1)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, value

RESPONSE_TIME = Family(
    name="response_time",
    source="events",
    keys=("service",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "rt_avg", "rt_min", "rt_max", "rt_std", "rt_pct"),
    metrics=(
        count("request_count"),
        value("avg_response_time", lambda: F.col("rt_avg"), low=0),
        value("min_response_time", lambda: F.col("rt_min"), low=0),
        value("max_response_time", lambda: F.col("rt_max"), low=0),
        value("stddev_response_time", lambda: F.col("rt_std"), low=0),
        value("p50_response_time", lambda: F.col("rt_pct")[0], low=0),
        value("p95_response_time", lambda: F.col("rt_pct")[1], low=0),
        value("p99_response_time", lambda: F.col("rt_pct")[2], low=0),
    ),
    count_column="request_count",
    orderings=(
        ("p95_response_time", "p50_response_time"),
        ("p99_response_time", "p95_response_time"),
        ("max_response_time", "p99_response_time"),
        ("p50_response_time", "min_response_time"),
    ),
    mean_bounds=(("min_response_time", "avg_response_time", "max_response_time"),),
)
