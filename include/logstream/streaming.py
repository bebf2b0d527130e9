"""The streaming pipeline (SPEC §2-§6, §9): queries, their sinks and their order.

Two kinds of query, each with its own name and checkpoint:

``ingest_<pipeline>``
    Kafka -> parse ONCE -> ``foreachBatch``: bronze events, quarantine and late events, written
    exactly once (:mod:`logstream.sinks`). It tracks the event-time high-water mark across
    micro-batches (in its checkpoint folder, per batch id, so a replayed batch sees the same
    value) and stamps every event with ``lateness_ms`` = high-water mark before the batch minus
    its event time. ``late_events`` holds the events later than the smallest watermark delay.

``metrics_<group>``
    the bronze table as a Parquet file stream -> on-time rows -> watermarked windows (append:
    one final row per window) -> ``foreachBatch``: the group's metric tables, then the anomaly
    rules over the committed tables, then alerts.

Parsing happens once per record; each family group holds one state store. The lateness stamp makes
"late" a property of the data as ingested, so the rows a metric query leaves out are exactly the
rows ``late_events`` holds for that delay, whatever the micro-batch boundaries of later queries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from logstream import anomalies, metrics, parsing, schemas
from logstream.alerts import Alert, AlertSink
from logstream.config import Settings
from logstream.fs import HadoopFS
from logstream.sinks import BatchTableWriter
from logstream.status import TotalsRegistry
from logstream.tables import read_table, table_path

log = logging.getLogger(__name__)

STATE_VERSIONS_KEPT = 50


@dataclass(frozen=True)
class Pipeline:
    """One input topic and the tables it lands."""

    name: str  # "logs" | "user_events"
    topic: str
    parse: Callable[[DataFrame], DataFrame]
    events_table: str
    events_schema: T.StructType
    late_table: str
    source: str  # Family.source served by events_table


def pipelines(settings: Settings) -> dict[str, Pipeline]:
    options = parsing.ParseOptions.from_settings(settings)
    return {
        "logs": Pipeline(
            "logs",
            settings.logs_topic,
            parsing.parse_log_records(options),
            "events",
            schemas.EVENTS,
            "late_events",
            "events",
        ),
        "user_events": Pipeline(
            "user_events",
            settings.user_events_topic,
            parsing.parse_user_events(options),
            "user_events",
            schemas.USER_EVENTS,
            "late_user_events",
            "user_events",
        ),
    }


def checkpoint_path(settings: Settings, query_name: str) -> str:
    return f"{settings.checkpoint_root.rstrip('/')}/{query_name}"


def _query_id(fs: HadoopFS, checkpoint: str) -> str:
    """The query's id from its checkpoint; sink commit markers are scoped by it, so a new
    checkpoint (batch ids from 0 again) never collides with an old run's markers."""
    metadata = fs.read_text(f"{checkpoint}/metadata")
    if not metadata:
        raise RuntimeError(f"checkpoint {checkpoint} has no metadata file yet")
    return json.loads(metadata.splitlines()[0])["id"][:8]


@dataclass
class IngestState:
    """What ingestion carries from one micro-batch to the next (stored per batch id)."""

    max_event_time_ms: int | None = None
    totals: dict[str, int] = field(
        default_factory=lambda: {"valid": 0, "quarantined": 0, "late": 0}
    )
    late_users: dict[str, dict[str, int]] = field(default_factory=dict)  # date -> user -> n

    @classmethod
    def load(cls, fs: HadoopFS, folder: str, batch_id: int) -> IngestState:
        """The state after the latest batch before ``batch_id``."""
        done = sorted(
            int(name.removesuffix(".json"))
            for name in fs.list_names(folder)
            if name.endswith(".json") and name.removesuffix(".json").isdigit()
        )
        earlier = [number for number in done if number < batch_id]
        if not earlier:
            return cls()
        data = json.loads(fs.read_text(f"{folder}/{earlier[-1]}.json") or "{}")
        return cls(**data)

    def save(self, fs: HadoopFS, folder: str, batch_id: int) -> None:
        fs.write_text(f"{folder}/{batch_id}.json", json.dumps(self.__dict__))
        for name in fs.list_names(folder):
            stem = name.removesuffix(".json")
            if stem.isdigit() and int(stem) < batch_id - STATE_VERSIONS_KEPT:
                fs.delete(f"{folder}/{name}", recursive=False)


