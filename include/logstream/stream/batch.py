"""One micro-batch of an ingestion query, exactly once per batch id (SPEC §2-§5).

:class:`IngestBatchHandler` is the query's ``foreachBatch``. It only sequences the parts, each
defined and tested on its own:

1. **land** (:mod:`logstream.transforms.landing`): bronze events stamped with their lateness,
   quarantine, and the late events; one Spark job computes the batch's statistics, which move
   the event-time high-water mark, and caches the batch's rows for the open windows;
2. **finalize** (:mod:`logstream.transforms.finalize`): each family group's watermark moves to
   high-water mark - delay and the windows that became final are aggregated from the cached open
   rows and written, one row per window, once; this runs while step 1's writes run;
3. **detect** (:mod:`logstream.stream.detect`): the anomaly rules over the new windows, plus the
   late-data users found in step 1; one ``anomalies`` write per batch;
4. **alert** (:mod:`logstream.stream.alerting`) and publish the totals for the status file.

Every table write goes through a :class:`BatchTableWriter` (:mod:`logstream.storage.commits`), so a
replayed batch id leaves each table as one write would. What carries from batch to batch is in
:mod:`logstream.stream.state`. The batch's processing time and the query's id are injected: in
production they come from the query's checkpoint (:mod:`logstream.stream.checkpoint`), so a
replayed batch stamps the same processing time; a test passes its own and drives the handler
with static frames.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce

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
from logstream.stream.detect import detect
from logstream.stream.pipelines import Pipeline
from logstream.stream.state import BatchMemory, IngestState
from logstream.stream.status import TotalsRegistry
from logstream.timeutil import from_ms, iso_z
from logstream.transforms import aggregate, finalize, landing


@dataclass
class _Landed:
    """What landing a micro-batch leaves to do: its writes (to run side by side), what the
    statistics found, and how to find the batch's late-data users."""

    piece: finalize.OpenRows | None  # the batch's rows for the open windows (cached)
    batch_min_ms: int | None  # the smallest on-time event time of the batch
    writes: list[Callable[[], None]] = field(default_factory=list)
    # the late-data users' anomalies (SPEC §5.2.6), found with the batch's other anomalies;
    # none unless the batch has late log events
    late_users: Callable[[], list[anomalies.Row]] = list


