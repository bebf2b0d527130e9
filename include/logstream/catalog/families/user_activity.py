"""``user_activity``: requests, distinct services and mean response time per user over 5 minutes
(SPEC §5.1.5)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, set_size, value

USER_ACTIVITY = Family(
    name="user_activity",
    source="events",
    keys=("user_id",),
    window="5 minutes",
    delay="10 minutes",
    aggregates=("n", "services", "rt_avg"),
    metrics=(
        count("activity_count"),
        set_size("distinct_services", "services"),
        value("avg_response_time", lambda: F.col("rt_avg"), low=0),
    ),
    count_column="activity_count",
    key_filter=("user_id",),
    orderings=(("activity_count", "distinct_services"),),
)
