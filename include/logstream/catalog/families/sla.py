"""``sla``: availability (status 200) and performance (response <= 1 s) per service and minute
(SPEC §5.1.4)."""

from __future__ import annotations

from logstream.catalog.model import Family, count, percent_of

SLA = Family(
    name="sla",
    source="events",
    keys=("service",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "fast", "ok"),
    metrics=(
        count("total_requests"),
        count("fast_requests", "fast"),
        count("successful_requests", "ok"),
        percent_of("availability_pct", "ok"),
        percent_of("performance_pct", "fast"),
    ),
    count_column="total_requests",
    orderings=(("total_requests", "fast_requests"), ("total_requests", "successful_requests")),
)
