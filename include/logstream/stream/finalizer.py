"""Final windows and their anomalies off the landing path: rounds with their own commit log.

An ingestion query lands each micro-batch (bronze, quarantine, late events) and hands the
batch's statistics to its :class:`Finalizer` (:meth:`Finalizer.landed`) as soon as they are
known. The finalizer runs *rounds* on a thread of its own, beside the landings: a round takes
the latest landed high-water mark, writes every window that became final since the previous
round (:mod:`logstream.transforms.finalize`), runs the anomaly rules over them
(:mod:`logstream.stream.detect`), writes the round's anomalies and hands their alerts to the
alert path. A slow round never delays a landing: the rounds just cover more batches each.

**Exactly once.** A round's windows depend only on its plan: the groups' watermarks before it
and the high-water mark it finalizes through. Rows landed after that batch are later than the
delay for every window the round finalizes (their lateness is stamped at landing), so they never
change it. Each round, numbered 1, 2, ... per checkpoint, under ``<checkpoint>/logstream_final/``:

1. ``<n>.plan``: the plan, written before any table;
2. every table written as batch ``n`` of the writer ``<query>-final-<query id>``
   (:class:`~logstream.storage.commits.BatchTableWriter`: a re-run of ``n`` doubles nothing);
3. ``<n>.done``: the groups' watermarks after the round (the commit point); then the alerts.

A new process continues after the last ``.done``; a ``.plan`` without one is run again as it was
planned, after the process's first landed batch, or, when it lands none (an ``--available-now``
run with nothing new in Kafka), by the drain at its end. The open windows' rows come from the
landings of this process (cached pieces, :class:`~logstream.stream.state.BatchMemory`) and, for
the batches landed before it, from bronze, read once by the first round (the landing path never
waits for that read).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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
from logstream.stream.detect import detect
from logstream.stream.parallel import FINALIZE_POOL, run_parallel, use_pool
from logstream.stream.state import BatchMemory
from logstream.stream.timeline import Timeline
from logstream.transforms import aggregate, finalize

log = logging.getLogger(__name__)

ROUNDS_KEPT = 200


@dataclass(frozen=True)
class Landed:
    """What a landed micro-batch tells the finalizer."""

    batch_id: int
    high_water_ms: int | None  # the largest event time landed so far, this batch included
    min_on_time_ms: int | None  # the batch's smallest on-time event time
    first_on_time_ms: int | None = None  # the checkpoint's first batch's (where rounds start)
    legacy_final_through: dict[str, int] | None = None  # see IngestState.final_through


@dataclass(frozen=True)
class Round:
    """One round's plan: it finalizes through ``high_water_ms`` (landed by ``through_batch``)."""

    number: int
    through_batch: int
    high_water_ms: int
    before: dict[str, int]  # each group's watermark before the round
    min_on_time_ms: int | None = None  # where groups seen for the first time start

    def work(self, groups: list[tuple[catalog.Family, ...]]):
        """The round's finalizations and the groups' watermarks after it."""
        return finalize.plan(groups, self.before, self.high_water_ms, self.min_on_time_ms)


@dataclass
class RoundLog:
    """``<n>.plan`` and ``<n>.done`` files of one query's rounds."""

    fs: HadoopFS
    folder: str
    done: int = 0  # the last committed round
    final_through: dict[str, int] = field(default_factory=dict)
    through_batch: int = -1  # the last batch a committed round finalized through
    anomalies: int = 0  # found by the committed rounds, in all

    def load(self) -> Round | None:
        """Read the last committed round; return the plan to run again, if one was cut short."""
        numbers: dict[str, set[int]] = {"plan": set(), "done": set()}
        for name in self.fs.list_names(self.folder):
            stem, _, kind = name.partition(".")
            if stem.isdigit() and kind in numbers:
                numbers[kind].add(int(stem))
        if numbers["done"]:
            self.done = max(numbers["done"])
            record = json.loads(self.fs.read_text(f"{self.folder}/{self.done}.done") or "{}")
            self.final_through = record["final_through"]
            self.through_batch = record["through_batch"]
            self.anomalies = record.get("anomalies", 0)
        if self.done + 1 in numbers["plan"]:
            return Round(**json.loads(self.fs.read_text(f"{self.folder}/{self.done + 1}.plan")))
        return None

    def plan(self, planned: Round) -> None:
        self.fs.write_text(f"{self.folder}/{planned.number}.plan", json.dumps(asdict(planned)))

    def commit(self, planned: Round, final_through: dict[str, int], found: int) -> None:
        """Commit the round; ``found``: the anomalies it wrote."""
        record = {
            "final_through": final_through,
            "through_batch": planned.through_batch,
            "anomalies": self.anomalies + found,
        }
        self.fs.write_text(f"{self.folder}/{planned.number}.done", json.dumps(record))
        self.done, self.final_through = planned.number, final_through
        self.anomalies = record["anomalies"]
        self.through_batch = planned.through_batch
        if planned.number % 50 == 0:
            for name in self.fs.list_names(self.folder):
                stem = name.partition(".")[0]
                if stem.isdigit() and int(stem) < planned.number - ROUNDS_KEPT:
                    self.fs.delete(f"{self.folder}/{name}", recursive=False)


