"""``ip_requests``: requests and distinct users per client IP and minute, the input of the DDoS
rule (SPEC §5.2.3)."""

from __future__ import annotations

from pyspark.sql import functions as F

from logstream.catalog.model import Family, count, value

IP_REQUESTS = Family(
    name="ip_requests",
    source="events",
    keys=("ip_address",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "n_users"),
    metrics=(
        count("request_count"),
        value("unique_users", lambda: F.col("n_users").cast("int"), low=0),
    ),
    count_column="request_count",
    key_filter=("ip_address",),
    orderings=(("request_count", "unique_users"),),
)
