"""Land archived log files into bronze, exactly once per file and line (SPEC §3, §7.2).

An archive is a path or Hadoop glob on any Hadoop URI (local, ``file://``, ``hdfs://``,
``s3a://``); a matched folder means every file below it, and compressed files (``.gz``,
``.bz2``, ...) are read through Hadoop's codecs. Its lines go to the bronze ``events`` and
``quarantine`` tables the stream writes, through the stream's parse::

    summary = backfill(spark, settings, BackfillRequest("s3a://bucket/nginx/2015-*.gz"))

How a line becomes a row
    A line is one record, read as raw bytes, so non-UTF-8 bytes reach the parser as they would
    from Kafka; the line rules are those of ``logstream parse`` (lines end at ``\\n``, a ``\\r``
    before it is dropped, a final newline starts no record, a blank line inside a file is a
    record and is quarantined as ``empty``). Each line is shaped as a Kafka record: no key, topic =
    the file's URI, partition 0, offset = its line number from 0 (so ``event_id`` =
    ``<uri>:0:<line>`` names one file and line), and a null Kafka timestamp: the parser then skips
    its bounds against the wall clock, since an archive is old by design. Events get
    ``processing_time`` = when their chunk was landed, ``lateness_ms`` null (there is no stream
    to be late for) and ``event_date``/``event_hour`` from the event time; quarantined lines get
    ``quarantine_date`` = the landing day (they have no Kafka timestamp). ``late_events`` is not
    written.

Date range
    With ``start_date``/``end_date`` (UTC days, inclusive; either may be open) only events of
    those days are landed; the others are counted as ``skipped_out_of_range`` and can be landed
    by a later run. Rejected lines have no trustworthy date: the first run that reads their file
    quarantines them, whatever its range.

Line numbers
    Spark's text source splits a large uncompressed file into blocks that different tasks read.
    A first, cheap pass counts the lines of each (file, block start) (``_metadata``) and the
    smallest ``monotonically_increasing_id`` among them. A task reads its blocks one after the
    other, so the lines of a block have consecutive ids, and a line's number is the line count
    of its file's earlier blocks plus its id minus the block's first id. The landing pass checks
    that every file's numbers are exactly 0..lines-1 before anything is committed.

Exactly once
    What is landed once is a *unit*: the events of one (file, UTC event day), or the rejected
    lines of one file, where a file is its URI, size and modification time (``file_key``, a
    digest of the three). Files are landed in chunks of at most ``chunk_files`` files and
    ``chunk_bytes`` bytes, each with one commit under ``<data_root>/events/_commits/backfill/``:

    1. read the ledger, every ``<commit>.done`` record (which units of which files are in the
       tables), after rolling back what an interrupted run left: the files listed by a
       ``<commit>.manifest`` without its ``.done`` are deleted, as is ``_staging/backfill/`` of
       both tables;
    2. parse the chunk once (cached) and classify every line: a new event, a new rejected line,
       already landed (its unit is in the ledger), or outside the date range;
    3. write the new events and rejected lines to ``<table>/_staging/backfill/<commit>/``;
    4. write ``<commit>.manifest`` (the final name of every staged file), move each staged file
       into its partition folder as ``backfill-<commit>-<n>.parquet``, then write
       ``<commit>.done`` and remove the manifest. The ``.done`` record is the commit point: per
       file of the chunk, its key, URI, size, modification time and line count, the days (with
       their event counts) this commit landed, the rejected lines it quarantined, and whether
       every line of the file is now landed (``complete``).

    A re-run lands only the units the ledger lacks: nothing for files already landed (complete
    files are not even read again), the remaining days of a file first landed with a date range.
    An attempt that crashed before writing ``.done`` is rolled back by the next run, which lands
    its units again; after it, they are skipped. So every line is in the tables once, whatever
    the crashes, date ranges, or grouping of files into runs. Readers may see part of a chunk
    between its first move and its ``.done`` (or, after a crash, until the next run rolls it
    back), as with the stream's sink. Two backfills must not run at the same time (the DAG runs
    one at a time); the stream may run beside one.

    A file whose URI was landed with another size or modification time has changed (a log still
    being written, a replaced file): its lines would repeat landed event ids, so it is skipped
    and listed in ``changed_files``. Backfill closed (rotated) files. The same lines under two
    URIs are two files: land an archive from one place.

    :class:`logstream.storage.sinks.BatchTableWriter` is not used because it commits one table per
    batch
    id, while a chunk writes two tables and must record which (file, day) units it holds in the
    same atomic step; the staging, manifest and file naming follow it.

Days touched
    ``days_touched`` lists the days in range that hold events of the request's files, landed by
    this run or an earlier one (from the ledger); ``days_landed`` the days that got new events
    now. Reconciling ``days_touched`` (``late_data_reconciliation`` is idempotent) also covers a
    run retried after an attempt that landed part of its files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from logstream import schemas
from logstream.batch.reconcile import MAX_RANGE_DAYS, parse_day
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.fs import FileStatus, HadoopFS
from logstream.storage.tables import table_path, table_schema
from logstream.transforms import parsing

log = logging.getLogger(__name__)

#: writer name: commit records, staging folders and data file names carry it
WRITER = "backfill"
CHUNK_FILES = 100
CHUNK_BYTES = 256 * 1024 * 1024
#: how each line is classified
NEW_EVENT, NEW_REJECTED, LANDED, OUT_OF_RANGE = "event", "rejected", "landed", "out_of_range"

_GLOB_CHARACTERS = re.compile(r"([{}\[\]*?\\])")
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# -- the request and planning (plain Python) -------------------------------------------------------


@dataclass(frozen=True)
class BackfillRequest:
    """What to land: a path or glob, how to parse it, and optionally which UTC days."""

    path: str
    format: str | None = None  # None: the parse_format setting
    service: str | None = None  # service of access-log lines; None: the default_service setting
    start_date: date | None = None  # first UTC event day landed (inclusive); None: open
    end_date: date | None = None  # last UTC event day landed (inclusive); None: open

    def __post_init__(self) -> None:
        if not self.path.strip():
            raise ConfigError(
                "path is empty; give a file, folder or glob, e.g. s3a://bucket/logs/2015-*.gz"
            )
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ConfigError(
                f"end_date {self.end_date} is before start_date {self.start_date}; swap them"
            )

    @classmethod
    def from_params(
        cls,
        path: str | None,
        format: str | None = None,
        service: str | None = None,
        start_date: str | date | None = None,
        end_date: str | date | None = None,
    ) -> BackfillRequest:
        """From DAG params or CLI arguments: blank strings mean "not given"."""
        return cls(
            path=(path or "").strip(),
            format=_blank_to_none(format),
            service=_blank_to_none(service),
            start_date=_day_or_none(start_date),
            end_date=_day_or_none(end_date),
        )

    def in_range(self, day: date) -> bool:
        return (self.start_date is None or day >= self.start_date) and (
            self.end_date is None or day <= self.end_date
        )

    def in_range_column(self, day: Column) -> Column:
        """:meth:`in_range` as a Spark condition."""
        condition = F.lit(True)
        if self.start_date is not None:
            condition = condition & (day >= F.lit(self.start_date))
        if self.end_date is not None:
            condition = condition & (day <= F.lit(self.end_date))
        return condition

    def parse_options(self, settings: Settings) -> parsing.ParseOptions:
        """The stream's parse options with this request's format and service (ConfigError if
        the format is unknown)."""
        options = parsing.ParseOptions.from_settings(settings)
        return replace(
            options,
            format=self.format or options.format,
            default_service=self.service or options.default_service,
        )


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


def _day_or_none(value: str | date | None) -> date | None:
    if isinstance(value, date):
        return value
    text = _blank_to_none(value)
    return parse_day(text) if text else None


def file_key(file: FileStatus) -> str:
    """A file's identity for the ledger: a digest of its URI, size and modification time."""
    text = f"{file.uri}\n{file.size}\n{file.modified_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_chunks(
    files: Sequence[FileStatus], max_files: int = CHUNK_FILES, max_bytes: int = CHUNK_BYTES
) -> list[list[FileStatus]]:
    """Consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes (a larger file
    is a chunk of its own): each chunk is read, landed and committed as one."""
    chunks: list[list[FileStatus]] = []
    size = 0
    for file in files:
        if not chunks or len(chunks[-1]) >= max_files or size + file.size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(file)
        size += file.size
    return chunks