class IngestBatchHandler:
    """``foreachBatch`` of an ingestion query: bronze, quarantine, late events, exactly once."""

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        pipeline: Pipeline,
        families: list[metrics.Family],
        thresholds: anomalies.Thresholds,
        registry: TotalsRegistry,
        alert_sink: AlertSink,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.pipeline = pipeline
        self.query_name = f"ingest_{pipeline.name}"
        self.checkpoint = checkpoint_path(settings, self.query_name)
        self.state_folder = f"{self.checkpoint}/logstream_state"
        self.fs = HadoopFS(spark)
        self.delays = sorted(
            {(f.name, f.delay_ms) for f in families if f.source == pipeline.source},
            key=lambda item: item[1],
        )
        self.late_threshold_ms = self.delays[0][1] if self.delays else 0
        self.thresholds = thresholds
        self.registry = registry
        self.alert_sink = alert_sink
        self._writers: dict[str, BatchTableWriter] | None = None

    def writers(self) -> dict[str, BatchTableWriter]:
        if self._writers is None:
            scope = f"{self.query_name}-{_query_id(self.fs, self.checkpoint)}"
            path = lambda table: table_path(self.settings, table)  # noqa: E731
            self._writers = {
                "events": BatchTableWriter(
                    self.spark,
                    path(self.pipeline.events_table),
                    scope,
                    ["event_date", "event_hour"],
                ),
                "quarantine": BatchTableWriter(
                    self.spark, path("quarantine"), scope, ["quarantine_date"]
                ),
                "late": BatchTableWriter(
                    self.spark, path(self.pipeline.late_table), scope, ["event_date"]
                ),
                "anomalies": BatchTableWriter(
                    self.spark, path("anomalies"), scope, ["window_date"]
                ),
            }
        return self._writers

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        state = IngestState.load(self.fs, self.state_folder, batch_id)
        parsed = batch.persist()
        try:
            self._land(parsed, batch_id, state)
        finally:
            parsed.unpersist()
        self.registry.update(self.query_name, dict(state.totals))

    def _land(self, parsed: DataFrame, batch_id: int, state: IngestState) -> None:
        writers = self.writers()
        high_water = state.max_event_time_ms
        lateness = (
            F.lit(high_water) - F.unix_millis("event_time")
            if high_water is not None
            else F.lit(None)
        )
        events = (
            parsed.where(F.col("reason").isNull())
            .withColumn("lateness_ms", lateness.cast("long"))
            .withColumn("event_date", F.to_date("event_time"))
            .withColumn("event_hour", F.hour("event_time"))
            .select(*self.pipeline.events_schema.fieldNames())
        )
        rejected = parsed.where(F.col("reason").isNotNull()).select(
            *[c for c in schemas.QUARANTINE.fieldNames() if c != "quarantine_date"],
            F.to_date("kafka_timestamp").alias("quarantine_date"),
        )
        late_for = F.array_compact(
            F.array(*[F.when(F.col("lateness_ms") > d, F.lit(n)) for n, d in self.delays])
        )
        late = events.where(F.col("lateness_ms") > self.late_threshold_ms).withColumn(
            "late_for", late_for
        )

        stats = events.agg(
            F.max(F.unix_millis("event_time")).alias("max_ms"),
            F.count(F.lit(1)).alias("valid"),
            F.count(F.when(F.col("lateness_ms") > self.late_threshold_ms, 1)).alias("late"),
        ).first()
        quarantined = rejected.count()

        writers["events"].write(events, batch_id)
        writers["quarantine"].write(rejected, batch_id)
        writers["late"].write(late, batch_id)
        # SPEC §5.2.6 counts a user's late *log* events; user-events have their own rule (§5.2.5)
        counts_late_users = stats["late"] and self.pipeline.name == "logs"
        late_user_anomalies = self._late_users(late, state) if counts_late_users else []
        if late_user_anomalies:
            rows = self.spark.createDataFrame(late_user_anomalies, anomalies.ANOMALIES)
            writers["anomalies"].write(rows, batch_id)

        if stats["max_ms"] is not None:
            state.max_event_time_ms = max(high_water or stats["max_ms"], stats["max_ms"])
        state.totals["valid"] += stats["valid"]
        state.totals["late"] += stats["late"]
        state.totals["quarantined"] += quarantined
        state.save(self.fs, self.state_folder, batch_id)
        for row in late_user_anomalies:
            self.alert_sink.send(_alert_from_anomaly(row, self.settings))

    def _late_users(self, late: DataFrame, state: IngestState) -> list[dict]:
        """Users whose late events today cross the threshold in this batch (SPEC §5.2.6)."""
        if "user_id" not in late.columns:
            return []
        counts = (
            late.where(F.col("user_id").isNotNull())
            .groupBy(F.to_date("processing_time").cast("string").alias("day"), "user_id")
            .count()
            .collect()
        )
        limit = self.thresholds.late_user_min_events
        found = []
        from datetime import date, datetime, timedelta

        for row in counts:
            per_day = state.late_users.setdefault(row["day"], {})
            before = per_day.get(row["user_id"], 0)
            after = before + row["count"]
            per_day[row["user_id"]] = after
            if before <= limit < after:
                start = datetime.combine(date.fromisoformat(row["day"]), datetime.min.time())
                found.append(
                    {
                        "anomaly_id": _stable_id("late_data_user", row["user_id"], row["day"]),
                        "kind": "late_data_user",
                        "entity": row["user_id"],
                        "window_start": start,
                        "window_end": start + timedelta(days=1),
                        "observed": float(after),
                        "threshold": float(limit),
                        "baseline": None,
                        "severity": "warning",
                        "detail": f"{after} late events today (more than {limit})",
                        "window_date": start.date(),
                    }
                )
        # keep only today and yesterday: the counter is per arrival day
        for day in sorted(state.late_users)[:-2]:
            del state.late_users[day]
        return found


