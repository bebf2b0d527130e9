"""Round trip through a real broker: kafka-python produces, Spark's Kafka source reads back."""

from __future__ import annotations

import random

from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.helpers import produce_json

SERVICES = ["auth", "checkout", "search", "profile", "payments"]


def make_events(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "timestamp": f"2026-11-25T10:{i // 600 % 60:02d}:{i // 10 % 60:02d}Z",
            "level": rng.choice(["INFO", "WARN", "ERROR"]),
            "service": rng.choice(SERVICES),
            "request_id": f"req-{i:06d}",
            "user_id": f"user-{rng.randrange(500)}",
            "response_time": round(rng.uniform(0.01, 3.0), 3),
            "status_code": rng.choice([200, 200, 200, 404, 500]),
        }
        for i in range(count)
    ]


def test_20k_events_round_trip_through_kafka_and_spark(spark, kafka_broker, topic, settings):
    events = make_events(20_000, seed=7)
    produce_json(kafka_broker.bootstrap, topic, events, key_field="user_id")

    schema = T.StructType(
        [
            T.StructField("request_id", T.StringType()),
            T.StructField("service", T.StringType()),
            T.StructField("response_time", T.DoubleType()),
            T.StructField("status_code", T.IntegerType()),
        ]
    )
    read = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", kafka_broker.bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(
            "partition",
            F.col("key").cast("string").alias("key"),
            F.from_json(F.col("value").cast("string"), schema).alias("event"),
        )
        .select("partition", "key", "event.*")
    )
    rows = read.collect()

    assert len(rows) == 20_000
    assert {row.request_id for row in rows} == {event["request_id"] for event in events}
    # keyed records spread over every partition of the topic
    assert {row.partition for row in rows} == set(range(settings.topic_partitions))
    by_id = {row.request_id: row for row in rows}
    for event in (events[0], events[12_345], events[-1]):
        row = by_id[event["request_id"]]
        assert row.service == event["service"]
        assert row.response_time == event["response_time"]
        assert row.status_code == event["status_code"]
        assert row.key == event["user_id"]
