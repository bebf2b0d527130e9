"""Exactly-once Parquet tables written from ``foreachBatch``.

Spark re-runs a micro-batch with the same input after a failure, so a sink is exactly once when
writing batch N twice leaves the table as if it was written once. :class:`BatchTableWriter` gets
there with a small commit protocol per (writer, batch id) under ``<table>/_commits/<writer>/``:

1. a ``<batch>.done`` marker exists -> the batch is already in the table: do nothing;
2. otherwise remove what an interrupted attempt left (files listed in ``<batch>.manifest``,
   the staging folder), write the batch to ``<table>/_staging/<writer>/<batch>/``;
3. write the manifest of final file names, move each staged file into its partition folder with a
   name that carries the writer and batch id, then write the ``.done`` marker.

Readers (``spark.read.parquet(table)``, streaming file sources) skip ``_``-prefixed folders, so
they never see staged files. Markers older than ``keep_markers`` batches are pruned.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession

from logstream import schemas
from logstream.storage.fs import HadoopFS

log = logging.getLogger(__name__)


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
        if self.is_committed(batch_id):
            log.info("batch already committed", extra={"table": self.table_path, "batch": batch_id})
            return False
        staging = f"{self.table_path}/_staging/{self.writer_name}/{batch_id}"
        manifest_path = f"{self._commits}/{batch_id}.manifest"
        self._undo(manifest_path, staging)

        writer = frame.write.mode("overwrite").partitionBy(*self.partition_by)
        for column in set(schemas.DISTINCT_PER_ROW).intersection(frame.columns):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
        writer.parquet(staging)
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