def reconcile_ranges(
    days: Iterable[date | str], today: date, max_days: int = MAX_RANGE_DAYS
) -> list[tuple[date, date]]:
    """``(start_date, end_date)`` runs of ``late_data_reconciliation`` that cover ``days``.

    One range from the first to the last day when they span at most ``max_days`` (what one run
    accepts); otherwise consecutive ranges of at most ``max_days`` days, each starting at a
    touched day, so long gaps between archives are not reconciled. Days after ``today`` are left
    out: reconciliation refuses them (an archive with future timestamps has a clock problem).
    """
    ordered = sorted({_day_or_none(day) for day in days} - {None})
    ranges: list[tuple[date, date]] = []
    for day in ordered:
        if day > today:
            break
        if ranges and (day - ranges[-1][0]).days < max_days:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


# -- the ledger of landed units (plain Python over the commit records) -----------------------------


@dataclass
class FileRecord:
    """What the committed records say about one file."""

    key: str
    uri: str
    size: int
    modified_ms: int
    lines: int
    days: dict[date, int] = field(default_factory=dict)  # event day landed -> its events
    quarantined: int | None = None  # rejected lines landed; None = not yet
    complete: bool = False  # every line is landed: the file need not be read again


class Ledger:
    """The landed units, from the ``.done`` records (applied in commit order)."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self.files: dict[str, FileRecord] = {}
        self._key_by_uri: dict[str, str] = {}
        for record in sorted(records, key=lambda record: record["commit"]):
            self.add(record)

    def add(self, record: Mapping[str, Any]) -> None:
        for entry in record["files"]:
            current = self.files.get(entry["key"])
            if current is None:
                current = FileRecord(
                    entry["key"], entry["uri"], entry["size"], entry["modified_ms"], entry["lines"]
                )
                self.files[current.key] = current
            current.days.update({date.fromisoformat(d): n for d, n in entry["days"].items()})
            if entry.get("quarantined") is not None:
                current.quarantined = entry["quarantined"]
            current.complete = current.complete or bool(entry["complete"])
            self._key_by_uri[current.uri] = current.key

    def get(self, file: FileStatus) -> FileRecord | None:
        return self.files.get(file_key(file))

    def changed(self, file: FileStatus) -> FileRecord | None:
        """The record of a file landed from the same URI with another size or mtime, if any."""
        key = self._key_by_uri.get(file.uri)
        return self.files[key] if key is not None and key != file_key(file) else None


# -- what a run did --------------------------------------------------------------------------------


@dataclass
class BackfillSummary:
    """Counts of one run. Every line of a file that is not changed is exactly one of: an event
    landed, a line quarantined, skipped as already landed, skipped as out of range."""

    files: int = 0
    files_already_landed: int = 0  # complete before this run: not read again
    changed_files: list[str] = field(default_factory=list)  # landed before as another file
    lines: int = 0
    events_landed: int = 0
    quarantined: int = 0
    skipped_already_landed: int = 0
    skipped_out_of_range: int = 0
    days_touched: set[date] = field(default_factory=set)
    days_landed: set[date] = field(default_factory=set)
    commits: int = 0

    def add_landed_file(self, record: FileRecord, request: BackfillRequest) -> None:
        """A complete file, counted from the ledger without reading it."""
        self.files_already_landed += 1
        self.lines += record.lines
        self.skipped_already_landed += record.quarantined or 0
        for day, events in record.days.items():
            if request.in_range(day):
                self.skipped_already_landed += events
                self.days_touched.add(day)
            else:
                self.skipped_out_of_range += events

    def as_dict(self) -> dict[str, Any]:
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        touched = sorted(self.days_touched)
        values["days_touched"] = [day.isoformat() for day in touched]
        values["days_landed"] = [day.isoformat() for day in sorted(self.days_landed)]
        values["first_day"] = touched[0].isoformat() if touched else None
        values["last_day"] = touched[-1].isoformat() if touched else None
        return values


# -- reading archives as Kafka-shaped records (Spark) ----------------------------------------------


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
    job counts the lines of every block; see "Line numbers" above)."""
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


