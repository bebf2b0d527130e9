"""Publishing files into the Parquet tables so that a crash or a re-run never leaves half of it.

Three protocols, for three kinds of writer:

:class:`BatchTableWriter`: append one micro-batch to a table, exactly once per batch id
    Spark re-runs a micro-batch with the same input after a failure, so a sink is exactly once
    when writing batch N twice leaves the table as if it was written once. Per (writer, batch id)
    under ``<table>/_commits/<writer>/``:

    1. a ``<batch>.done`` marker exists -> the batch is already in the table: do nothing;
    2. otherwise remove what an interrupted attempt left (files listed in ``<batch>.manifest``,
       the staging folder), write the batch to ``<table>/_staging/<writer>/<batch>/``;
    3. write the manifest of final file names, move each staged file into its partition folder
       with a name that carries the writer and batch id, then write the ``.done`` marker.

    Readers (``spark.read.parquet(table)``, streaming file sources) skip ``_``-prefixed folders,
    so they never see staged files. Markers older than ``keep_markers`` batches are pruned.

:class:`DayPublisher`: replace one partition (a day) of a table
    Each table's partition is written to ``<data_root>/<root>/_staging/<D>/`` (readers skip
    ``_``-prefixed folders), its files renamed to fixed names (``part-00000.parquet``, ...), then
    swapped in: the old partition folder is moved aside, the new one renamed into place, the old
    one deleted. A reader sees the old partition, the new one, or (for the instant between two
    renames) none; never half of one. :meth:`DayPublisher.reset` removes what an interrupted run
    of the same day left in staging, so runs of different days may overlap but two runs of the
    SAME day must not.

:class:`TableCommits`: add new files to several tables in one commit
    Under ``<first table>/_commits/<writer>/``, per commit id:

    1. :meth:`TableCommits.recover` rolls back interrupted attempts (the files listed by a
       ``<commit>.manifest`` without its ``.done`` are deleted, as is every table's
       ``_staging/<writer>/``) and returns the committed records;
    2. :meth:`TableCommits.stage` writes a table's new rows to
       ``<table>/_staging/<writer>/<commit>/``;
    3. :meth:`TableCommits.commit` writes ``<commit>.manifest`` (the final name of every staged
       file), moves each staged file into its partition folder as
       ``<writer>-<commit>-<n>.parquet``, then writes the caller's record as ``<commit>.done``
       (the commit point) and removes the manifest.

    Readers may see part of a commit between its first move and its ``.done`` (or, after a
    crash, until the next :meth:`~TableCommits.recover`), as with the stream's sink. The record is
    the caller's: what the commit holds, in the same atomic step as its files.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from pyspark.sql import DataFrame, DataFrameWriter, SparkSession

from logstream import schemas
from logstream.config import Settings
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import table_path

log = logging.getLogger(__name__)


def parquet_writer(frame: DataFrame, partition_by: Sequence[str] = ()) -> DataFrameWriter:
    """An overwrite writer of ``frame``, partitioned, without dictionaries for the columns that
    are distinct per row (:data:`logstream.schemas.DISTINCT_PER_ROW`): a dictionary of unique
    values only costs space and time."""
    writer = frame.write.mode("overwrite").partitionBy(*partition_by)
    for column in set(schemas.DISTINCT_PER_ROW).intersection(frame.columns):
        writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
    return writer


class DayPublisher:
    """Stages each table's day partition as fixed-name files and swaps it in atomically."""

    def __init__(self, spark: SparkSession, settings: Settings, day: date, root: str) -> None:
        """``root``: the table under whose ``_staging/<day>/`` folder the partitions are staged."""
        self.fs = HadoopFS(spark)
        self.settings = settings
        self.staging = f"{table_path(settings, root)}/_staging/{day.isoformat()}"

    def reset(self) -> None:
        """Remove what an interrupted run of this day left behind."""
        self.fs.delete(self.staging)

    def _slot(self, table: str) -> str:
        return table.replace("/", "__")

    def stage(self, frame: DataFrame, table: str, partition: str) -> str:
        """Write ``frame`` and return the staged ``<partition>`` folder (one file per partition
        of ``frame``, named ``part-<n>.parquet``)."""
        raw = f"{self.staging}/raw/{self._slot(table)}"
        frame.write.mode("overwrite").parquet(raw)
        ready = f"{self.staging}/ready/{self._slot(table)}/{partition}"
        self.fs.mkdirs(ready)
        for number, source in enumerate(sorted(self.fs.list_files(raw, ".parquet"))):
            self.fs.rename(source, f"{ready}/part-{number:05d}.parquet")
        self.fs.delete(raw)
        return ready

    def publish(self, ready: str, table: str, partition: str) -> str:
        """Swap the staged folder in as ``<table>/<partition>``; returns the published path."""
        target = f"{table_path(self.settings, table)}/{partition}"
        aside = f"{self.staging}/replaced/{self._slot(table)}"
        self.fs.delete(aside)
        if self.fs.exists(target):
            self.fs.rename(target, aside)
        self.fs.rename(ready, target)
        self.fs.delete(aside)
        return target


def new_commit_id(now: datetime) -> str:
    """A commit id that sorts by time: ``<now as digits>-<6 random hex digits>``."""
    return f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


