"""The one windowed aggregation, shared by the stream and the nightly replay (SPEC §5.1, §5.3).

Families with the same source, keys, window, slide and watermark delay are computed by ONE
aggregation (:func:`group_families`): one shuffle serves several tables.
:func:`aggregate_batch` computes a group's named aggregates per window and key; :func:`project`
turns them into one family's table columns. The stream applies them to the on-time rows of the
windows that just became final (:mod:`logstream.transforms.finalize`), the nightly
reconciliation to every event of a day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from logstream.catalog.aggregates import AGGREGATES
from logstream.catalog.model import Family


def group_families(families: Iterable[Family]) -> list[tuple[Family, ...]]:
    """Families that can share one aggregation, in catalogue order."""
    groups: dict[tuple, list[Family]] = {}
    for family in families:
        groups.setdefault(family.group_signature, []).append(family)
    return [tuple(members) for members in groups.values()]


def group_name(group: tuple[Family, ...]) -> str:
    return "+".join(family.name for family in group)


def input_columns(groups: Iterable[tuple[Family, ...]]) -> list[str]:
    """Every event column the groups' aggregations read, in a stable order."""
    names: dict[str, None] = {}
    for group in groups:
        for family in group:
            names.update(dict.fromkeys((family.time_column, *family.keys, *family.key_filter)))
            for aggregate in family.aggregates:
                names.update(dict.fromkeys(AGGREGATES[aggregate].inputs))
    return list(names)


def _aggregate(df: DataFrame, group: tuple[Family, ...]) -> DataFrame:
    head = group[0]
    names = sorted({name for family in group for name in family.aggregates})
    window = (
        F.window(head.time_column, head.window, head.slide)
        if head.slide
        else F.window(head.time_column, head.window)
    )
    for key in {key for family in group for key in family.key_filter}:
        df = df.where(F.col(key).isNotNull())
    return (
        df.groupBy(window.alias("window"), *head.keys)
        .agg(*[AGGREGATES[name].expression().alias(name) for name in names])
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            *head.keys,
            *names,
        )
    )


def aggregate_batch(group: tuple[Family, ...]) -> Callable[[DataFrame], DataFrame]:
    """A group's named aggregates per window and key, over every event given."""
    return lambda events: _aggregate(events, group)


def project(family: Family) -> Callable[[DataFrame], DataFrame]:
    """From a group's aggregates to one family's table columns (+ ``window_date`` partition)."""

    def transform(aggregates: DataFrame) -> DataFrame:
        return aggregates.select(
            "window_start",
            "window_end",
            *family.keys,
            *[metric.value().alias(metric.name) for metric in family.metrics],
            F.to_date("window_start").alias("window_date"),
        )

    return transform
