"""The streaming job's wiring (SPEC §2, §9): one ingestion query per input topic.

``ingest_<pipeline>`` (its own name and checkpoint, :mod:`logstream.stream.checkpoint`) reads
its topic from Kafka (:func:`read_kafka`), parses every record once (the pipeline's parse,
:mod:`logstream.stream.pipelines`) and hands each micro-batch to an
:class:`~logstream.stream.batch.IngestBatchHandler`, which lands bronze, quarantine and late
events exactly once per batch id. Beside it, the query's finalizer
(:mod:`logstream.stream.finalizer`) writes the windows that became final, detects anomalies and
sends their alerts, exactly once per round. There is no streaming state store: one Kafka read and
one parse per record.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from logstream import catalog
from logstream.alerts import AlertSink
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.stream.batch import IngestBatchHandler
from logstream.stream.pipelines import Pipeline, pipelines
from logstream.stream.status import TotalsRegistry

__all__ = [
    "KAFKA_CONSUMER_OPTIONS",
    "Ingestion",
    "Pipeline",
    "RunOptions",
    "pipelines",
    "read_kafka",
    "run_pipeline",
    "start_ingestion",
]


@dataclass(frozen=True)
class Ingestion:
    """A running ingestion query and its handler (whose finalizer runs beside it)."""

    query: StreamingQuery
    handler: IngestBatchHandler

    def failure(self) -> str | None:
        """Why the query or its finalizer failed (None: neither did)."""
        if self.query.exception() is not None:
            return f"query {self.query.name} failed: {self.query.exception()}"
        error = self.handler.finalizer.error
        return None if error is None else f"{self.handler.query_name}: finalizing failed: {error}"


@dataclass(frozen=True)
class RunOptions:
    pipelines: tuple[str, ...] = ("logs", "user_events")
    available_now: bool = False  # catch up with what is there, then stop


def _trigger(settings: Settings, options: RunOptions) -> dict:
    if options.available_now:
        return {"availableNow": True}
    return {"processingTime": settings.trigger_interval}


#: Kafka consumer settings of the ingestion queries: fetches of up to 16 MB per partition
#: (64 MB per request) and a 4 MB socket buffer, where Kafka's defaults are 1 MB, 50 MB and
#: 64 kB. A catch-up micro-batch reads its 2M records with fewer round trips (Kafka's share of
#: the fetch-and-count of 2M records: 9.5 s against 10.7-11.2 s in a new JVM, 4.7-5.4 s against
#: 5.8-6.0 s warm); live batches are small either way.
KAFKA_CONSUMER_OPTIONS = {
    "kafka.max.partition.fetch.bytes": str(16 << 20),
    "kafka.fetch.max.bytes": str(64 << 20),
    "kafka.receive.buffer.bytes": str(4 << 20),
}


def read_kafka(spark: SparkSession, settings: Settings, topic: str) -> DataFrame:
    """The ingestion queries' streaming Kafka source (``schemas.KAFKA_RECORD`` rows)."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
        # split big topic partitions so every core gets an even share of each micro-batch
        .option("minPartitions", 2 * spark.sparkContext.defaultParallelism)
        .option("failOnDataLoss", "false")
    )
    return reader.options(**KAFKA_CONSUMER_OPTIONS).load()


def start_ingestion(
    spark: SparkSession,
    settings: Settings,
    pipeline: Pipeline,
    handler: IngestBatchHandler,
    options: RunOptions,
) -> StreamingQuery:
    parsed = (
        read_kafka(spark, settings, pipeline.topic)
        # no per-batch value in here (processing_time comes in the handler): the parse's
        # generated code then stays the same from batch to batch, and is compiled once
        .transform(pipeline.parse)
    )
    return (
        parsed.writeStream.queryName(handler.query_name)
        .option("checkpointLocation", handler.checkpoint)
        .foreachBatch(handler)
        .trigger(**_trigger(settings, options))
        .start()
    )


def run_pipeline(
    spark: SparkSession,
    settings: Settings,
    options: RunOptions,
    registry: TotalsRegistry,
    alert_sink: AlertSink,
    families: list[catalog.Family] | None = None,
) -> list[Ingestion]:
    """Start the query of each selected pipeline, with its finalizer's thread.

    With ``available_now`` each query catches up with what Kafka holds and stops, and its
    finalizer writes every window that can be final, before this returns. Otherwise the queries
    run until stopped or failed (:func:`stop_all`).
    """
    families = families or catalog.configured_families(settings.windows)
    thresholds = anomalies.Thresholds.from_mapping(settings.thresholds)
    running = []
    for name in options.pipelines:
        pipeline = pipelines(settings)[name]
        handler = IngestBatchHandler(
            spark, settings, pipeline, families, thresholds, registry, alert_sink, background=True
        )
        handler.start()
        running.append(Ingestion(start_ingestion(spark, settings, pipeline, handler, options),
                                 handler))  # fmt: skip
    if options.available_now:
        for ingestion in running:
            ingestion.query.awaitTermination()
        stop_all(running, drain=True)
        failures = [f for f in (i.failure() for i in running) if f]
        if failures:
            raise RuntimeError(failures[0])
    return running


def stop_all(running: list[Ingestion], drain: bool = False) -> None:
    """Stop every query, then let each finalizer end its round (``drain``: and finalize through
    the last landed batch)."""
    for ingestion in running:
        ingestion.query.stop()
    for ingestion in running:
        if ingestion.query.exception() is None:
            ingestion.handler.stop(drain=drain)
        else:
            ingestion.handler.finalizer.stop()
