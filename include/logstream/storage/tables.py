"""Every sink table: its path under ``data_root``, its schema, and a reader that never guesses.

Metric table schemas are derived from the transforms themselves (an empty events frame run through
the family's aggregation and projection), so there is one definition of each table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.storage.fs import HadoopFS
from logstream.transforms import aggregate

LATE_FOR = T.StructField("late_for", T.ArrayType(T.StringType()))


def _fixed_schemas() -> dict[str, T.StructType]:
    return {
        "events": schemas.EVENTS,
        "user_events": schemas.USER_EVENTS,
        "quarantine": schemas.QUARANTINE,
        "late_events": T.StructType([*schemas.EVENTS.fields, LATE_FOR]),
        "late_user_events": T.StructType([*schemas.USER_EVENTS.fields, LATE_FOR]),
        "anomalies": anomalies.ANOMALIES,
        "latency_report": schemas.LATENCY_REPORT,
        "reconciliation_report": schemas.RECONCILIATION_REPORT,
    }


@cache
def _metric_schema_json(spark: SparkSession, family_name: str) -> str:
    family = catalog.FAMILY_BY_NAME[family_name]
    source = schemas.EVENTS if family.source == "events" else schemas.USER_EVENTS
    empty = spark.createDataFrame([], source)
    frame = empty.transform(aggregate.aggregate_batch((family,))).transform(
        aggregate.project(family)
    )
    return frame.schema.json()


def table_schema(spark: SparkSession, name: str) -> T.StructType:
    fixed = _fixed_schemas()
    if name in fixed:
        return fixed[name]
    base = name.removeprefix("reconciled/")
    if base in catalog.FAMILY_BY_NAME:
        return T.StructType.fromJson(json.loads(_metric_schema_json(spark, base)))
    raise KeyError(f"unknown table {name!r}")


def table_path(settings: Settings, name: str) -> str:
    return f"{settings.data_root.rstrip('/')}/{name}"


def read_table(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """The table as a DataFrame with its declared schema (empty if nothing was written yet)."""
    schema = table_schema(spark, name)
    path = table_path(settings, name)
    if not HadoopFS(spark).list_files(path, ".parquet"):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(path)


def read_partitions(
    spark: SparkSession, settings: Settings, name: str, folders: Iterable[str]
) -> DataFrame:
    """The given partition folders of a table (e.g. ``event_date=2026-11-25/event_hour=13``) that
    exist, with the table's declared schema; empty if none does. Only those folders are listed, so
    the cost does not grow with the table's history."""
    return read_paths(spark, settings, name, existing_partitions(spark, settings, name, folders))


def read_paths(spark: SparkSession, settings: Settings, name: str, paths: list[str]) -> DataFrame:
    """Existing partition folders of a table (:func:`existing_partitions`), with the table's
    declared schema; empty if there are none."""
    schema = table_schema(spark, name)
    if not paths:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", table_path(settings, name)).parquet(*paths)


def existing_partitions(
    spark: SparkSession, settings: Settings, name: str, folders: Iterable[str]
) -> list[str]:
    """The paths of the given partition folders of a table that exist (no Spark job)."""
    root = table_path(settings, name)
    fs = HadoopFS(spark)
    paths = [f"{root}/{folder}" for folder in dict.fromkeys(folders)]
    return [path for path in paths if fs.exists(path)]