class TableCommits:
    """Paths of the tables one writer commits to, their staging folders and the commit records."""

    def __init__(
        self, spark: SparkSession, settings: Settings, tables: Sequence[str], writer: str
    ) -> None:
        self.fs = HadoopFS(spark)
        self.writer = writer
        self.roots = {name: table_path(settings, name) for name in tables}
        self.commits = f"{self.roots[tables[0]]}/_commits/{writer}"

    def staging(self, table: str, commit: str = "") -> str:
        return f"{self.roots[table]}/_staging/{self.writer}" + (f"/{commit}" if commit else "")

    def recover(self) -> list[dict[str, Any]]:
        """Roll back interrupted attempts, then read the committed records (in commit order)."""
        names = self.fs.list_names(self.commits)
        done = sorted(name.removesuffix(".done") for name in names if name.endswith(".done"))
        for name in names:
            path = f"{self.commits}/{name}"
            if name.endswith(".manifest") and name.removesuffix(".manifest") not in done:
                for target in json.loads(self.fs.read_text(path) or "[]"):
                    self.fs.delete(target, recursive=False)
                log.warning(
                    "rolled back an interrupted commit",
                    extra={"writer": self.writer, "manifest": path},
                )
            if name.endswith((".manifest", ".tmp")):
                self.fs.delete(path, recursive=False)
        for table in self.roots:
            self.fs.delete(self.staging(table))
        return [json.loads(self.fs.read_text(f"{self.commits}/{c}.done") or "") for c in done]

    def stage(self, table: str, commit: str, frame: DataFrame, partition_by: Sequence[str]) -> None:
        """Write ``frame`` as the commit's new rows of ``table`` (not visible to readers yet)."""
        parquet_writer(frame, partition_by).parquet(self.staging(table, commit))

    def commit(self, commit: str, record: dict[str, Any]) -> int:
        """Move the staged files into place and write the commit record; returns the file count."""
        moves = []
        marker = f"/_staging/{self.writer}/{commit}/"
        for table, root in self.roots.items():
            staged = sorted(self.fs.list_files(self.staging(table, commit), ".parquet"))
            for number, source in enumerate(staged):
                relative = source.split(marker, 1)[1]
                folder = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
                name = f"{self.writer}-{commit}-{number:05d}.parquet"
                moves.append((source, f"{root}/{folder}{name}"))
        manifest = f"{self.commits}/{commit}.manifest"
        self.fs.write_text(manifest, json.dumps([target for _, target in moves]))
        for source, target in moves:
            self.fs.rename(source, target)
        self.fs.write_text(f"{self.commits}/{commit}.done", json.dumps(record, sort_keys=True))
        self.fs.delete(manifest, recursive=False)
        for table in self.roots:
            self.fs.delete(self.staging(table, commit))
        return len(moves)


class BatchTableWriter:
    """Append micro-batches to one partitioned Parquet table, idempotently per batch id."""

    def __init__(
        self,
        spark: SparkSession,
        table_path: str,
        writer_name: str,
        partition_by: Sequence[str] = (),
        keep_markers: int = 1000,
    ) -> None:
        self.fs = HadoopFS(spark)
        self.table_path = table_path.rstrip("/")
        self.writer_name = writer_name
        self.partition_by = list(partition_by)
        self.keep_markers = keep_markers
        self._commits = f"{self.table_path}/_commits/{writer_name}"

    def is_committed(self, batch_id: int) -> bool:
        return self.fs.exists(f"{self._commits}/{batch_id}.done")

    def write(self, frame: DataFrame, batch_id: int) -> bool:
        """Write ``frame`` as batch ``batch_id``; returns False if it was already committed."""
        staging = f"{self.table_path}/_staging/{self.writer_name}/{batch_id}"
        manifest_path = f"{self._commits}/{batch_id}.manifest"
        if self.is_committed(batch_id):
            log.info("batch already committed", extra={"table": self.table_path, "batch": batch_id})
            # an attempt stopped between its commit marker and its clean-up leaves these
            self.fs.delete(manifest_path, recursive=False)
            self.fs.delete(staging)
            return False
        self._undo(manifest_path, staging)

        parquet_writer(frame, self.partition_by).parquet(staging)
        moves = []
        prefix = f"{self.writer_name}-{batch_id:012d}"
        for number, source in enumerate(sorted(self.fs.list_files(staging, ".parquet"))):
            relative = source.split(f"/_staging/{self.writer_name}/{batch_id}/", 1)[1]
            folder = relative.rsplit("/", 1)[0] if "/" in relative else ""
            name = f"{prefix}-{number:05d}.parquet"
            target = f"{self.table_path}/{folder}/{name}" if folder else f"{self.table_path}/{name}"
            moves.append((source, target))
        self.fs.write_text(manifest_path, json.dumps([target for _, target in moves]))
        for source, target in moves:
            self.fs.rename(source, target)
        self.fs.write_text(f"{self._commits}/{batch_id}.done", json.dumps({"files": len(moves)}))
        self.fs.delete(staging)
        self.fs.delete(manifest_path)
        self._prune(batch_id)
        return True

    def _undo(self, manifest_path: str, staging: str) -> None:
        """Remove the traces of an interrupted attempt at this batch."""
        manifest = self.fs.read_text(manifest_path)
        if manifest:
            for target in json.loads(manifest):
                self.fs.delete(target, recursive=False)
            log.warning("rolled back an interrupted batch", extra={"manifest": manifest_path})
        self.fs.delete(staging)

    def _prune(self, batch_id: int) -> None:
        if batch_id % 100 or batch_id < self.keep_markers:
            return
        for name in self.fs.list_names(self._commits):
            stem = name.split(".", 1)[0]
            if stem.isdigit() and int(stem) < batch_id - self.keep_markers:
                self.fs.delete(f"{self._commits}/{name}", recursive=False)
