"""One micro-batch of an ingestion query, exactly once per batch id (SPEC §2-§5).

:class:`IngestBatchHandler` is the query's ``foreachBatch``. It lands the batch and hands the
rest to the query's :class:`~logstream.stream.finalizer.Finalizer`, each part defined and tested
on its own:

1. **land** (:mod:`logstream.transforms.landing`): bronze events stamped with their lateness,
   quarantine, and the late events; one Spark job computes the batch's statistics, which move
   the event-time high-water mark, and caches the batch's rows for the open windows;
2. the finalizer learns the new high-water mark as soon as the statistics are known and, on a
   thread of its own, writes the windows that became final, detects their anomalies and alerts
   (:mod:`logstream.stream.finalizer`); the landing never waits for it;
3. the late-data users found in the batch are its anomalies (SPEC §5.2.6), written beside the
   batch's tables; then the totals are published for the status file.

Every table write goes through a :class:`BatchTableWriter` (:mod:`logstream.storage.commits`), so a
replayed batch id leaves each table as one write would. What carries from batch to batch is in
:mod:`logstream.stream.state`. The batch's processing time and the query's id are injected: in
production they come from the query's checkpoint (:mod:`logstream.stream.checkpoint`), so a
replayed batch stamps the same processing time; a test passes its own, drives the handler with
static frames and runs the finalizer's rounds inline (``background=False``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession

from logstream import catalog
from logstream.alerts import AlertSink
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.storage.commits import BatchTableWriter
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import table_path
from logstream.stream.alerting import anomaly_alerts
from logstream.stream.checkpoint import QueryCheckpoint, checkpoint_path
from logstream.stream.finalizer import Finalizer, Landed
from logstream.stream.parallel import LANDING_POOL, run_parallel, use_pool
from logstream.stream.pipelines import Pipeline
from logstream.stream.state import BatchMemory, IngestState
from logstream.stream.status import TotalsRegistry
from logstream.stream.timeline import Timeline
from logstream.timeutil import from_ms, iso_z
from logstream.transforms import aggregate, finalize, landing


class IngestBatchHandler:
    """``foreachBatch`` of an ingestion query: bronze, quarantine, late events and the late-data
    users' anomalies, exactly once per batch id; final windows through its :attr:`finalizer`.

    ``batch_time_ms(batch_id)`` gives a batch's processing time (epoch ms) and ``query_id()``
    the id that scopes the tables' commit markers; both default to the query's checkpoint.
    With ``background`` the finalizer's rounds run on their own thread (call
    :meth:`start` / :meth:`stop`); otherwise each batch runs them before it returns.
    """

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        pipeline: Pipeline,
        families: list[catalog.Family],
        thresholds: anomalies.Thresholds,
        registry: TotalsRegistry,
        alert_sink: AlertSink,
        *,
        batch_time_ms: Callable[[int], int] | None = None,
        query_id: Callable[[], str] | None = None,
        background: bool = False,
    ) -> None:
        self.spark = spark
        self.settings = settings
        self.pipeline = pipeline
        self.query_name = f"ingest_{pipeline.name}"
        self.checkpoint = checkpoint_path(settings, self.query_name)
        self.state_folder = f"{self.checkpoint}/logstream_state"
        self.fs = HadoopFS(spark)
        source = QueryCheckpoint(self.fs, self.checkpoint)
        self.batch_time_ms = batch_time_ms or source.batch_time_ms
        self.query_id = query_id or source.query_id
        self.families = [f for f in families if f.source == pipeline.source]
        groups = aggregate.group_families(self.families)
        self.delays = sorted({(f.name, f.delay_ms) for f in self.families}, key=lambda d: d[1])
        self.thresholds = thresholds
        self.registry = registry
        self.alert_sink = alert_sink
        # the traffic totals (errors, response times) come from the same cached rows
        traffic = tuple(c for c in landing.TRAFFIC_COLUMNS if c in pipeline.events_schema.names)
        self.memory = BatchMemory(
            spark, settings, pipeline.events_table, groups, thresholds, carried=traffic
        )
        self.finalizer = Finalizer(
            spark, settings, self.query_name, self.checkpoint, self.query_id, self.families,
            self.memory, thresholds, alert_sink, on_commit=self._publish_final,
        )  # fmt: skip
        self.background = background
        self._writers: dict[str, BatchTableWriter] | None = None
        self.timeline = Timeline()
        self._landed_anomalies = 0  # the late-data users' (the finalizer counts its own)
        self._saved: tuple[int, IngestState] | None = None  # the last state saved, by batch

    def start(self) -> None:
        """Start the finalizer's thread (``background`` handlers)."""
        if self.background:
            self.finalizer.start()

    def stop(self, drain: bool = False) -> None:
        """Stop the finalizer's thread; with ``drain``, then finalize through the last landed
        batch on this thread (a query that caught up and stopped)."""
        self.finalizer.stop()
        if drain:
            self.finalizer.check()
            if not self.finalizer.landed_here():
                self._resume_last_landed()
            self.finalizer.run_pending()

    def _resume_last_landed(self) -> None:
        """Nothing landed in this process (Kafka held nothing new): hand the finalizer the last
        batch an earlier process landed, with its rows to come from bronze, so the round that
        process planned but did not finish, and the windows its last batches made final, are
        written now rather than after the next batch of another run."""
        latest = IngestState.latest(self.fs, self.state_folder)
        if latest is None:
            return
        batch_id, state = latest
        self.memory.begin(int(time.time() * 1000), state.max_event_time_ms)
        self.finalizer.reset()
        self.finalizer.landed(
            Landed(batch_id, state.max_event_time_ms, None, state.first_on_time_ms,
                   state.final_through or None)
        )  # fmt: skip

    def writers(self) -> dict[str, BatchTableWriter]:
        if self._writers is None:
            scope = f"{self.query_name}-{self.query_id()}"

            def writer(table: str, *partitions: str) -> BatchTableWriter:
                return BatchTableWriter(
                    self.spark, table_path(self.settings, table), scope, partitions
                )

            self._writers = {
                "events": writer(self.pipeline.events_table, "event_date", "event_hour"),
                "quarantine": writer("quarantine", "quarantine_date"),
                "late": writer(self.pipeline.late_table, "event_date"),
                "anomalies": writer("anomalies", "window_date"),
            }
        return self._writers

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self.finalizer.check()
        use_pool(self.spark, LANDING_POOL)
        self.timeline = timeline = Timeline()
        with timeline.stage("state_load"):
            state = self._load_state(batch_id)
        if not self.memory.continues(batch_id):
            # a new process or a replay: rows landed before come from bronze, in a round
            self.memory.begin(self.batch_time_ms(batch_id), state.max_event_time_ms)
            self.finalizer.reset()
        found: list[anomalies.Row] = []
        try:
            parsed = batch.persist()
            try:
                writes = self._land(parsed, batch_id, state, found)
                run_parallel(self.spark, LANDING_POOL, writes, workers=len(writes))
            finally:
                with timeline.stage("unpersist"):
                    parsed.unpersist()
            with timeline.stage("state_save"):
                state.save(self.fs, self.state_folder, batch_id)
            self._saved = (batch_id, copy.deepcopy(state))
        except BaseException:
            self.memory.forget()
            self._saved = None
            raise
        for alert in anomaly_alerts(found, table_path(self.settings, "anomalies")):
            self.alert_sink.send(alert)
        if not self.background:
            self.finalizer.run_pending()
        self._publish(state)
        timeline.log(self.query_name, batch_id)

    def _load_state(self, batch_id: int) -> IngestState:
        """The state after the batch before ``batch_id``: the one this handler saved last, when
        it is that batch's, else from the checkpoint (a new process, a replay)."""
        if self._saved is not None and self._saved[0] == batch_id - 1:
            return copy.deepcopy(self._saved[1])
        return IngestState.load(self.fs, self.state_folder, batch_id)

    def _publish(self, state: IngestState) -> None:
        """Counters and watermarks for the status file (see :class:`StatusListener`)."""
        high_water = state.max_event_time_ms
        threshold = landing.late_threshold_ms(self.delays)
        self._landed_anomalies = state.totals.get("anomalies", 0)
        self.registry.update(
            self.query_name,
            {
                **state.totals,
                "anomalies": self._landed_anomalies + self.finalizer.log.anomalies,
                "max_event_time": _iso(high_water),
                "watermark": _iso(high_water - threshold)
                if high_water is not None and self.delays
                else None,
            },
        )
        if final_through := self.finalizer.final_through():
            self._publish_final(final_through)

    def _publish_final(self, final_through: dict[str, int]) -> None:
        """Each group's watermark as of the finalizer's last committed round."""
        through = {name: _iso(ms) for name, ms in final_through.items()}
        found = self._landed_anomalies + self.finalizer.log.anomalies
        self.registry.update(self.query_name, {"final_through": through, "anomalies": found})

    def _land(
        self, parsed: DataFrame, batch_id: int, state: IngestState, found: list[anomalies.Row]
    ) -> list[Callable[[], None]]:
        """The batch's statistics (one Spark job, which also caches its open rows for the
        finalizer, told at once), and the writes to run: bronze, quarantine, late events, and the
        late-data users' check (``found`` gets their anomalies).

        Moves the high-water mark and the totals in ``state``.
        """
        writers = self.writers()
        batch_time_ms = self.batch_time_ms(batch_id)
        high_water = state.max_event_time_ms
        schema = self.pipeline.events_schema
        events = parsed.transform(landing.bronze_rows(schema, batch_time_ms, high_water))
        rejected = parsed.transform(landing.quarantine_rows(batch_time_ms))
        late = events.transform(landing.late_rows(self.delays))

        # the columns the metrics read, cached for the windows still open (and the stats' input)
        open_rows = events.select(*self.memory.columns).persist()
        with self.timeline.stage("stats"):
            stats = open_rows.transform(landing.batch_stats(self.delays)).first()
        piece = None
        if stats["min_usable_ms"] is None:
            open_rows.unpersist()
        else:
            piece = finalize.OpenRows(open_rows, stats["min_usable_ms"], stats["max_ms"])
        if stats["max_ms"] is not None:
            state.max_event_time_ms = max(high_water or stats["max_ms"], stats["max_ms"])
        if state.first_on_time_ms is None and high_water is None:
            state.first_on_time_ms = stats["min_on_time_ms"]
        state.totals["valid"] += stats["valid"]
        state.totals["late"] += stats["late"]
        measured = stats.asDict()
        for key in landing.TRAFFIC_TOTALS:
            if key in measured:  # (a state saved before a total existed lacks it)
                state.totals[key] = state.totals.get(key, 0) + (measured[key] or 0)
        self.memory.add(piece, batch_id)
        self.finalizer.landed(
            Landed(batch_id, state.max_event_time_ms, stats["min_on_time_ms"],
                   state.first_on_time_ms, state.final_through or None)
        )  # fmt: skip

        def quarantine() -> None:
            with self.timeline.stage("quarantine"):
                quarantined = rejected.count()
                state.totals["quarantined"] += quarantined
                if quarantined:
                    writers["quarantine"].write(rejected, batch_id)

        def write(table: str, frame: DataFrame) -> Callable[[], None]:
            def run() -> None:
                with self.timeline.stage(table):
                    writers[table].write(frame, batch_id)

            return run

        def late_users() -> None:
            with self.timeline.stage("late_users"):
                found.extend(self._late_users(late, state))
                self._write_anomalies(batch_id, found)
                state.totals["anomalies"] = state.totals.get("anomalies", 0) + len(found)

        # independent tables: their Spark jobs run side by side (none for an empty frame)
        writes: list[Callable[[], None]] = [quarantine]
        if stats["valid"]:
            writes.append(write("events", events))
        if stats["late"]:
            writes.append(write("late", late))
        # SPEC §5.2.6 counts a user's late *log* events; user-events have their own rule (§5.2.5)
        if stats["late"] and self.pipeline.name == "logs":
            writes.append(late_users)
        return writes

    def _write_anomalies(self, batch_id: int, found: list[anomalies.Row]) -> None:
        """One write of the batch's late-data users' anomalies."""
        if found:
            with self.timeline.stage("anomalies"):
                frame = self.spark.createDataFrame(found, anomalies.ANOMALIES)
                self.writers()["anomalies"].write(frame, batch_id)

    def _late_users(self, late: DataFrame, state: IngestState) -> list[anomalies.Row]:
        """Users whose late events today cross the threshold in this batch (SPEC §5.2.6)."""
        if "user_id" not in late.columns:
            return []
        counts = [
            (row["day"], row["user_id"], row["count"])
            for row in landing.late_user_counts(late).collect()
        ]
        crossed = state.count_late_users(counts, self.thresholds.late_user_min_events)
        return [
            anomalies.late_data_user(self.thresholds, user, day, count)
            for day, user, count in crossed
        ]


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_z(from_ms(ms))
