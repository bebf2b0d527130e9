"""Land archived log files into bronze, exactly once per file and line (SPEC §3, §7.2).

An archive is a path or Hadoop glob on any Hadoop URI (local, ``file://``, ``hdfs://``,
``s3a://``); a matched folder means every file below it, and compressed files (``.gz``,
``.bz2``, ...) are read through Hadoop's codecs. Its lines go to the bronze ``events`` and
``quarantine`` tables the stream writes, through the stream's parse::

    summary = backfill(spark, settings, BackfillRequest("s3a://bucket/nginx/2015-*.gz"))

The request, chunk planning and the job's arguments are in :mod:`logstream.batch.backfill_request`,
the reading of lines in :mod:`logstream.batch.backfill_archive`, the ledger of landed units and a
run's counts in :mod:`logstream.batch.backfill_ledger`, the commit protocol in
:class:`logstream.storage.commits.TableCommits`. This module runs them.

How a line becomes a row
    Each line is read as a Kafka record with a null Kafka timestamp: the parser then skips its
    bounds against the wall clock, since an archive is old by design. Events get
    ``processing_time`` = when their chunk was landed, ``lateness_ms`` null (there is no stream
    to be late for) and ``event_date``/``event_hour`` from the event time; quarantined lines get
    ``quarantine_date`` = the landing day (they have no Kafka timestamp); a blank line is
    quarantined as ``empty``. ``late_events`` is not written.

Date range
    With ``start_date``/``end_date`` (UTC days, inclusive; either may be open) only events of
    those days are landed; the others are counted as ``skipped_out_of_range`` and can be landed
    by a later run. Rejected lines have no trustworthy date: the first run that reads their file
    quarantines them, whatever its range.

Exactly once
    Files are landed in chunks of at most ``chunk_files`` files and ``chunk_bytes`` bytes, each
    with one commit of both tables under ``<data_root>/events/_commits/backfill/``, whose
    ``.done`` record says which units it landed (see :mod:`logstream.batch.backfill_ledger`):

    1. read the ledger of committed records, after rolling back what an interrupted run left;
    2. parse the chunk once (cached) and classify every line: a new event, a new rejected line,
       already landed (its unit is in the ledger), or outside the date range;
    3. stage the new events and rejected lines, and commit them with the chunk's record.

    A re-run lands only the units the ledger lacks: nothing for files already landed (complete
    files are not even read again), the remaining days of a file first landed with a date range.
    An attempt that crashed before writing ``.done`` is rolled back by the next run, which lands
    its units again; after it, they are skipped. So every line is in the tables once, whatever
    the crashes, date ranges, or grouping of files into runs. Two backfills must not run at the
    same time (the DAG runs one at a time); the stream may run beside one.

    A file whose URI was landed with another size or modification time has changed (a log still
    being written, a replaced file): its lines would repeat landed event ids, so it is skipped
    and listed in ``changed_files``. Backfill closed (rotated) files. The same lines under two
    URIs are two files: land an archive from one place.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from logstream.batch.backfill_archive import read_records
from logstream.batch.backfill_ledger import BackfillSummary, FileRecord, Ledger, file_key
from logstream.batch.backfill_request import (
    CHUNK_BYTES,
    CHUNK_FILES,
    BackfillRequest,
    plan_chunks,
)
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.commits import TableCommits, new_commit_id
from logstream.storage.fs import FileStatus
from logstream.storage.tables import table_schema
from logstream.transforms import parsing

__all__ = ["BackfillRequest", "BackfillSummary", "backfill"]

log = logging.getLogger(__name__)

#: writer name: commit records, staging folders and data file names carry it
WRITER = "backfill"
#: the tables a backfill commit writes; the commit records live under the first one
TABLES = ("events", "quarantine")
#: how each line is classified
NEW_EVENT, NEW_REJECTED, LANDED, OUT_OF_RANGE = "event", "rejected", "landed", "out_of_range"


def backfill(
    spark: SparkSession,
    settings: Settings,
    request: BackfillRequest,
    chunk_files: int = CHUNK_FILES,
    chunk_bytes: int = CHUNK_BYTES,
) -> BackfillSummary:
    """Land the request's files (see the module docstring); returns what this run did."""
    options = request.parse_options(settings)  # an unknown format fails before any reading
    tables = TableCommits(spark, settings, TABLES, WRITER)
    files = tables.fs.glob_files(request.path)
    if not files:
        raise ConfigError(
            f"no files match {request.path!r} (names starting with _ or . are skipped); "
            "check the path, or quote the glob so the shell does not expand it"
        )
    ledger = Ledger(tables.recover())
    summary = BackfillSummary(files=len(files))
    pending = []
    for file in files:
        record = ledger.get(file)
        earlier = ledger.changed(file) if record is None else None
        if earlier is not None:
            summary.changed_files.append(file.uri)
            log.warning(
                "skipped a file that changed since it was landed",
                extra={
                    "file": file.uri,
                    "landed_size": earlier.size,
                    "size": file.size,
                    "landed_modified_ms": earlier.modified_ms,
                    "modified_ms": file.modified_ms,
                },
            )
        elif record is not None and record.complete:
            summary.add_landed_file(record, request)
        else:
            pending.append(file)
    chunks = plan_chunks(pending, chunk_files, chunk_bytes)
    for number, chunk in enumerate(chunks, 1):
        _land_chunk(spark, tables, request, options, chunk, ledger, summary)
        log.info(
            "backfill progress",
            extra={
                "chunk": f"{number}/{len(chunks)}",
                "files": len(chunk),
                "events_landed": summary.events_landed,
                "quarantined": summary.quarantined,
            },
        )
    return summary