class Finalizer:
    """The rounds of one ingestion query: on a thread of their own (:meth:`start`), or run by
    the caller (:meth:`run_pending`)."""

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        query_name: str,
        checkpoint: str,
        query_id: Callable[[], str],
        families: list[catalog.Family],
        memory: BatchMemory,
        thresholds: anomalies.Thresholds,
        alert_sink: AlertSink,
        on_commit: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """``on_commit`` gets the groups' watermarks after each committed round."""
        self.spark = spark
        self.settings = settings
        self.query_name = query_name
        self.query_id = query_id
        self.families = families
        self.groups = aggregate.group_families(families)
        self.memory = memory
        self.thresholds = thresholds
        self.alert_sink = alert_sink
        self.on_commit = on_commit
        self.log = RoundLog(HadoopFS(spark), f"{checkpoint}/logstream_final")
        self._redo: Round | None = None
        self._loaded = False
        self._latest: Landed | None = None
        self._pending_min: int | None = None  # smallest on-time event time since the last plan
        self._landed_here: int | None = None  # the first batch landed by this process
        self._lock = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._writers: dict[str, BatchTableWriter] | None = None

    # --- the landing side -------------------------------------------------------------------

    def landed(self, landed: Landed) -> None:
        """A batch's statistics are known (its rows are in the memory's pieces)."""
        with self._lock:
            if self._landed_here is None:
                self._landed_here = landed.batch_id
            self._latest = landed
            if landed.min_on_time_ms is not None:
                self._pending_min = min(self._pending_min or landed.min_on_time_ms,
                                        landed.min_on_time_ms)  # fmt: skip
            self._lock.notify_all()

    def landed_here(self) -> bool:
        """Whether a batch landed in this process since the last :meth:`reset`."""
        with self._lock:
            return self._landed_here is not None

    def final_through(self) -> dict[str, int]:
        """Each group's watermark as of the last committed round."""
        return dict(self.log.final_through)

    def reset(self) -> None:
        """Forget what this process knew (the landing is replaying): the log is read again."""
        with self._lock:
            self._loaded = False
            self._latest = None
            self._pending_min = None
            self._landed_here = None

    # --- running rounds ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"{self.query_name}-final",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Let the running round end, then stop (what is left is planned again by the next
        process)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def check(self) -> None:
        """Raise the error that stopped the rounds, if any (the landing then fails the query)."""
        if self.error is not None:
            raise RuntimeError(f"{self.query_name}: finalizing windows failed: {self.error}") \
                from self.error  # fmt: skip

    def run_pending(self) -> None:
        """Run rounds on this thread until every landed batch is finalized through (a round
        that fails is run again as planned by the next call)."""
        while (planned := self._next()) is not None:
            try:
                self._run(planned)
            except BaseException:
                with self._lock:
                    self._loaded = False  # read the plan back: never plan that round anew
                raise

    def _loop(self) -> None:
        use_pool(self.spark, FINALIZE_POOL)
        try:
            while True:
                with self._lock:
                    while not self._stopping and not self._due():
                        self._lock.wait(1.0)
                    if self._stopping:
                        return
                planned = self._next()
                if planned is None:  # due, but its batch has not landed here yet: wait for it
                    with self._lock:
                        self._lock.wait(1.0)
                    continue
                self._run(planned)
        except BaseException as exc:  # noqa: BLE001 - kept for the landing thread to raise
            log.error("finalizer stopped", extra={"query": self.query_name, "error": str(exc)})
            self.error = exc

    def _due(self) -> bool:
        """A batch with rows landed after the last round (empty batches move nothing)."""
        latest = self._latest
        return (
            latest is not None
            and latest.high_water_ms is not None
            and latest.batch_id > self.log.through_batch
        )

    def _next(self) -> Round | None:
        """The round to run now: the one cut short by a previous process, or a new plan through
        the latest landed batch (None: nothing to do)."""
        with self._lock:
            if not self._loaded:
                self._redo = self.log.load()
                self._loaded = True
            latest, here = self._latest, self._landed_here
            if latest is None or here is None:
                return None  # rows of this process's batches are needed first
            if self._redo is not None:
                if self._redo.through_batch >= here and latest.batch_id < self._redo.through_batch:
                    return None  # its batch has not landed in this process yet
                return self._redo
            if latest.batch_id <= self.log.through_batch or latest.high_water_ms is None:
                return None
            minimum, self._pending_min = self._pending_min, None
            if self.log.done == 0 and latest.first_on_time_ms is not None:
                # no round yet: the groups start with the checkpoint's first rows, also when
                # the batches that landed them ran in an earlier process
                minimum = min(minimum or latest.first_on_time_ms, latest.first_on_time_ms)
            before = self.log.final_through
            if self.log.done == 0 and latest.legacy_final_through:
                before = latest.legacy_final_through
        planned = Round(self.log.done + 1, latest.batch_id, latest.high_water_ms, before, minimum)
        self.log.plan(planned)
        return planned

    def _run(self, planned: Round) -> None:
        timeline = Timeline()
        work, after = planned.work(self.groups)
        with timeline.stage("restore"):
            self.memory.restore(work, after)
        found = self._finalize(planned.number, work, timeline) if work else []
        if found:
            with timeline.stage("anomalies"):
                frame = self.spark.createDataFrame(found, anomalies.ANOMALIES)
                self.writers()["anomalies"].write(frame, planned.number)
        self.log.commit(planned, after, len(found))
        with self._lock:
            self._redo = None
        self.memory.release(finalize.keep_from(self.groups, after))
        with timeline.stage("compact"):
            self.memory.compact()
        if self.on_commit is not None:
            self.on_commit(after)
        for alert in anomaly_alerts(found, table_path(self.settings, "anomalies")):
            self.alert_sink.send(alert)
        timeline.log(f"{self.query_name}:final", planned.number)

    def writers(self) -> dict[str, BatchTableWriter]:
        if self._writers is None:
            scope = f"{self.query_name}-final-{self.query_id()}"
            self._writers = {
                name: BatchTableWriter(
                    self.spark, table_path(self.settings, name), scope, ("window_date",)
                )
                for name in ["anomalies", *(family.name for family in self.families)]
            }
        return self._writers

    def _finalize(
        self, number: int, work: list[finalize.Finalization], timeline: Timeline
    ) -> list[anomalies.Row]:
        """Write every window of ``work`` and return the anomalies detected on them."""
        writers = self.writers()
        detections: list[anomalies.Row] = []
        cached: list[DataFrame] = []
        pieces = self.memory.snapshot()

        def emit(item: finalize.Finalization) -> None:
            use_pool(self.spark, FINALIZE_POOL)
            covering = finalize.covering(pieces, item)
            if not covering:  # no rows: no window
                return
            with timeline.stage(f"seed:{item.name}"):
                self.memory.seed_history(item)
            # the pieces of many small batches in a few tasks: one per core, not one per
            # cached partition (a task's fixed cost is larger than its share of a live batch)
            source = reduce(DataFrame.unionByName, [piece.frame for piece in covering]).coalesce(
                self.spark.sparkContext.defaultParallelism
            )
            # one aggregation serves the group's tables and anomaly rules
            windows = finalize.final_windows(source, item).persist()
            cached.append(windows)
            tables = [
                (family, windows.transform(aggregate.project(family))) for family in item.group
            ]
            with timeline.stage(f"detect:{item.name}"):  # also computes the cached windows
                for family, rows in tables:
                    detections.extend(detect(family, rows, self.thresholds, self.memory.histories))

            def write(family: catalog.Family, rows: DataFrame) -> Callable[[], None]:
                def run() -> None:
                    with timeline.stage(family.name):
                        writers[family.name].write(rows, number)

                return run

            run_parallel(self.spark, FINALIZE_POOL, [write(f, r) for f, r in tables])

        try:
            # the groups' jobs are small; side by side they keep both cores busy
            with ThreadPoolExecutor(max_workers=min(4, len(work))) as pool:
                for future in [pool.submit(emit, item) for item in work]:
                    future.result()
        finally:
            for frame in cached:
                frame.unpersist()
        return detections
