"""``processing_latency``: processing time minus event time per service and minute, with an alert
level (SPEC §5.1.8)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from logstream.catalog.model import Family, Metric, count, value

#: The level of an average latency is the first whose threshold (ms) it exceeds.
LEVEL_THRESHOLDS_MS = (("CRITICAL", 2000.0), ("WARNING", 1000.0), ("INFO", 500.0))
#: The level below every threshold.
LEVEL_OK = "OK"


def alert_level(avg_ms: Column) -> Column:
    """The level of an average latency in ms."""
    level = F.lit(LEVEL_OK)
    for name, threshold in reversed(LEVEL_THRESHOLDS_MS):
        level = F.when(avg_ms > threshold, name).otherwise(level)
    return level


PROCESSING_LATENCY = Family(
    name="processing_latency",
    source="events",
    keys=("service",),
    window="1 minute",
    delay="10 minutes",
    aggregates=("n", "lat_avg", "lat_max", "lat_min"),
    metrics=(
        count("record_count"),
        value("avg_latency_ms", lambda: F.col("lat_avg")),
        value("max_latency_ms", lambda: F.col("lat_max")),
        value("min_latency_ms", lambda: F.col("lat_min")),
        Metric(
            "alert_level",
            lambda: alert_level(F.col("lat_avg")),
            values=(*(name for name, _ in LEVEL_THRESHOLDS_MS), LEVEL_OK),
        ),
    ),
    count_column="record_count",
    orderings=(("max_latency_ms", "min_latency_ms"),),
    mean_bounds=(("min_latency_ms", "avg_latency_ms", "max_latency_ms"),),
)
