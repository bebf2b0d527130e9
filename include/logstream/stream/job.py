"""The streaming pipeline (SPEC §2-§6, §9): one query per input topic, its sinks and their order.

``ingest_<pipeline>`` (its own name and checkpoint) reads Kafka, parses every record ONCE and
hands each micro-batch to :class:`IngestBatchHandler`, which, exactly once per batch id
(:mod:`logstream.storage.sinks`):

1. lands bronze events, quarantine and late events. It tracks the event-time high-water mark
   across micro-batches (in its checkpoint folder, per batch id, so a replayed batch sees the
   same value) and stamps every event with ``lateness_ms`` = high-water mark before the batch
   minus its event time; ``late_events`` holds the events later than the smallest delay;
2. moves each metric family group's watermark (high-water mark - delay) and writes the windows
   that became final (:mod:`logstream.transforms.finalize`): append semantics, one row per
   window, emitted once. They are aggregated from the open windows' rows, which the handler
   keeps cached per batch (read back from bronze once when a process resumes a checkpoint),
   while step 1's writes run;
3. runs the anomaly rules on the new windows (:mod:`logstream.catalog.anomalies`; the rules that
   look back keep each key's latest windows between batches, read from the committed table when a
   process starts), writes ``anomalies`` and sends the alerts.

Each record is read from Kafka and parsed once; there is no streaming state store; one commit
cycle per micro-batch serves every table. The lateness stamp makes "late" a property of the data
as ingested, so the rows a metric leaves out are exactly the rows ``late_events`` holds for that
delay, whatever the micro-batch boundaries. ``processing_time`` is the micro-batch's timestamp
from the offset log, so a replayed batch stamps the same value.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StreamingQuery

from logstream import catalog, schemas
from logstream.alerts import Alert, AlertSink
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.storage.bronze import read_bronze
from logstream.storage.fs import HadoopFS
from logstream.storage.sinks import BatchTableWriter
from logstream.storage.tables import existing_partitions, read_paths, table_path
from logstream.stream.status import TotalsRegistry
from logstream.timeutil import from_ms, interval_ms
from logstream.transforms import aggregate, finalize, parsing

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
    final_through: dict[str, int] = field(default_factory=dict)  # group -> emitted through (ms)

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


def _iso(ms: int | None) -> str | None:
    return None if ms is None else from_ms(ms).isoformat().replace("+00:00", "Z")


@dataclass
class _Landing:
    """What landing a micro-batch leaves to do: its writes (to run side by side), what the
    statistics found, and how to find the batch's late-data users."""

    piece: finalize.OpenRows | None  # the batch's rows for the open windows (cached)
    batch_min_ms: int | None  # the smallest on-time event time of the batch
    writes: list[Callable[[], None]] = field(default_factory=list)
    # the late-data users' anomalies (SPEC §5.2.6), found with the batch's other anomalies;
    # none unless the batch has late log events
    late_users: Callable[[], list[dict]] = list