# -- the commit protocol ---------------------------------------------------------------------------


class _Tables:
    """Paths of the two tables, their staging folders and the commit records."""

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.fs = HadoopFS(spark)
        self.roots = {name: table_path(settings, name) for name in ("events", "quarantine")}
        self.commits = f"{self.roots['events']}/_commits/{WRITER}"

    def staging(self, table: str, commit: str = "") -> str:
        return f"{self.roots[table]}/_staging/{WRITER}" + (f"/{commit}" if commit else "")

    def recover(self) -> Ledger:
        """Roll back interrupted attempts, then read the committed records."""
        names = self.fs.list_names(self.commits)
        done = sorted(name.removesuffix(".done") for name in names if name.endswith(".done"))
        for name in names:
            path = f"{self.commits}/{name}"
            if name.endswith(".manifest") and name.removesuffix(".manifest") not in done:
                for target in json.loads(self.fs.read_text(path) or "[]"):
                    self.fs.delete(target, recursive=False)
                log.warning("rolled back an interrupted backfill commit", extra={"manifest": path})
            if name.endswith((".manifest", ".tmp")):
                self.fs.delete(path, recursive=False)
        for table in self.roots:
            self.fs.delete(self.staging(table))
        return Ledger(json.loads(self.fs.read_text(f"{self.commits}/{c}.done") or "") for c in done)

    def stage(self, table: str, commit: str, frame: DataFrame, partition_by: list[str]) -> None:
        writer = frame.write.mode("overwrite").partitionBy(*partition_by)
        for column in set(schemas.DISTINCT_PER_ROW).intersection(frame.columns):
            writer = writer.option(f"parquet.enable.dictionary#{column}", "false")
        writer.parquet(self.staging(table, commit))

    def commit(self, commit: str, record: dict[str, Any]) -> int:
        """Move the staged files into place and write the commit record; returns the file count."""
        moves = []
        marker = f"/_staging/{WRITER}/{commit}/"
        for table, root in self.roots.items():
            staged = sorted(self.fs.list_files(self.staging(table, commit), ".parquet"))
            for number, source in enumerate(staged):
                relative = source.split(marker, 1)[1]
                folder = relative.rsplit("/", 1)[0] + "/" if "/" in relative else ""
                moves.append((source, f"{root}/{folder}{WRITER}-{commit}-{number:05d}.parquet"))
        manifest = f"{self.commits}/{commit}.manifest"
        self.fs.write_text(manifest, json.dumps([target for _, target in moves]))
        for source, target in moves:
            self.fs.rename(source, target)
        self.fs.write_text(f"{self.commits}/{commit}.done", json.dumps(record, sort_keys=True))
        self.fs.delete(manifest, recursive=False)
        for table in self.roots:
            self.fs.delete(self.staging(table, commit))
        return len(moves)


