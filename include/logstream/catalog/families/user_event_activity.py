"""``user_event_activity``: a user's events, distinct actions, value and action sequence (SPEC
§5.3)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, set_size, value

USER_EVENT_ACTIVITY = Family(
    name="user_event_activity",
    source="user_events",
    keys=("user_id",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "actions_set", "value_sum", "actions_seq"),
    metrics=(
        count("total_events"),
        set_size("unique_actions", "actions_set"),
        value("total_value", lambda: F.col("value_sum")),
        value("actions", lambda: F.col("actions_seq")),
    ),
    count_column="total_events",
    slide="30 seconds",
    key_filter=("user_id",),
    orderings=(("total_events", "unique_actions"),),
)