def _land_chunk(
    spark: SparkSession,
    tables: TableCommits,
    request: BackfillRequest,
    options: parsing.ParseOptions,
    chunk: Sequence[FileStatus],
    ledger: Ledger,
    summary: BackfillSummary,
) -> None:
    """Read, parse, classify, stage and commit one chunk; updates ``ledger`` and ``summary``."""
    now = datetime.now(UTC)
    commit = new_commit_id(now)
    records, line_counts = read_records(spark, chunk)
    prior = {file.uri: ledger.get(file) for file in chunk}
    landed_days = [
        (uri, day) for uri, record in prior.items() if record is not None for day in record.days
    ]
    rejected_done = [
        uri for uri, record in prior.items() if record and record.quarantined is not None
    ]

    landed = spark.createDataFrame(landed_days, "kafka_topic string, event_date date")
    is_valid = F.col("reason").isNull()
    # parse once, classify every line, cache: the statistics and both writes read it
    classified = (
        records.transform(parsing.parse_log_records(options))
        .withColumn("event_date", F.when(is_valid, F.to_date("event_time")))
        .join(
            F.broadcast(landed.withColumn("_landed", F.lit(True))),
            ["kafka_topic", "event_date"],
            "left",
        )
        .withColumn(
            "_kind",
            F.when(
                ~is_valid,
                F.when(F.col("kafka_topic").isin(rejected_done), LANDED).otherwise(NEW_REJECTED),
            )
            .when(~request.in_range_column(F.col("event_date")), OUT_OF_RANGE)
            .when(F.col("_landed"), LANDED)
            .otherwise(NEW_EVENT),
        )
        .persist()
    )
    try:
        # what each file holds, per kind and day (and the line numbering check)
        counts = (
            classified.groupBy("kafka_topic", "_kind", "event_date")
            .agg(
                F.count(F.lit(1)).alias("lines"),
                F.min("kafka_offset").alias("first"),
                F.max("kafka_offset").alias("last"),
            )
            .collect()
        )
        _check_numbering(counts, line_counts)

        processing_time = F.lit(now).cast("timestamp")
        new_events = (
            classified.where(F.col("_kind") == NEW_EVENT)
            .transform(parsing.valid_events)
            .withColumn("processing_time", processing_time)
            .withColumn("lateness_ms", F.lit(None).cast("long"))
            .withColumn("event_hour", F.hour("event_time"))
            .select(*table_schema(spark, "events").fieldNames())
        )
        new_rejected = (
            classified.where(F.col("_kind") == NEW_REJECTED)
            .transform(parsing.rejected_records)
            .withColumn("processing_time", processing_time)
            .withColumn(
                "quarantine_date",
                F.coalesce(F.to_date("kafka_timestamp"), F.to_date(processing_time)),
            )
            .select(*table_schema(spark, "quarantine").fieldNames())
        )
        by_kind: Counter[str] = Counter()
        for row in counts:
            by_kind[row._kind] += row.lines
        if by_kind[NEW_EVENT]:
            tables.stage("events", commit, new_events, ["event_date", "event_hour"])
        if by_kind[NEW_REJECTED]:
            tables.stage("quarantine", commit, new_rejected, ["quarantine_date"])
    finally:
        classified.unpersist()

    record = _commit_record(commit, now, chunk, prior, line_counts, counts)
    if record["files"]:
        data_files = tables.commit(commit, record)
        ledger.add(record)
        summary.commits += 1
        log.info("backfill chunk committed", extra={"commit": commit, "data_files": data_files})
    _count(summary, line_counts, counts)


