"""Late-data reconciliation (SPEC §6): recompute one UTC day of every metric table from bronze.

The stream emits each window once, when its watermark passes, and leaves out events that arrive
later than the watermark delay; those events are still in bronze (``events``, ``user_events``).
The nightly replay recomputes every window that STARTS on day D (``window_date == D``) with the
same transforms the stream uses (:func:`logstream.transforms.aggregate.aggregate_batch` +
:func:`logstream.transforms.aggregate.project`) over every valid event, and publishes the result as
``reconciled/<family>/window_date=D``. It also reports what changed against the streamed tables.

:func:`reconcile_day` runs one day in four steps, each explained where it lives:

1. read the bronze partitions the day's windows need
   (:func:`logstream.transforms.windows.event_span`, :func:`logstream.storage.bronze.read_bronze`),
   aggregate them deterministically (:func:`logstream.transforms.windows.arrange_for_aggregation`)
   and stage each family-day as one sorted file (:class:`logstream.storage.commits.DayPublisher`):
   re-running a day gives byte-identical files with identical names;
2. compare with the streamed tables (:mod:`logstream.transforms.comparisons`) and stage the
   change rows;
3. count the day's late events;
4. swap every staged partition in atomically, then write the JSON report
   (:mod:`logstream.batch.reconcile_report`).

A day whose windows need no bronze file (:func:`has_bronze`: a listing of those partition
folders, no Spark job) is a no-op: nothing is published or written, and the outcome says
"no bronze data for <day>: nothing to reconcile". The DAG checks before it submits the job (a local
``data_root``); the job checks again (any root).

Runs of different days may overlap; two runs of the SAME day must not (the DAG runs one at a
time). :func:`days_to_reconcile` decides which days one request runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import catalog
from logstream.batch.reconcile_report import (
    RECONCILED,
    REPORT_SCHEMA,
    REPORT_TABLE,
    build_report,
    late_section,
    listed_changes,
    read_report,
    report_path,
)
from logstream.catalog import Family
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.reports import page_safe_json
from logstream.storage.bronze import bronze_partitions, read_bronze
from logstream.storage.commits import DayPublisher
from logstream.storage.fs import HadoopFS, Storage, parse_location
from logstream.storage.tables import read_partitions, table_path, table_schema
from logstream.timeutil import as_utc
from logstream.transforms import aggregate
from logstream.transforms.comparisons import change_counts, window_changes
from logstream.transforms.windows import DAY, arrange_for_aggregation, event_span, windows_of_day

log = logging.getLogger(__name__)

#: the longest date range one request may reconcile (the DAG maps one task per day)
MAX_RANGE_DAYS = 92


# -- which days a request runs (plain Python) ------------------------------------------------------


def parse_day(text: str) -> date:
    """``YYYY-MM-DD`` -> date, with a message that says what is expected."""
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ConfigError(
            f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-25"
        ) from None


def _as_day(value: str | date | None) -> date | None:
    if isinstance(value, date):
        return value
    if value is None or not str(value).strip():
        return None
    return parse_day(str(value))


def previous_utc_day(moment: datetime) -> date:
    """The UTC day before ``moment`` (a naive moment is taken as UTC): what a nightly run does."""
    return (as_utc(moment) - DAY).date()


def days_to_reconcile(
    start: str | date | None,
    end: str | date | None,
    default_day: date,
    today: date,
    max_days: int = MAX_RANGE_DAYS,
) -> list[date]:
    """The days one request reconciles, oldest first.

    No dates: ``default_day`` (the nightly case). One of the two: that day. Both: every day from
    ``start`` to ``end`` inclusive. Days after ``today`` (UTC) have no data yet and are refused,
    as are ranges that run backwards or span more than ``max_days``.
    """
    first, last = _as_day(start), _as_day(end)
    if first is None and last is None:
        first = last = default_day
    first = first or last
    last = last or first
    assert first is not None and last is not None  # for the type checker
    if last < first:
        raise ConfigError(f"end_date {last} is before start_date {first}; swap them")
    if last > today:
        raise ConfigError(
            f"{last} is after today ({today} UTC): there is nothing to reconcile yet; "
            "pick days up to today"
        )
    count = (last - first).days + 1
    if count > max_days:
        raise ConfigError(
            f"{first}..{last} is {count} days; reconcile at most {max_days} per run "
            "(trigger several runs with shorter ranges)"
        )
    return [first + DAY * offset for offset in range(count)]


# -- whether a day has anything to reconcile (a listing, no Spark job) ---------------------------


def bronze_folders(settings: Settings, day: date, families: list[Family]) -> list[str]:
    """The bronze partition folders that hold events the windows starting on ``day`` need (the
    day, and the first hour of the next for windows that end after midnight)."""
    folders = []
    for group in aggregate.group_families(families):
        span = event_span(group, day)
        if span is None:
            continue
        root = table_path(settings, group[0].source)
        for event_date, hour in bronze_partitions(span):
            folder = f"{root}/event_date={event_date.isoformat()}"
            folders.append(folder if hour is None else f"{folder}/event_hour={hour}")
    return list(dict.fromkeys(folders))


def has_bronze(
    settings: Settings,
    day: date,
    families: list[Family] | None = None,
    fs: HadoopFS | None = None,
) -> bool | None:
    """Whether any bronze Parquet file lies in :func:`bronze_folders` (only those are listed).

    With ``fs`` (a Spark session's) any ``data_root`` is listed. Without it, a local, ``hdfs://``
    or ``s3a://`` one is listed from Python (:class:`Storage`), and one of another scheme gives
    None: it cannot be told without Hadoop (submit the job, which checks again with its
    session). Hidden and ``_``-prefixed files and folders (staging, markers) do not count, as
    readers skip them.
    """
    families = families or catalog.configured_families(settings.windows)
    folders = bronze_folders(settings, day, families)
    if fs is not None:
        listed = [path for folder in folders for path in fs.list_files(folder, ".parquet")]
        return any(_visible(path) for path in listed)
    try:
        parse_location(settings.data_root)
    except ConfigError:
        return None
    storage = Storage(settings)
    return any(
        _visible(path) for folder in folders for path in storage.list_files(folder, ".parquet")
    )


def _visible(path: str) -> bool:
    """No part below the ``event_date=`` folder is hidden."""
    parts = path.split("/")
    starts = [n for n, part in enumerate(parts) if part.startswith("event_date=")]
    below = parts[starts[-1] + 1 :] if starts else parts[-1:]
    return not any(part.startswith(("_", ".")) for part in below)


def nothing_to_reconcile(day: date) -> str:
    """The outcome of a day without bronze data, as the task, the job and the log say it."""
    return f"no bronze data for {day.isoformat()}: nothing to reconcile"


def skipped_summary(day: date) -> dict:
    """What a DAG task returns for a day without bronze data (no job was submitted):
    ``reconciled`` is False, so ``publish`` leaves the day out of the asset event."""
    return {
        "day": day.isoformat(),
        "reconciled": False,
        "summary": nothing_to_reconcile(day),
        "windows": 0,
        "windows_corrected": 0,
        "only_in_stream": 0,
        "late_events": 0,
        "max_lateness_ms": None,
    }


# -- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Staged:
    family: Family
    ready: str


def reconcile_day(
    spark: SparkSession,
    settings: Settings,
    day: date,
    families: list[Family] | None = None,
) -> dict:
    """Recompute, publish and report one UTC day; returns the report (also written as JSON).

    A day without bronze data (:func:`has_bronze`) runs no Spark job and writes nothing; the
    returned report then has ``reconciled`` False and zero totals.
    """
    families = families or catalog.configured_families(settings.windows)
    if not has_bronze(settings, day, families, HadoopFS(spark)):
        log.info("nothing to reconcile", extra={"day": str(day), "reason": "no bronze data"})
        return {
            "report_date": day.isoformat(),
            "reconciled": False,
            "summary": nothing_to_reconcile(day),
            "totals": {"windows": 0, "windows_corrected": 0, "only_in_stream": 0},
        }
    partition = f"window_date={day.isoformat()}"
    publisher = DayPublisher(spark, settings, day, RECONCILED)
    publisher.reset()
    log.info("reconciling", extra={"day": str(day), "families": len(families)})

    # 1. recompute every family-day from bronze and stage it (one sorted file each)
    staged: list[_Staged] = []
    for group in aggregate.group_families(families):
        head = group[0]
        span = event_span(group, day)
        events = (
            read_bronze(spark, settings, head.source, span)
            if span
            else spark.createDataFrame([], table_schema(spark, head.source))
        )
        aggregates = events.transform(
            arrange_for_aggregation(group, settings.shuffle_partitions)
        ).transform(aggregate.aggregate_batch(group))
        if len(group) > 1:
            aggregates = aggregates.persist()  # computed once, read by every family of the group
        try:
            for family in group:
                rows = aggregates.transform(windows_of_day(family, day)).drop("window_date")
                ready = publisher.stage(rows, f"{RECONCILED}/{family.name}", partition)
                staged.append(_Staged(family, ready))
        finally:
            aggregates.unpersist()

    # 2. compare with the streamed tables: one comparison frame for all families
    comparisons = []
    for item in staged:
        table = f"{RECONCILED}/{item.family.name}"
        schema = table_schema(spark, table)
        reconciled = (
            spark.read.schema(T.StructType([f for f in schema.fields if f.name != "window_date"]))
            .parquet(item.ready)
            .withColumn("window_date", F.lit(day))
        )
        streamed = read_partitions(spark, settings, item.family.name, [partition])
        comparisons.append(reconciled.transform(window_changes(item.family, streamed, day)))
    comparison = _union(comparisons).persist()
    report_partition = f"report_date={day.isoformat()}"
    try:
        counts = {row["family"]: row.asDict() for row in change_counts(comparison).collect()}
        changes = (
            comparison.where(F.col("change").isNotNull())
            .select(*[name for name in REPORT_SCHEMA.fieldNames() if name != "report_date"])
            .coalesce(1)
            .sortWithinPartitions("family", "window_start", "entity", "change")
        )
        report_ready = publisher.stage(changes, REPORT_TABLE, report_partition)
    finally:
        comparison.unpersist()
    listed = listed_changes(spark, report_ready)

    # 3. late events of the day (bronze, by event date)
    late = late_section(spark, settings, families, day)

    # 4. publish: every family-day, then the report partition, then the JSON report
    for item in staged:
        publisher.publish(item.ready, f"{RECONCILED}/{item.family.name}", partition)
    publisher.publish(report_ready, REPORT_TABLE, report_partition)
    publisher.reset()

    report = build_report(settings, day, families, counts, listed, late)
    HadoopFS(spark).write_text(report_path(settings, day), page_safe_json.dumps(report) + "\n")
    log.info("reconciled", extra={"day": str(day), "summary": report["summary"]})
    return report


def _union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


# -- what the DAG and the job share ----------------------------------------------------------------


def job_arguments(day: date) -> list[str]:
    """``jobs/reconcile_day.py``'s own arguments (the settings are added by
    :func:`logstream.orchestration.submit_job`)."""
    return ["--date", day.isoformat()]


def run_summary(settings: Settings, day: date) -> dict:
    """What a DAG task returns for a reconciled day: the report's headline numbers."""
    report = read_report(settings, day)
    if report is None:
        return {"day": day.isoformat(), "reconciled": True, "report": report_path(settings, day)}
    logs_late = report["late"].get("events", {})
    return {
        "day": day.isoformat(),
        "reconciled": True,
        "summary": report["summary"],
        **report["totals"],
        "late_events": logs_late.get("late_events", 0),
        "max_lateness_ms": logs_late.get("max_lateness_ms"),
        "report": report_path(settings, day),
    }
