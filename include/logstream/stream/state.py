"""What an ingestion query carries from one micro-batch to the next, and how a new process gets
it back.

* :class:`IngestState` is durable: the event-time high-water mark, the totals, the late-data
  users' counters and each group's final-through watermark, saved per batch id in the query's
  checkpoint folder. A batch loads the state after the latest batch before it, so a replayed
  batch sees what its first attempt saw.
* :class:`BatchMemory` is what a process keeps in memory between consecutive batches: the cached
  rows of the windows still open (:class:`logstream.transforms.finalize.OpenRows`) and each
  look-back rule's :class:`anomalies.KeyHistory`. A process's first batch (a restart, or a
  replay after a failure) restores them: the open rows from bronze once the batch has landed,
  the histories from the committed metric tables before the batch writes them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream import catalog
from logstream.catalog import anomalies
from logstream.config import Settings
from logstream.storage.bronze import read_bronze
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import existing_partitions, read_paths
from logstream.stream.detect import window_rows
from logstream.timeutil import from_ms, interval_ms
from logstream.transforms import aggregate, finalize

STATE_VERSIONS_KEPT = 50
#: how many cached open-row pieces merge into one (BatchMemory.compact)
PIECES_MERGED = 12


@dataclass
class IngestState:
    """What ingestion carries from one micro-batch to the next (stored per batch id)."""

    max_event_time_ms: int | None = None
    totals: dict[str, int] = field(
        default_factory=lambda: {"valid": 0, "quarantined": 0, "late": 0}
    )
    late_users: dict[str, dict[str, int]] = field(default_factory=dict)  # date -> user -> n
    first_on_time_ms: int | None = None  # the smallest on-time event time of the first batch
    #: the groups' watermarks of a checkpoint written before rounds had a log of their own
    #: (read once, by the first round: :mod:`logstream.stream.finalizer`)
    final_through: dict[str, int] = field(default_factory=dict)

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
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})

    @classmethod
    def latest(cls, fs: HadoopFS, folder: str) -> tuple[int, IngestState] | None:
        """The last batch with a saved state and that state (None: no batch landed yet)."""
        done = [
            int(name.removesuffix(".json"))
            for name in fs.list_names(folder)
            if name.endswith(".json") and name.removesuffix(".json").isdigit()
        ]
        if not done:
            return None
        return max(done), cls.load(fs, folder, max(done) + 1)

    def save(self, fs: HadoopFS, folder: str, batch_id: int) -> None:
        fs.write_text(f"{folder}/{batch_id}.json", json.dumps(self.__dict__))
        for name in fs.list_names(folder):
            stem = name.removesuffix(".json")
            if stem.isdigit() and int(stem) < batch_id - STATE_VERSIONS_KEPT:
                fs.delete(f"{folder}/{name}", recursive=False)

    def count_late_users(
        self, counts: Iterable[tuple[str, str, int]], limit: int
    ) -> list[tuple[date, str, int]]:
        """Add a batch's late events per (arrival day as ISO text, user); return the users whose
        count for a day goes above ``limit`` with this batch, as (day, user, count) (SPEC
        §5.2.6). Only the latest two days are kept: the counter is per arrival day."""
        crossed = []
        for day, user, count in counts:
            per_day = self.late_users.setdefault(day, {})
            before = per_day.get(user, 0)
            after = before + count
            per_day[user] = after
            if before <= limit < after:
                crossed.append((date.fromisoformat(day), user, after))
        for day in sorted(self.late_users)[:-2]:
            del self.late_users[day]
        return crossed


class BatchMemory:
    """The open windows' cached rows and the look-back rules' key histories of one ingestion
    query, kept in a process. The landing adds each batch's rows (:meth:`add`); the finalizer
    reads them (:meth:`snapshot`), restores the rows of batches landed before the process
    (:meth:`restore`) and releases what no open window needs (:meth:`release`)."""

    def __init__(
        self,
        spark: SparkSession,
        settings: Settings,
        events_table: str,
        groups: list[tuple[catalog.Family, ...]],
        thresholds: anomalies.Thresholds,
        carried: tuple[str, ...] = (),
    ) -> None:
        """``carried``: more bronze columns to keep than the metrics read (the landing's
        statistics read them from the same cached rows)."""
        self.spark = spark
        self.settings = settings
        self.events_table = events_table
        self.groups = groups
        self.thresholds = thresholds
        self.max_delay_ms = max((group[0].delay_ms for group in groups), default=0)
        #: the bronze columns open windows need: what the metrics read, time and lateness
        self.columns = list(
            dict.fromkeys([*aggregate.input_columns(groups), "event_time", "lateness_ms", *carried])
        )
        self.pieces: list[finalize.OpenRows] = []
        self.histories: dict[str, anomalies.KeyHistory] = {}  # by rule kind
        self.through_batch: int | None = None  # the last batch landed into the memory
        #: rows landed before this processing time are in bronze only (None: nothing to read),
        #: with event times up to ``restore_through_ms``
        self.restore_before_ms: int | None = None
        self.restore_through_ms = 0
        self._lock = threading.Lock()

    def continues(self, batch_id: int) -> bool:
        """The memory is that of the batch before ``batch_id`` (not a new process or a replay)."""
        return self.through_batch == batch_id - 1

    def begin(self, batch_time_ms: int, high_water_ms: int | None) -> None:
        """Start again at a batch with this processing time (a new process, or a replay): the
        pieces go, and the rows of earlier batches, if any landed (``high_water_ms``: their
        largest event time), come from bronze."""
        self.forget()
        if high_water_ms is not None:
            self.restore_before_ms = batch_time_ms
            self.restore_through_ms = high_water_ms

    def forget(self) -> None:
        """Release everything."""
        with self._lock:
            pieces, self.pieces = self.pieces, []
        for piece in pieces:
            piece.frame.unpersist()
        self.histories.clear()
        self.through_batch = None
        self.restore_before_ms = None

    def add(self, piece: finalize.OpenRows | None, batch_id: int) -> None:
        """A landed batch's rows for the open windows (cached; None: it has none)."""
        with self._lock:
            if piece is not None:
                self.pieces.append(piece)
            self.through_batch = batch_id

    def snapshot(self) -> list[finalize.OpenRows]:
        with self._lock:
            return list(self.pieces)

    def release(self, keep_from: int | None) -> None:
        """Release the pieces no window needs any more (all of them for ``None``)."""
        with self._lock:
            kept = [p for p in self.pieces if keep_from is not None and p.hi_ms >= keep_from]
            dropped = [p for p in self.pieces if p not in kept]
            self.pieces = kept
        for piece in dropped:
            piece.frame.unpersist()

    def compact(self, fan_in: int = PIECES_MERGED) -> None:
        """Merge pieces, oldest first, ``fan_in`` at a time: twice that many landings' pieces
        become one of level 1, and ``fan_in`` of those one of level 2 (a row is copied at most
        twice). Spark keeps every cached frame in one list that each query's planning and each
        release walks; a piece per micro-batch over the 15 minutes that open windows span would
        be hundreds of them, this keeps a few dozen."""
        for level, limit in ((0, 2 * fan_in), (1, fan_in)):
            with self._lock:
                same = [piece for piece in self.pieces if piece.level == level]
            if len(same) < limit:
                continue
            old = same[:fan_in]
            frame = (
                reduce(DataFrame.unionByName, [piece.frame for piece in old])
                .coalesce(self.spark.sparkContext.defaultParallelism)
                .persist()
            )
            frame.count()
            lo, hi = min(p.lo_ms for p in old), max(p.hi_ms for p in old)
            with self._lock:
                self.pieces = [finalize.OpenRows(frame, lo, hi, level + 1),
                               *(p for p in self.pieces if p not in old)]  # fmt: skip
            for piece in old:
                piece.frame.unpersist()

    def restore(self, work: list[finalize.Finalization], after: dict[str, int]) -> None:
        """The open windows' rows landed before this process, from bronze, once (by the first
        round of a process).

        They start where the earliest window that is not final yet (or that ``work`` finalizes)
        can start; they are the bronze rows stamped before the process's first batch, up to
        the high-water mark those batches reached (not the round's: a round planned by an
        earlier process may finalize through less than what landed before this one).
        """
        before = self.restore_before_ms
        if before is None:
            return
        starts = [item.rows_from_ms for item in work]
        keep = finalize.keep_from(self.groups, after)
        if keep is not None:
            starts.append(keep)
        if starts:
            lo = min(starts)
            high_water_ms = self.restore_through_ms
            span = (from_ms(lo), from_ms(high_water_ms + 1))
            frame = (
                read_bronze(self.spark, self.settings, self.events_table, span)
                .where(F.col("processing_time") < F.timestamp_millis(F.lit(before)))
                .where(finalize.within_delay(self.max_delay_ms))
                .select(*self.columns)
                .persist()
            )
            frame.count()
            with self._lock:
                # as large as merged pieces get: never merged again (BatchMemory.compact)
                self.pieces.insert(0, finalize.OpenRows(frame, lo, high_water_ms, level=2))
        self.restore_before_ms = None

    def seed_history(self, item: finalize.Finalization) -> None:
        """Seed the history of the group's look-back rules that have none in this process.

        Read from the committed tables before this batch writes them (a replayed batch may find
        its own windows there: :class:`anomalies.KeyHistory` keeps one copy of each): today's and
        yesterday's partitions around the new windows, so the cost does not grow with the table.
        """
        names = {family.name for family in item.group}
        rules = [
            rule
            for rule in anomalies.HISTORY_RULES
            if rule.family in names and rule.kind not in self.histories
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
                committed: DataFrame = read_paths(self.spark, self.settings, rule.family, paths)
                history.add(window_rows(committed, [F.col(rule.key), *map(F.col, rule.columns)]))
            self.histories[rule.kind] = history
