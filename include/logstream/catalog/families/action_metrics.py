"""``action_metrics``: per action, its count, distinct users and value statistics (SPEC §5.3)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, set_size, value

ACTION_METRICS = Family(
    name="action_metrics",
    source="user_events",
    keys=("action",),
    window="2 minutes",
    delay="5 minutes",
    aggregates=("n", "users", "value_avg", "value_max", "value_min"),
    metrics=(
        count("action_count"),
        set_size("unique_users", "users"),
        value("avg_value", lambda: F.col("value_avg")),
        value("max_value", lambda: F.col("value_max")),
        value("min_value", lambda: F.col("value_min")),
    ),
    count_column="action_count",
    slide="1 minute",
    key_filter=("action",),
    orderings=(("max_value", "min_value"), ("action_count", "unique_users")),
    mean_bounds=(("min_value", "avg_value", "max_value"),),
)