class IngestBatchHandler:
    """``foreachBatch`` of an ingestion query: bronze, quarantine, late events, final windows,
    anomalies and alerts, exactly once per batch id.

    ``batch_time_ms(batch_id)`` gives a batch's processing time (epoch ms) and ``query_id()``
    the id that scopes the tables' commit markers; both default to the query's checkpoint.
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
        self.groups = aggregate.group_families(self.families)
        self.delays = sorted({(f.name, f.delay_ms) for f in self.families}, key=lambda d: d[1])
        self.thresholds = thresholds
        self.registry = registry
        self.alert_sink = alert_sink
        self.memory = BatchMemory(spark, settings, pipeline.events_table, self.groups, thresholds)
        self._writers: dict[str, BatchTableWriter] | None = None

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
                **{family.name: writer(family.name, "window_date") for family in self.families},
            }
        return self._writers

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        state = IngestState.load(self.fs, self.state_folder, batch_id)
        # the memory continues the previous batch of this process; otherwise (a new process, a
        # replayed batch) the open rows are restored from bronze once this batch has landed,
        # unless nothing landed before this batch (a new checkpoint): then its rows are all
        continuing = self.memory.continues(batch_id)
        if not continuing:
            self.memory.forget()
        restore = not continuing and state.max_event_time_ms is not None
        cached: list[DataFrame] = []
        found: list[anomalies.Row] = []
        try:
            parsed = batch.persist()
            try:
                landed = self._land(parsed, batch_id, state)
                if landed.piece is not None:
                    if restore:
                        cached.append(landed.piece.frame)
                    else:
                        self.memory.add(landed.piece)

                def write_anomalies(detections: list[anomalies.Row]) -> None:
                    rows = [*landed.late_users(), *detections]
                    self._write_anomalies(batch_id, rows)
                    found.extend(rows)

                def finalizing() -> None:
                    self._finalize(batch_id, state, landed.batch_min_ms, cached, write_anomalies)

                if restore:
                    _run_parallel(landed.writes)
                    self.memory.restore_open(state, landed.batch_min_ms)
                    finalizing()
                else:
                    # the final windows come from the cached open rows, not from bronze: they
                    # are computed while the batch's tables are written
                    _run_parallel([*landed.writes, finalizing], workers=len(landed.writes) + 1)
            finally:
                parsed.unpersist()
            state.save(self.fs, self.state_folder, batch_id)
        except BaseException:
            self.memory.forget()
            raise
        finally:
            for frame in cached:
                frame.unpersist()
        self.memory.keep(state, batch_id)
        anomalies_table = table_path(self.settings, "anomalies")
        for alert in anomaly_alerts(found, anomalies_table):
            self.alert_sink.send(alert)
        self._publish(state)

    def _publish(self, state: IngestState) -> None:
        """Counters and watermarks for the status file (see :class:`StatusListener`)."""
        high_water = state.max_event_time_ms
        threshold = landing.late_threshold_ms(self.delays)
        self.registry.update(
            self.query_name,
            {
                **state.totals,
                "max_event_time": _iso(high_water),
                "watermark": _iso(high_water - threshold)
                if high_water is not None and self.delays
                else None,
                "final_through": {name: _iso(ms) for name, ms in state.final_through.items()},
            },
        )

    def _land(self, parsed: DataFrame, batch_id: int, state: IngestState) -> _Landed:
        """The batch's statistics (one Spark job, which also caches its open rows) and the writes
        of bronze, quarantine and late events, and the late-data users' check (run with the
        batch's other anomalies).

        Moves the high-water mark and the totals in ``state``; the writes are returned, not run.
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
        stats = open_rows.transform(landing.batch_stats(self.delays)).first()
        piece = None
        if stats["min_usable_ms"] is None:
            open_rows.unpersist()
        else:
            piece = finalize.OpenRows(open_rows, stats["min_usable_ms"], stats["max_ms"])
        if stats["max_ms"] is not None:
            state.max_event_time_ms = max(high_water or stats["max_ms"], stats["max_ms"])
        state.totals["valid"] += stats["valid"]
        state.totals["late"] += stats["late"]

        landed = _Landed(piece, stats["min_on_time_ms"])

        def quarantine() -> None:
            quarantined = rejected.count()
            state.totals["quarantined"] += quarantined
            if quarantined:
                writers["quarantine"].write(rejected, batch_id)

        # independent tables: their Spark jobs run side by side (none for an empty frame)
        landed.writes.append(quarantine)
        if stats["valid"]:
            landed.writes.append(lambda: writers["events"].write(events, batch_id))
        if stats["late"]:
            landed.writes.append(lambda: writers["late"].write(late, batch_id))
        # SPEC §5.2.6 counts a user's late *log* events; user-events have their own rule (§5.2.5)
        if stats["late"] and self.pipeline.name == "logs":
            landed.late_users = lambda: self._late_users(late, state)
        return landed

    def _finalize(
        self,
        batch_id: int,
        state: IngestState,
        batch_min_ms: int | None,
        cached: list[DataFrame],
        write_anomalies: Callable[[list[anomalies.Row]], None],
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
        detections: list[anomalies.Row] = []

        def emit(item: finalize.Finalization, detected: threading.Event, failed: list) -> None:
            try:
                pieces = finalize.covering(self.memory.pieces, item)
                if not pieces:  # no rows: no window
                    return
                self.memory.seed_history(item)
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
                    detections.extend(detect(family, rows, self.thresholds, self.memory.histories))
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

    def _write_anomalies(self, batch_id: int, found: list[anomalies.Row]) -> None:
        """One write of the batch's anomalies (the late-data users' and the rules')."""
        if found:
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


def _run_parallel(tasks: list[Callable[[], object]], workers: int = 4) -> None:
    """Run independent Spark actions from a few driver threads; the first error is raised."""
    if len(tasks) <= 1:
        for task in tasks:
            task()
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()
