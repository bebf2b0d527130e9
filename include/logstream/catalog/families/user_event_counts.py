"""``user_event_counts``: a user's events over 5 minutes sliding 2, the input of the high-activity
rule (SPEC §5.2.5)."""

from __future__ import annotations

from logstream.catalog.model import Family, count

USER_EVENT_COUNTS = Family(
    name="user_event_counts",
    source="user_events",
    keys=("user_id",),
    window="5 minutes",
    delay="5 minutes",
    aggregates=("n",),
    metrics=(count("event_count"),),
    count_column="event_count",
    slide="2 minutes",
    key_filter=("user_id",),
)
