"""``service_popularity``: requests and distinct users per service and minute (SPEC §5.1.6)."""

from __future__ import annotations

from logstream.catalog.model import Family, count, set_size

SERVICE_POPULARITY = Family(
    name="service_popularity",
    source="events",
    keys=("service",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "users"),
    metrics=(count("request_count"), set_size("unique_users", "users")),
    count_column="request_count",
    orderings=(("request_count", "unique_users"),),
)
