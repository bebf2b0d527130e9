"""The named aggregates (logstream.catalog.aggregates) declare the event columns they read, and
the stream reads only those columns from bronze (``aggregate.input_columns``). Each declaration
is checked against Spark's analyser, not against itself: an aggregate resolves over a frame of
its declared inputs alone, and fails to resolve when any one of them is missing. Likewise a
family declares exactly the aggregates its columns read."""

from __future__ import annotations

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.catalog.aggregates import AGGREGATES
from logstream.transforms import aggregate

_SOURCES = {"events": schemas.EVENTS, "user_events": schemas.USER_EVENTS}
_TYPES = {field.name: field.dataType for field in (*schemas.USER_EVENTS, *schemas.EVENTS)}


def test_columns_the_two_sources_share_have_one_type():
    events = {field.name: field.dataType for field in schemas.EVENTS}
    shared = set(events) & {field.name for field in schemas.USER_EVENTS}
    assert shared >= {"event_time", "user_id", "ip_address", "processing_time"}
    for field in schemas.USER_EVENTS:
        if field.name in shared:
            assert field.dataType == events[field.name], field.name


def _resolve(spark: SparkSession, name: str, columns: tuple[str, ...]) -> T.StructType:
    """The schema of the aggregate per group over an empty frame of only ``columns``."""
    fields = [T.StructField("group_key", T.StringType())]
    fields += [T.StructField(column, _TYPES[column]) for column in columns]
    frame = spark.createDataFrame([], T.StructType(fields))
    return frame.groupBy("group_key").agg(AGGREGATES[name].expression().alias(name)).schema


@pytest.mark.parametrize("name", sorted(AGGREGATES))
def test_an_aggregate_reads_exactly_its_declared_inputs(spark, name):
    inputs = AGGREGATES[name].inputs
    assert len(set(inputs)) == len(inputs)
    assert set(inputs) <= set(_TYPES), "inputs must be event columns"
    assert name in _resolve(spark, name, inputs).fieldNames()
    for missing in inputs:
        rest = tuple(column for column in inputs if column != missing)
        with pytest.raises(AnalysisException):
            _resolve(spark, name, rest)


@pytest.mark.parametrize("family", catalog.FAMILIES, ids=lambda family: family.name)
def test_a_family_declares_exactly_the_aggregates_its_columns_read(spark, family):
    assert set(family.aggregates) <= set(AGGREGATES)
    assert len(set(family.aggregates)) == len(family.aggregates)
    source = spark.createDataFrame([], _SOURCES[family.source])
    computed = source.transform(aggregate.aggregate_batch((family,)))
    assert computed.columns == [
        "window_start",
        "window_end",
        *family.keys,
        *sorted(family.aggregates),
    ]
    assert computed.transform(aggregate.project(family)).columns
    for needed in family.aggregates:
        with pytest.raises(AnalysisException):
            computed.drop(needed).transform(aggregate.project(family))


def test_every_named_aggregate_is_used_by_some_family():
    named = {name for family in catalog.FAMILIES for name in family.aggregates}
    assert named == set(AGGREGATES)


def test_the_sorted_action_sequence_breaks_time_ties_by_action(spark):
    """``actions_seq`` orders a group's actions by event time, then by action."""
    rows = [
        ("g", "2026-11-25 12:00:02", "view"),
        ("g", "2026-11-25 12:00:01", "pay"),
        ("g", "2026-11-25 12:00:01", "add"),
        ("g", "2026-11-25 12:00:00", "zoom"),
    ]
    frame = spark.createDataFrame(rows, "group_key string, t string, action string").select(
        "group_key", F.to_timestamp("t").alias("event_time"), "action"
    )
    got = frame.groupBy("group_key").agg(AGGREGATES["actions_seq"].expression().alias("seq"))
    assert got.collect()[0]["seq"] == ["zoom", "add", "pay", "view"]