def _stable_id(*parts: str) -> str:
    import hashlib

    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _alert_from_anomaly(row: dict, settings: Settings) -> Alert:
    return Alert(
        dedup_key=f"anomaly:{row['anomaly_id']}",
        kind=row["kind"],
        severity=row["severity"],
        summary=f"{row['kind']} {row['entity']}: {row['detail']}",
        details={k: row[k] for k in ("entity", "observed", "threshold", "baseline")},
        links={
            "table": table_path(settings, "anomalies"),
            "window": f"{row['window_start']}/{row['window_end']}",
        },
    )


class MetricBatchHandler:
    """``foreachBatch`` of a metric query: final windows -> tables -> anomalies -> alerts."""

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        group: tuple[metrics.Family, ...],
        thresholds: anomalies.Thresholds,
        alert_sink: AlertSink,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.group = group
        self.query_name = metric_query_name(group)
        self.checkpoint = checkpoint_path(settings, self.query_name)
        self.fs = HadoopFS(spark)
        self.thresholds = thresholds
        self.alert_sink = alert_sink
        self._writers: dict[str, BatchTableWriter] | None = None

    def writers(self) -> dict[str, BatchTableWriter]:
        if self._writers is None:
            scope = f"{self.query_name}-{_query_id(self.fs, self.checkpoint)}"
            self._writers = {
                family.name: BatchTableWriter(
                    self.spark, table_path(self.settings, family.name), scope, ["window_date"]
                )
                for family in self.group
            }
            self._writers["anomalies"] = BatchTableWriter(
                self.spark, table_path(self.settings, "anomalies"), scope, ["window_date"]
            )
        return self._writers

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        windows = batch.persist()
        try:
            if windows.isEmpty():
                return
            writers = self.writers()
            found: list[DataFrame] = []
            for family in self.group:
                rows = windows.transform(metrics.project(family))
                writers[family.name].write(rows, batch_id)
                for rule, needs_history in anomalies.RULES.get(family.name, []):
                    found.append(self._detect(family, rows, rule(self.thresholds), needs_history))
            if found:
                detected = found[0]
                for frame in found[1:]:
                    detected = detected.unionByName(frame)
                detected = detected.persist()
                writers["anomalies"].write(detected, batch_id)
                for row in detected.collect():
                    self.alert_sink.send(_alert_from_anomaly(row.asDict(), self.settings))
                detected.unpersist()
        finally:
            windows.unpersist()

    def _detect(
        self,
        family: metrics.Family,
        new_rows: DataFrame,
        rule: Callable[[DataFrame], DataFrame],
        needs_history: bool,
    ) -> DataFrame:
        if not needs_history:
            return new_rows.transform(rule)
        # history: the committed table around the new windows (previous windows of each key)
        first_day = new_rows.agg(F.min("window_date")).first()[0]
        history = (
            read_table(self.spark, self.settings, family.name)
            .where(F.col("window_date") >= F.date_sub(F.lit(first_day), 1))
            .select(*new_rows.columns)
        )
        # anomaly rows name their key in `entity`; keep the detections on the new windows only
        entity = F.concat_ws("|", *family.keys) if family.keys else F.lit(None)
        new_keys = new_rows.select("window_start", entity.alias("entity")).distinct()
        return history.transform(rule).join(
            F.broadcast(new_keys), ["window_start", "entity"], "left_semi"
        )


