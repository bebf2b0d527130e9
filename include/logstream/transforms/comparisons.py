"""How a replayed metric table differs from the streamed one, and how late the day's events were.

Per family, each window of either side is classified: ``missing_in_stream`` (the stream never
emitted it), ``different`` (a metric column differs: exact for integers, strings and arrays,
:data:`FLOAT_TOLERANCE` relative for doubles) or ``only_in_stream`` (should never happen; it is
reported, not fixed), with the streamed and replayed value of the family's count column.
Percentiles come from ``percentile_approx`` on both sides: exact below ~5,000 values per window,
so a window above that may show as ``different`` in its percentile columns alone (approximation,
not late data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream.catalog import Family

#: relative tolerance when comparing double metrics of a streamed and a reconciled window
FLOAT_TOLERANCE = 1e-9

CHANGES = ("missing_in_stream", "different", "only_in_stream")


def _differs(name: str, data_type: T.DataType, tolerance: float) -> Column:
    got, was = F.col(f"r.{name}"), F.col(f"s.{name}")
    if isinstance(data_type, T.DoubleType | T.FloatType):
        close = F.abs(got - was) <= F.greatest(F.abs(got), F.abs(was)) * F.lit(tolerance)
        same = (got.isNull() & was.isNull()) | (got == was) | close
        return ~F.coalesce(same, F.lit(False))
    return ~got.eqNullSafe(was)


def window_changes(
    family: Family,
    streamed: DataFrame,
    day: date,
    tolerance: float = FLOAT_TOLERANCE,
) -> Callable[[DataFrame], DataFrame]:
    """Reconciled rows of a family-day -> one row per window of either side, compared.

    Both frames have the family's table columns. Each side's metrics are packed in a struct, the
    two sides are unioned and grouped by (window_start, keys): one shuffle, no join. The result
    has :data:`logstream.schemas.RECONCILIATION_REPORT`'s columns (``change`` null when the window
    agrees) plus ``_in_reconciled`` and ``_stream_rows``, so one frame gives both the change rows
    and the per-family counts (:func:`change_counts`).
    """

    def transform(reconciled: DataFrame) -> DataFrame:
        ignored = {"window_start", "window_end", "window_date", *family.keys}
        metric_fields = [f for f in reconciled.schema.fields if f.name not in ignored]
        packed_type = T.StructType([T.StructField(f.name, f.dataType) for f in metric_fields])
        packed = F.struct(*[F.col(f.name) for f in metric_fields])
        nothing = F.lit(None).cast(packed_type)
        window_and_keys = ["window_start", "window_end", *family.keys]
        sides = reconciled.select(
            *window_and_keys, packed.alias("r"), nothing.alias("s")
        ).unionByName(streamed.select(*window_and_keys, nothing.alias("r"), packed.alias("s")))
        paired = sides.groupBy("window_start", *family.keys).agg(
            F.max("window_end").alias("window_end"),
            F.max("r").alias("r"),  # one row per side and window; max() is deterministic
            F.max("s").alias("s"),
            F.count("s").alias("_stream_rows"),
        )
        counted = family.count_column
        in_reconciled = F.col("r").isNotNull()
        in_stream = F.col("s").isNotNull()
        changed = F.array_compact(
            F.array(
                *[
                    F.when(_differs(f.name, f.dataType, tolerance), F.lit(f.name))
                    for f in metric_fields
                ]
            )
        )
        entity = (
            F.concat_ws("|", *[F.col(k).cast("string") for k in family.keys])
            if family.keys
            else F.lit(None).cast("string")
        )
        return paired.select(
            F.lit(family.name).alias("family"),
            F.when(~in_stream, F.lit("missing_in_stream"))
            .when(~in_reconciled, F.lit("only_in_stream"))
            .when(F.size(changed) > 0, F.lit("different"))
            .alias("change"),
            "window_start",
            "window_end",
            entity.alias("entity"),
            F.lit(counted).alias("count_column"),
            F.col(f"s.{counted}").cast("long").alias("streamed_count"),
            F.col(f"r.{counted}").cast("long").alias("reconciled_count"),
            F.when(in_reconciled & in_stream, changed).alias("changed_columns"),
            F.lit(day).alias("report_date"),
            in_reconciled.alias("_in_reconciled"),
            "_stream_rows",
        )

    return transform


def change_counts(comparison: DataFrame) -> DataFrame:
    """Compared windows -> per family: windows, streamed rows, changes by kind, count delta."""
    return comparison.groupBy("family").agg(
        F.count(F.when(F.col("_in_reconciled"), 1)).alias("windows"),
        F.sum("_stream_rows").alias("streamed_windows"),
        *[F.count(F.when(F.col("change") == change, 1)).alias(change) for change in CHANGES],
        F.sum(
            F.coalesce("reconciled_count", F.lit(0)) - F.coalesce("streamed_count", F.lit(0))
        ).alias("count_delta"),
    )


def late_event_stats(threshold_ms: int, by: Sequence[str] = ()) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> events, late events (``lateness_ms > threshold_ms``) and max lateness."""

    def transform(events: DataFrame) -> DataFrame:
        return events.groupBy(*by).agg(
            F.count(F.lit(1)).alias("events"),
            F.count(F.when(F.col("lateness_ms") > threshold_ms, 1)).alias("late_events"),
            F.max("lateness_ms").alias("max_lateness_ms"),
        )

    return transform