def _new_commit_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


# -- landing ---------------------------------------------------------------------------------------


def backfill(
    spark: SparkSession,
    settings: Settings,
    request: BackfillRequest,
    chunk_files: int = CHUNK_FILES,
    chunk_bytes: int = CHUNK_BYTES,
) -> BackfillSummary:
    """Land the request's files (see the module docstring); returns what this run did."""
    options = request.parse_options(settings)  # an unknown format fails before any reading
    tables = _Tables(spark, settings)
    files = tables.fs.glob_files(request.path)
    if not files:
        raise ConfigError(
            f"no files match {request.path!r} (names starting with _ or . are skipped); "
            "check the path, or quote the glob so the shell does not expand it"
        )
    ledger = tables.recover()
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
    tables: _Tables,
    request: BackfillRequest,
    options: parsing.ParseOptions,
    chunk: Sequence[FileStatus],
    ledger: Ledger,
    summary: BackfillSummary,
) -> None:
    """Read, parse, classify, stage and commit one chunk; updates ``ledger`` and ``summary``."""
    now = datetime.now(UTC)
    commit = _new_commit_id(now)
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
    """Every file's offsets must be exactly 0..lines-1 (see "Line numbers")."""
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


# -- what the DAG and the job share ----------------------------------------------------------------


def job_arguments(settings: Settings, request: BackfillRequest, summary_file: str) -> list[str]:
    """``jobs/backfill_files.py`` arguments that pin the job to these settings' tables and parse
    settings (a cluster driver does not inherit the submitting worker's environment)."""
    arguments = ["--path", request.path, "--summary", summary_file]
    for flag, value in (
        ("--format", request.format),
        ("--service", request.service),
        ("--start-date", request.start_date),
        ("--end-date", request.end_date),
    ):
        if value is not None:
            arguments += [flag, str(value)]
    settings_fields = {item.name for item in fields(Settings)}
    parse_fields = [item.name for item in fields(parsing.ParseOptions)]
    names = ["data_root", "parse_format", *[n for n in parse_fields if n in settings_fields]]
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, dict | list | tuple):
            value = json.dumps(value, sort_keys=True)
        arguments += ["--set", f"{name}={value}"]
    return arguments


def summary_file(settings: Settings, run_id: str) -> Path:
    """Where a DAG run's job leaves its summary: ``<reports_dir>/backfill/<run id>.json``."""
    folder = settings.reports_dir.removeprefix("file://")
    if "://" in folder:
        raise ConfigError(
            f"reports_dir={settings.reports_dir} is not a local folder; the backfill summary "
            "goes through a folder the Spark driver and the Airflow worker share"
        )
    return Path(folder) / "backfill" / f"{_RUN_ID_UNSAFE.sub('_', run_id)}.json"
