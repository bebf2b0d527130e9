"""``system_health``: the whole system per minute, with a health score from the error rate (SPEC
§5.1.7)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from logstream.catalog.model import (
    Family,
    Metric,
    count,
    percent_of,
    percentage,
    set_size,
    value,
)

#: (error rate below, score): the first band the error rate (%) is below gives the score.
HEALTH_BANDS = ((1, 100), (5, 80), (10, 60))
#: The score when the error rate is in no band.
WORST_HEALTH = 40


def health_score(error_rate: Column) -> Column:
    """The score of an error rate in percent."""
    (below, score), *rest = HEALTH_BANDS
    scored = F.when(error_rate < below, score)
    for below, score in rest:
        scored = scored.when(error_rate < below, score)
    return scored.otherwise(WORST_HEALTH).cast("int")


SYSTEM_HEALTH = Family(
    name="system_health",
    source="events",
    keys=(),
    window="1 minute",
    delay="5 minutes",
    aggregates=("n", "services", "users", "rt_avg", "errors"),
    metrics=(
        count("total_requests"),
        set_size("active_services", "services"),
        set_size("active_users", "users"),
        value("avg_response_time", lambda: F.col("rt_avg"), low=0),
        count("error_count", "errors"),
        percent_of("error_rate", "errors"),
        Metric(
            "health_score",
            lambda: health_score(percentage("errors")),
            values=(*(score for _, score in HEALTH_BANDS), WORST_HEALTH),
        ),
    ),
    count_column="total_requests",
    orderings=(
        ("total_requests", "error_count"),
        ("total_requests", "active_users"),
        ("total_requests", "active_services"),
    ),
)
