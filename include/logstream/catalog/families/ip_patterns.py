"""``ip_patterns``: requests, distinct users and services per client IP over 5 minutes (SPEC
§5.1.3)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, set_size, value

IP_PATTERNS = Family(
    name="ip_patterns",
    source="events",
    keys=("ip_address",),
    window="5 minutes",
    delay="10 minutes",
    aggregates=("n", "users", "services"),
    metrics=(
        count("request_count"),
        set_size("unique_users", "users"),
        value("services_used", lambda: F.array_sort("services")),
    ),
    count_column="request_count",
    key_filter=("ip_address",),
    orderings=(("request_count", "unique_users"),),
)
