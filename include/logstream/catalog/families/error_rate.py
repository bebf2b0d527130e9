"""``error_rate``: requests, errors (status >= 400) and their share per service and minute (SPEC
§5.1.2)."""

from __future__ import annotations

from logstream.catalog.model import Family, count, percent_of

ERROR_RATE = Family(
    name="error_rate",
    source="events",
    keys=("service",),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "errors"),
    metrics=(
        count("total_requests"),
        count("error_count", "errors"),
        percent_of("error_rate", "errors"),
    ),
    count_column="total_requests",
    orderings=(("total_requests", "error_count"),),
)
