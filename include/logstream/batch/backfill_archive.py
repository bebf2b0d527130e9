"""Archived log files read as Kafka-shaped records, one per line, numbered within each file.

A line is one record, read as raw bytes, so non-UTF-8 bytes reach the parser as they would from
Kafka; the line rules are those of ``logstream parse`` (lines end at ``\\n``, a ``\\r`` before it
is dropped, a final newline starts no record, a blank line inside a file is a record). Each line
is shaped as a Kafka record (:data:`logstream.schemas.KAFKA_RECORD`): no key, topic = the file's
URI, partition 0, offset = its line number from 0 (so ``event_id`` = ``<uri>:0:<line>`` names one
file and line), and a null Kafka timestamp.

Line numbers
    Spark's text source splits a large uncompressed file into blocks that different tasks read.
    A first, cheap pass counts the lines of each (file, block start) (``_metadata``) and the
    smallest ``monotonically_increasing_id`` among them. A task reads its blocks one after the
    other, so the lines of a block have consecutive ids, and a line's number is the line count
    of its file's earlier blocks plus its id minus the block's first id. The caller checks that
    every file's numbers are exactly 0..lines-1 before it commits anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream.storage.fs import FileStatus

_GLOB_CHARACTERS = re.compile(r"([{}\[\]*?\\])")


def _literal_path(path: str) -> str:
    """``path`` with Hadoop glob characters escaped, so Spark reads that one file."""
    return _GLOB_CHARACTERS.sub(r"\\\1", path)


def _without_carriage_return(line: Column) -> Column:
    """A binary line without one trailing ``\\r`` (CRLF files)."""
    return F.when(
        F.substring(line, -1, 1) == F.lit(bytearray(b"\r")),
        line.substr(F.lit(1), F.octet_length(line) - 1),
    ).otherwise(line)


def read_records(
    spark: SparkSession, files: Sequence[FileStatus]
) -> tuple[DataFrame, dict[str, int]]:
    """The files' lines as ``schemas.KAFKA_RECORD`` rows, and each file's line count (one Spark
    job counts the lines of every block; see "Line numbers")."""
    scan = spark.read.option("lineSep", "\n").text([_literal_path(file.path) for file in files])
    lines = scan.select(
        F.col("_metadata.file_path").alias("file_path"),
        F.col("_metadata.file_block_start").alias("block_start"),
        F.monotonically_increasing_id().alias("row_id"),
        _without_carriage_return(F.col("value").cast("binary")).alias("value"),
    )
    blocks = (
        lines.groupBy("file_path", "block_start")
        .agg(F.count(F.lit(1)).alias("lines"), F.min("row_id").alias("first_id"))
        .collect()
    )
    counts = {file.uri: 0 for file in files}
    shifts = []
    for block in sorted(blocks, key=lambda row: (row.file_path, row.block_start)):
        if block.file_path not in counts:
            raise RuntimeError(
                f"Spark read {block.file_path}, which is none of the listed files "
                f"({', '.join(list(counts)[:3])}...); report this with the path given"
            )
        shift = counts[block.file_path] - block.first_id
        shifts.append((block.file_path, block.block_start, shift))
        counts[block.file_path] += block.lines
    shift_frame = spark.createDataFrame(shifts, "file_path string, block_start long, shift long")
    records = lines.join(F.broadcast(shift_frame), ["file_path", "block_start"]).select(
        F.lit(None).cast("binary").alias("key"),
        F.col("value"),
        F.col("file_path").alias("topic"),
        F.lit(0).alias("partition"),
        (F.col("row_id") + F.col("shift")).alias("offset"),
        F.lit(None).cast("timestamp").alias("timestamp"),
    )
    return records, counts
