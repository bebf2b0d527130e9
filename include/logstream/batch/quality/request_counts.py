"""The cross-table suite: do the reconciled request counts equal the bronze events?

Per (service, window), each reconciled family whose count column is the number of bronze events
(:attr:`~logstream.catalog.Family.counts_service_requests`) is compared with the events counted
from bronze with Spark; the suite is a mismatch query over that comparison frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from logstream import catalog
from logstream.batch.quality.expectations import select_where
from logstream.config import Settings

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

#: Families whose reconciled table carries a per-(service, window) request count, and its column.
SERVICE_REQUEST_COUNTS = {
    family.name: family.count_column
    for family in catalog.FAMILIES
    if family.counts_service_requests
}


def request_counts_families(settings: Settings) -> list[catalog.Family]:
    """Reconciled families compared with bronze: per-service request counts on the same tumbling
    window as ``response_time`` (a family configured with another window is left out)."""
    families = {f.name: f for f in catalog.configured_families(settings.windows)}
    reference = families["response_time"]
    return [
        families[name]
        for name in SERVICE_REQUEST_COUNTS
        if families[name].window == reference.window and families[name].slide is None
    ]


def request_counts_comparison(
    events: DataFrame, reconciled: Mapping[str, DataFrame], window: str
) -> DataFrame:
    """Per (window_start, service): bronze ``events_count`` beside each reconciled family's
    request count (``<family>_count``); a side with no row counts 0.

    ``events`` is one day of bronze events, ``reconciled`` maps family name to that day of its
    reconciled table.
    """
    comparison = (
        events.where(F.col("service").isNotNull())
        .groupBy(F.window("event_time", window).start.alias("window_start"), "service")
        .agg(F.count(F.lit(1)).alias("events_count"))
    )
    for family, table in reconciled.items():
        counts = table.select(
            "window_start",
            "service",
            F.col(SERVICE_REQUEST_COUNTS[family]).cast("long").alias(f"{family}_count"),
        )
        comparison = comparison.join(counts, ["window_start", "service"], "full_outer")
    count_columns = ["events_count", *(f"{family}_count" for family in reconciled)]
    return comparison.select(
        "window_start",
        "service",
        *[F.coalesce(F.col(c), F.lit(0)).alias(c) for c in count_columns],
    )


def request_counts_expectations(families: Sequence[str], window: str) -> list[Expectation]:
    """One mismatch query per family over :func:`request_counts_comparison`'s frame."""
    from great_expectations import expectations as expect

    return [
        expect.UnexpectedRowsExpectation(
            unexpected_rows_query=select_where(
                ["window_start", "service", "events_count", f"{family}_count"],
                f"events_count <> {family}_count",
            ),
            description=(
                f"reconciled/{family}.{SERVICE_REQUEST_COUNTS[family]} equals the number of "
                f"bronze events per (service, {window} window)"
            ),
        )
        for family in families
    ]
