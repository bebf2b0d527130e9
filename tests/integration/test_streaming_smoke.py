"""Structured Streaming from a real topic to Parquet, restarted from its checkpoint."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.helpers import produce_json

SCHEMA = T.StructType(
    [T.StructField("request_id", T.StringType()), T.StructField("value", T.LongType())]
)


def run_until_caught_up(spark, bootstrap: str, topic: str, output: str, checkpoint: str) -> None:
    """One availableNow run of the query: process what is in the topic, then stop."""
    query = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", 400)
        .load()
        .select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("e"))
        .select("e.*")
        .writeStream.format("parquet")
        .option("path", output)
        .option("checkpointLocation", checkpoint)
        .queryName("smoke_events")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(timeout=180)
    assert query.exception() is None
    assert not query.isActive, "the availableNow query did not finish within 180 s"


def test_stream_restarts_from_checkpoint_exactly_once(spark, kafka_broker, topic, tmp_path):
    output, checkpoint = str(tmp_path / "events"), str(tmp_path / "checkpoint")
    first = [{"request_id": f"a-{i}", "value": i} for i in range(1_000)]
    second = [{"request_id": f"b-{i}", "value": i} for i in range(1_500)]

    produce_json(kafka_broker.bootstrap, topic, first, key_field="request_id")
    run_until_caught_up(spark, kafka_broker.bootstrap, topic, output, checkpoint)
    assert spark.read.parquet(output).count() == 1_000

    produce_json(kafka_broker.bootstrap, topic, second, key_field="request_id")
    run_until_caught_up(spark, kafka_broker.bootstrap, topic, output, checkpoint)

    landed = spark.read.parquet(output)
    ids = [row.request_id for row in landed.select("request_id").collect()]
    expected = {e["request_id"] for e in first + second}
    assert len(ids) == len(expected) == 2_500  # nothing duplicated
    assert set(ids) == expected  # nothing missing
    assert landed.agg(F.sum("value")).first()[0] == sum(range(1_000)) + sum(range(1_500))