def _check_numbering(counts: Sequence[Any], line_counts: Mapping[str, int]) -> None:
    """Every file's offsets must be exactly 0..lines-1 (see "Line numbers" in
    :mod:`logstream.batch.backfill_archive`)."""
    seen: dict[str, list[int]] = defaultdict(lambda: [0, 0, -1])  # lines, first, last
    for row in counts:
        numbers = seen[row.kafka_topic]
        numbers[0] += row.lines
        numbers[1] = min(numbers[1], row.first)
        numbers[2] = max(numbers[2], row.last)
    for uri, lines in line_counts.items():
        if lines and seen.get(uri) != [lines, 0, lines - 1]:
            raise RuntimeError(
                f"line numbers of {uri} are not 0..{lines - 1} ({seen.get(uri)}); nothing of "
                "this chunk was committed. Was the file changed while it was read?"
            )


def _commit_record(
    commit: str,
    now: datetime,
    chunk: Sequence[FileStatus],
    prior: Mapping[str, FileRecord | None],
    line_counts: Mapping[str, int],
    counts: Sequence[Any],
) -> dict[str, Any]:
    """The ``.done`` record of a chunk: the files whose landed units this commit changes."""
    new_days: dict[str, dict[str, int]] = defaultdict(dict)
    new_rejected: Counter[str] = Counter()
    out_of_range: Counter[str] = Counter()
    for row in counts:
        if row._kind == NEW_EVENT:
            new_days[row.kafka_topic][row.event_date.isoformat()] = row.lines
        elif row._kind == NEW_REJECTED:
            new_rejected[row.kafka_topic] += row.lines
        elif row._kind == OUT_OF_RANGE:
            out_of_range[row.kafka_topic] += row.lines
    entries = []
    for file in chunk:
        before = prior[file.uri]
        quarantined = (
            new_rejected[file.uri] if before is None or before.quarantined is None else None
        )
        complete = out_of_range[file.uri] == 0
        if before is None or new_days[file.uri] or quarantined is not None or complete:
            entries.append(
                {
                    "key": file_key(file),
                    "uri": file.uri,
                    "size": file.size,
                    "modified_ms": file.modified_ms,
                    "lines": line_counts[file.uri],
                    "days": new_days[file.uri],
                    "quarantined": quarantined,
                    "complete": complete,
                }
            )
    return {"commit": commit, "committed_at": now.isoformat(), "files": entries}


def _count(summary: BackfillSummary, line_counts: Mapping[str, int], counts: Sequence[Any]) -> None:
    summary.lines += sum(line_counts.values())
    for row in counts:
        if row._kind == NEW_EVENT:
            summary.events_landed += row.lines
            summary.days_landed.add(row.event_date)
        elif row._kind == NEW_REJECTED:
            summary.quarantined += row.lines
        elif row._kind == LANDED:
            summary.skipped_already_landed += row.lines
        else:
            summary.skipped_out_of_range += row.lines
        if row.event_date is not None and row._kind in (NEW_EVENT, LANDED):
            summary.days_touched.add(row.event_date)