class IngestBatchHandler:
    """``foreachBatch`` of an ingestion query: bronze, quarantine, late events, final windows,
    anomalies and alerts, exactly once per batch id."""

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        pipeline: Pipeline,
        families: list[catalog.Family],
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
        self.families = [f for f in families if f.source == pipeline.source]
        self.groups = aggregate.group_families(self.families)
        self.delays = sorted({(f.name, f.delay_ms) for f in self.families}, key=lambda d: d[1])
        self.late_threshold_ms = self.delays[0][1] if self.delays else 0
        self.thresholds = thresholds
        self.registry = registry
        self.alert_sink = alert_sink
        self._writers: dict[str, BatchTableWriter] | None = None
        # the rows open windows may still need, one cached piece per landing (see _land,
        # _rebuild_open and _drop_open)
        self.open_columns = list(
            dict.fromkeys([*aggregate.input_columns(self.groups), "event_time", "lateness_ms"])
        )
        self.max_delay_ms = self.delays[-1][1] if self.delays else 0
        self._open: list[finalize.OpenRows] = []
        self._open_through_batch: int | None = None
        # per history rule (by kind): each key's latest windows (see _load_history)
        self._history: dict[str, anomalies.KeyHistory] = {}

    def writers(self) -> dict[str, BatchTableWriter]:
        if self._writers is None:
            scope = f"{self.query_name}-{_query_id(self.fs, self.checkpoint)}"

            def writer(table: str, *partitions: str) -> BatchTableWriter:
                return BatchTableWriter(
                    self.spark, table_path(self.settings, table), scope, partitions
                )

            self._writers = {
                "events": writer(self.pipeline.events_table, "event_date", "event_hour"),
                "quarantine": writer("quarantine", "quarantine_date"),
                "late": writer(self.pipeline.late_table, "event_date"),
                "anomalies": writer("anomalies", "window_date"),
                **{family.name: writer(family.name, "window_date") for family in self.families},
            }
        return self._writers

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        state = IngestState.load(self.fs, self.state_folder, batch_id)
        # the cached open rows continue the previous batch of this process; otherwise (a new
        # process, a replayed batch) they are rebuilt from bronze once this batch has landed,
        # unless nothing landed before this batch (a new checkpoint): then its rows are all
        continuing = self._open_through_batch == batch_id - 1
        if not continuing:
            self._drop_open(keep_from=None)
            self._history.clear()
        rebuild = not continuing and state.max_event_time_ms is not None
        cached: list[DataFrame] = []
        found: list[dict] = []
        try:
            parsed = batch.persist()
            try:
                landing = self._land(parsed, batch_id, state)
                if landing.piece is not None:
                    if rebuild:
                        cached.append(landing.piece.frame)
                    else:
                        self._open.append(landing.piece)

                def write_anomalies(detections: list[dict]) -> None:
                    rows = [*landing.late_users(), *detections]
                    self._write_anomalies(batch_id, rows)
                    found.extend(rows)

                def finalizing() -> None:
                    self._finalize(batch_id, state, landing.batch_min_ms, cached, write_anomalies)

                if rebuild:
                    _run_parallel(landing.writes)
                    self._rebuild_open(state, landing.batch_min_ms)
                    finalizing()
                else:
                    # the final windows come from the cached open rows, not from bronze: they
                    # are computed while the batch's tables are written
                    _run_parallel([*landing.writes, finalizing], workers=len(landing.writes) + 1)
            finally:
                parsed.unpersist()
            state.save(self.fs, self.state_folder, batch_id)
        except BaseException:
            self._drop_open(keep_from=None)
            self._history.clear()
            self._open_through_batch = None
            raise
        finally:
            for frame in cached:
                frame.unpersist()
        self._drop_open(finalize.keep_from(self.groups, state.final_through))
        self._open_through_batch = batch_id
        for row in found:
            self.alert_sink.send(_alert_from_anomaly(row, self.settings))
        self._publish(state)

    def _publish(self, state: IngestState) -> None:
        """Counters and watermarks for the status file (see :class:`StatusListener`)."""
        high_water = state.max_event_time_ms
        self.registry.update(
            self.query_name,
            {
                **state.totals,
                "max_event_time": _iso(high_water),
                "watermark": _iso(high_water - self.late_threshold_ms)
                if high_water is not None and self.delays
                else None,
                "final_through": {name: _iso(ms) for name, ms in state.final_through.items()},
            },
        )

    def _land(self, parsed: DataFrame, batch_id: int, state: IngestState) -> _Landing:
        """The batch's statistics (one Spark job, which also caches its open rows) and the writes
        of bronze, quarantine and late events, and the late-data users' check (run with the
        batch's other anomalies).

        Moves the high-water mark and the totals in ``state``; the writes are returned, not run.
        """
        writers = self.writers()
        processing_time = F.timestamp_millis(F.lit(self._batch_timestamp_ms(batch_id)))
        parsed = parsed.withColumn("processing_time", processing_time)
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
        is_late = F.col("lateness_ms") > self.late_threshold_ms
        late_for = F.array_compact(
            F.array(*[F.when(F.col("lateness_ms") > d, F.lit(n)) for n, d in self.delays])
        )
        late = events.where(is_late).withColumn("late_for", late_for)

        # the columns the metrics read, cached for the windows still open (and the stats' input)
        open_rows = events.select(*self.open_columns).persist()
        usable = finalize.within_delay(self.max_delay_ms)
        stats = open_rows.agg(
            F.max(F.unix_millis("event_time")).alias("max_ms"),
            F.min(F.when(~F.coalesce(is_late, F.lit(False)), F.unix_millis("event_time"))).alias(
                "min_on_time_ms"
            ),
            F.min(F.when(usable, F.unix_millis("event_time"))).alias("min_usable_ms"),
            F.count(F.lit(1)).alias("valid"),
            F.count(F.when(is_late, 1)).alias("late"),
        ).first()
        piece = None
        if stats["min_usable_ms"] is None:
            open_rows.unpersist()
        else:
            piece = finalize.OpenRows(open_rows, stats["min_usable_ms"], stats["max_ms"])
        if stats["max_ms"] is not None:
            state.max_event_time_ms = max(high_water or stats["max_ms"], stats["max_ms"])
        state.totals["valid"] += stats["valid"]
        state.totals["late"] += stats["late"]

        landing = _Landing(piece, stats["min_on_time_ms"])

        def quarantine() -> None:
            quarantined = rejected.count()
            state.totals["quarantined"] += quarantined
            if quarantined:
                writers["quarantine"].write(rejected, batch_id)

        # independent tables: their Spark jobs run side by side (none for an empty frame)
        landing.writes.append(quarantine)
        if stats["valid"]:
            landing.writes.append(lambda: writers["events"].write(events, batch_id))
        if stats["late"]:
            landing.writes.append(lambda: writers["late"].write(late, batch_id))
        # SPEC §5.2.6 counts a user's late *log* events; user-events have their own rule (§5.2.5)
        if stats["late"] and self.pipeline.name == "logs":
            landing.late_users = lambda: self._late_users(late, state)
        return landing

    def _batch_timestamp_ms(self, batch_id: int) -> int:
        """The micro-batch's timestamp from the query's offset log (what ``current_timestamp()``
        is in the batch): identical when Spark replays the batch after a failure."""
        text = self.fs.read_text(f"{self.checkpoint}/offsets/{batch_id}") or ""
        for line in text.splitlines():
            if line.startswith("{") and "batchTimestampMs" in line:
                return int(json.loads(line)["batchTimestampMs"])
        raise RuntimeError(
            f"the offset log entry {self.checkpoint}/offsets/{batch_id} has no batch timestamp; "
            "is the checkpoint damaged? Restore it or start the query on a new checkpoint"
        )

    def _rebuild_open(self, state: IngestState, batch_min_ms: int | None) -> None:
        """The open windows' rows from bronze (this batch landed), for a process's first batch.

        They start where the earliest window that is not final yet (or that this batch's plan
        finalizes) can start and end at the high-water mark.
        """
        high_water = state.max_event_time_ms
        if high_water is None:
            return
        work, after = finalize.plan(self.groups, state.final_through, high_water, batch_min_ms)
        starts = [item.rows_from_ms for item in work]
        keep = finalize.keep_from(self.groups, after)
        if keep is not None:
            starts.append(keep)
        if not starts:
            return
        lo = min(starts)
        usable = finalize.within_delay(self.max_delay_ms)
        frame = (
            read_bronze(
                self.spark,
                self.settings,
                self.pipeline.events_table,
                (from_ms(lo), from_ms(high_water + 1)),
            )
            .where(usable)
            .select(*self.open_columns)
            .persist()
        )
        frame.count()
        self._open = [finalize.OpenRows(frame, lo, high_water)]

    def _drop_open(self, keep_from: int | None) -> None:
        """Release the open rows no window needs any more (all of them for ``None``)."""
        kept = []
        for piece in self._open:
            if keep_from is not None and piece.hi_ms >= keep_from:
                kept.append(piece)
            else:
                piece.frame.unpersist()
        self._open = kept

    def _finalize(
        self,
        batch_id: int,
        state: IngestState,
        batch_min_ms: int | None,
        cached: list[DataFrame],
        write_anomalies: Callable[[list[dict]], None],
    ) -> None:
        """Write every window that became final, and hand the anomalies detected on them to
        ``write_anomalies`` as soon as every group's rules ran (beside the table writes; once,
        also when nothing is final)."""
        work, state.final_through = finalize.plan(
            self.groups, state.final_through, state.max_event_time_ms, batch_min_ms
        )
        if not work:
            write_anomalies([])
            return
        writers = self.writers()
        detections: list[dict] = []

        def emit(item: finalize.Finalization, detected: threading.Event, failed: list) -> None:
            try:
                pieces = finalize.covering(self._open, item)
                if not pieces:  # no rows: no window
                    return
                self._load_history(item)
                source = reduce(DataFrame.unionByName, [piece.frame for piece in pieces])
                # one aggregation serves the group's tables and anomaly rules
                windows = finalize.final_windows(source, item).persist()
                cached.append(windows)
                tables = [
                    (family, windows.transform(aggregate.project(family))) for family in item.group
                ]
                # the rules read the new windows, not the tables: the batch's anomalies need not
                # wait for the writes (and a rule's collect computes the cached windows)
                for family, rows in tables:
                    detections.extend(self._detect(family, rows))
            except BaseException:
                failed.append(item)
                raise
            finally:
                detected.set()
            writes = [
                lambda family=family, rows=rows: writers[family.name].write(rows, batch_id)
                for family, rows in tables
            ]
            if not any(family.name in anomalies.RULE_FAMILIES for family in item.group):
                writes.pop(0)()  # the first write computes the windows; the rest read them
            _run_parallel(writes)

        # the groups' jobs are small; side by side they keep both cores busy. The groups with
        # anomaly rules go first; the batch's anomalies are written once their rules ran, beside
        # the rest (leaving the pool waits for every group's jobs, also when one failed)
        work.sort(key=lambda item: not any(f.name in anomalies.RULE_FAMILIES for f in item.group))
        detected = [threading.Event() for _ in work]
        failed: list[finalize.Finalization] = []
        with ThreadPoolExecutor(max_workers=min(4, len(work))) as pool:
            futures = [
                pool.submit(emit, *args, failed) for args in zip(work, detected, strict=True)
            ]
            for event in detected:
                event.wait()
            if failed:  # no anomalies write for a batch whose rules did not all run
                for future in futures:
                    future.result()
            write_anomalies(detections)
            for future in futures:
                future.result()

    def _load_history(self, item: finalize.Finalization) -> None:
        """Seed the history of the group's look-back rules that have none in this process.

        Read from the committed tables before this batch writes them (a replayed batch may find
        its own windows there: :class:`anomalies.KeyHistory` keeps one copy of each): today's and
        yesterday's partitions around the new windows, so the cost does not grow with the table.
        """
        names = {family.name for family in item.group}
        rules = [
            rule
            for rule in anomalies.HISTORY_RULES
            if rule.family in names and rule.kind not in self._history
        ]
        if not rules:
            return
        window_ms = interval_ms(item.group[0].window)
        first = from_ms(item.after_ms - window_ms).date() - timedelta(days=1)
        last = from_ms(item.through_ms - window_ms).date()
        folders = [
            f"window_date={first + timedelta(days=n)}" for n in range((last - first).days + 1)
        ]
        for rule in rules:
            history = anomalies.KeyHistory(rule, self.thresholds)
            # a new table has none of the folders: then no Spark job (it would queue behind
            # the batch's running tasks)
            paths = existing_partitions(self.spark, self.settings, rule.family, folders)
            if paths:
                committed = read_paths(self.spark, self.settings, rule.family, paths)
                history.add(_window_rows(committed, [F.col(rule.key), *map(F.col, rule.columns)]))
            self._history[rule.kind] = history

    def _detect(self, family: catalog.Family, new_windows: DataFrame) -> list[dict]:
        """The anomalies among a family's new windows (SPEC §5.2), as ``anomalies`` rows."""
        found: list[dict] = []
        for rule in anomalies.FILTER_RULES:
            if rule.family == family.name:
                matched = new_windows.where(rule.where(self.thresholds))
                columns = [column().alias(name) for name, column in rule.columns.items()]
                found += [rule.shape(self.thresholds, w) for w in _window_rows(matched, columns)]
        rules = [rule for rule in anomalies.HISTORY_RULES if rule.family == family.name]
        if rules:
            names = dict.fromkeys(name for rule in rules for name in (rule.key, *rule.columns))
            windows = _window_rows(new_windows, [F.col(name) for name in names])
            for rule in rules:
                found += self._history[rule.kind].detect(windows)
        return found

    def _write_anomalies(self, batch_id: int, found: list[dict]) -> None:
        """One write of the batch's anomalies (the late-data users' and the rules')."""
        if found:
            frame = self.spark.createDataFrame(found, anomalies.ANOMALIES)
            self.writers()["anomalies"].write(frame, batch_id)

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
        for row in counts:
            per_day = state.late_users.setdefault(row["day"], {})
            before = per_day.get(row["user_id"], 0)
            after = before + row["count"]
            per_day[row["user_id"]] = after
            if before <= limit < after:
                start = datetime.combine(date.fromisoformat(row["day"]), time.min, tzinfo=UTC)
                found.append(
                    {
                        "anomaly_id": anomalies.stable_id(
                            "late_data_user", row["user_id"], row["day"]
                        ),
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


def _run_parallel(tasks: list[Callable[[], object]], workers: int = 4) -> None:
    """Run independent Spark actions from a few driver threads; the first error is raised."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


def _window_rows(frame: DataFrame, columns: list[Column]) -> list[dict]:
    """Collect windows (``columns`` and the bounds as UTC datetimes: ``collect`` would give
    naive ones in the driver's local time zone)."""
    bounds = [
        F.unix_millis("window_start").alias("_start"),
        F.unix_millis("window_end").alias("_end"),
    ]
    rows = []
    for row in frame.select(*bounds, *columns).collect():
        values = row.asDict()
        values["window_start"] = from_ms(values.pop("_start"))
        values["window_end"] = from_ms(values.pop("_end"))
        rows.append(values)
    return rows


def _alert_from_anomaly(row: dict, settings: Settings) -> Alert:
    return Alert(
        dedup_key=f"anomaly:{row['anomaly_id']}",
        kind=row["kind"],
        severity=row["severity"],
        summary=f"{row['kind']} {row['entity']}: {row['detail']}",
        details={k: row[k] for k in ("entity", "observed", "threshold", "baseline")},
        links={
            "table": table_path(settings, "anomalies"),
            "window": f"{row['window_start'].isoformat()}/{row['window_end'].isoformat()}",
        },
    )


# -- query construction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    pipelines: tuple[str, ...] = ("logs", "user_events")
    available_now: bool = False  # catch up with what is there, then stop


def _trigger(settings: Settings, options: RunOptions) -> dict:
    if options.available_now:
        return {"availableNow": True}
    return {"processingTime": settings.trigger_interval}


#: Kafka consumer settings of the ingestion queries: fetches of up to 16 MB per partition
#: (64 MB per request) and a 4 MB socket buffer instead of 1 MB, 50 MB and 64 kB. A catch-up
#: micro-batch reads its 2M records with fewer round trips (Kafka's share of the fetch-and-count
#: of 2M records: 9.5 s instead of 10.7-11.2 s in a new JVM, 4.7-5.4 s instead of 5.8-6.0 s warm);
#: live batches are small either way.
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
) -> list[StreamingQuery]:
    """Start the query of each selected pipeline.

    With ``available_now`` each query catches up with what Kafka holds and stops (every window
    that can be final is written) before this returns. Otherwise the queries run until stopped
    or failed.
    """
    families = families or catalog.configured_families(settings.windows)
    thresholds = anomalies.Thresholds.from_mapping(settings.thresholds)
    queries = []
    for name in options.pipelines:
        pipeline = pipelines(settings)[name]
        handler = IngestBatchHandler(
            spark, settings, pipeline, families, thresholds, registry, alert_sink
        )
        queries.append(start_ingestion(spark, settings, pipeline, handler, options))
    if options.available_now:
        _await_all(queries)
    return queries


def _await_all(queries: list[StreamingQuery]) -> None:
    for query in queries:
        query.awaitTermination()
        if query.exception() is not None:
            raise RuntimeError(f"query {query.name} failed: {query.exception()}")