def metric_query_name(group: tuple[metrics.Family, ...]) -> str:
    return "metrics_" + "_".join(family.name for family in group)


# -- query construction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    pipelines: tuple[str, ...] = ("logs", "user_events")
    available_now: bool = False  # catch up with what is there, then stop


def _trigger(settings: Settings, options: RunOptions) -> dict:
    if options.available_now:
        return {"availableNow": True}
    return {"processingTime": settings.trigger_interval}


def start_ingestion(
    spark: SparkSession,
    settings: Settings,
    pipeline: Pipeline,
    handler: IngestBatchHandler,
    options: RunOptions,
) -> StreamingQuery:
    parsed = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", pipeline.topic)
        .option("startingOffsets", settings.starting_offsets)
        .option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
        .option("failOnDataLoss", "false")
        .load()
        .transform(pipeline.parse)
        # the micro-batch's timestamp: identical when Spark replays the batch after a failure
        .withColumn("processing_time", F.current_timestamp())
    )
    return (
        parsed.writeStream.queryName(handler.query_name)
        .option("checkpointLocation", handler.checkpoint)
        .foreachBatch(handler)
        .trigger(**_trigger(settings, options))
        .start()
    )


def start_metrics(
    spark: SparkSession,
    settings: Settings,
    pipeline: Pipeline,
    handler: MetricBatchHandler,
    options: RunOptions,
) -> StreamingQuery:
    source = table_path(settings, pipeline.events_table)
    HadoopFS(spark).mkdirs(source)
    head = handler.group[0]
    watched = F.count(F.when(F.col("lateness_ms") > head.delay_ms, 1)).alias("late_rows")
    windows = (
        spark.readStream.schema(pipeline.events_schema)
        .parquet(source)
        .observe(f"late_{handler.query_name}", watched)
        .transform(metrics.aggregate_stream(handler.group))
    )
    return (
        windows.writeStream.queryName(handler.query_name)
        .outputMode("append")
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
    families: list[metrics.Family] | None = None,
) -> list[StreamingQuery]:
    """Start every query of the selected pipelines.

    With ``available_now`` the ingestion queries run to completion first and the metric queries
    then catch up on everything landed, so one call processes what Kafka holds end to end; the
    returned queries have all stopped. Otherwise all queries run until stopped or failed.
    """
    families = families or metrics.configured_families(settings.windows)
    thresholds = anomalies.Thresholds.from_mapping(settings.thresholds)
    selected = [pipelines(settings)[name] for name in options.pipelines]
    queries: list[StreamingQuery] = []

    for pipeline in selected:
        handler = IngestBatchHandler(
            spark, settings, pipeline, families, thresholds, registry, alert_sink
        )
        queries.append(start_ingestion(spark, settings, pipeline, handler, options))
    if options.available_now:
        _await_all(queries)

    metric_queries = []
    for pipeline in selected:
        own = [family for family in families if family.source == pipeline.source]
        for group in metrics.group_families(own):
            handler = MetricBatchHandler(spark, settings, group, thresholds, alert_sink)
            metric_queries.append(start_metrics(spark, settings, pipeline, handler, options))
    if options.available_now:
        _await_all(metric_queries)
    return queries + metric_queries


def _await_all(queries: list[StreamingQuery]) -> None:
    for query in queries:
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(f"query {query.name} failed: {query.exception()}")
