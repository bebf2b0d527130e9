"""Late-data reconciliation (SPEC §6): recompute one UTC day of every metric table from bronze.

The stream emits each window once, when its watermark passes, and leaves out events that arrive
later than the watermark delay; those events are still in bronze (``events``, ``user_events``).
The nightly replay recomputes every window that STARTS on day D (``window_date == D``) with the
same transforms the stream uses (:func:`logstream.transforms.aggregate.aggregate_batch` +
:func:`logstream.transforms.aggregate.project`) over every valid event, and publishes the result as
``reconciled/<family>/window_date=D``. It also reports what changed against the streamed tables.

Which events a day needs
    Windows start at multiples of the slide (epoch-aligned, like Spark's ``window``). The windows
    starting on D cover event times from the first start on D to the last start on D plus the
    window length. Nothing before D is needed (a window starting on D holds no earlier event).
    Windows that start before midnight and end after it (every sliding window family: the
    1-minute/30-second user activity runs until D+1 00:00:30) need the first minutes of D+1, so
    the first hour partition(s) of D+1 are read too. :func:`event_span` and
    :func:`bronze_partitions` do this arithmetic; only those bronze partitions are read.

Deterministic output
    Floating-point sums (averages, stddev) and ``percentile_approx`` depend on the order in which
    rows and partial aggregates are combined. Before aggregating, rows are hash-partitioned so that
    every window's rows sit in ONE partition (by the group keys, or by the tumbling window's index
    for the global family) and sorted by (event time, event id) inside it. Each window is then
    aggregated from one deterministic row sequence, whatever the cluster does; the output of a
    family-day is one file, sorted by (window_start, keys). Re-running a day gives byte-identical
    files with identical names.

Atomic publication
    Each family-day is written to ``<data_root>/reconciled/_staging/<D>/`` (readers skip
    ``_``-prefixed folders), its one file renamed to a fixed name, then swapped in: the old
    partition folder is moved aside, the new one renamed into place, the old one deleted. A reader
    sees the old day, the new day, or (for the instant between two renames) no day; never half
    of one. A run cleans up what an interrupted run of the same day left in staging, so runs of
    different days may overlap but two runs of the SAME day must not (the DAG runs one at a time).

Change report
    Per family: windows corrected (missing from the streamed table, or different in a metric
    column: exact for integers/strings/arrays, 1e-9 relative for doubles) with the streamed and
    reconciled value of the family's count column; windows only in the stream (should never
    happen; reported, not fixed); late events per service (lateness above the smallest log
    watermark delay) and the maximum lateness. Written as JSON to
    ``<reports_dir>/reconciliation/<D>.json`` and as the Parquet table ``reconciliation_report``
    (one row per changed window, partitioned by ``report_date``). Percentiles come from
    ``percentile_approx`` on both sides: exact below ~5,000 values per window, so a window above
    that may show as ``different`` in its percentile columns alone (approximation, not late data).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import catalog, schemas
from logstream.catalog import Family
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.storage.bronze import read_bronze
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_partitions, table_path, table_schema
from logstream.timeutil import interval_ms
from logstream.transforms import aggregate
from logstream.transforms.windows import DAY, day_start, event_span

log = logging.getLogger(__name__)


RECONCILED = "reconciled"
REPORT_TABLE = "reconciliation_report"
#: relative tolerance when comparing double metrics of a streamed and a reconciled window
FLOAT_TOLERANCE = 1e-9
#: corrected windows listed per family in the JSON report (the Parquet report holds all of them)
MAX_LISTED_WINDOWS = 1_000
#: the longest date range one request may reconcile (the DAG maps one task per day)
MAX_RANGE_DAYS = 92

#: ``reconciliation_report``: one row per window whose reconciled row differs from the stream
REPORT_SCHEMA = schemas.RECONCILIATION_REPORT

CHANGES = ("missing_in_stream", "different", "only_in_stream")


# -- day arithmetic (plain Python: what to read, which days to run) -----------------------------


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
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware.astimezone(UTC) - DAY).date()


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


# -- transforms ---------------------------------------------------------------------------------


def _is_tumbling(family: Family) -> bool:
    return family.slide is None or interval_ms(family.slide) == interval_ms(family.window)


def arrange_for_aggregation(
    group: Sequence[Family], partitions: int
) -> Callable[[DataFrame], DataFrame]:
    """Put every window's rows in one partition, in (event time, event id) order.

    This is what makes the floating-point aggregates and percentiles of a re-run identical: each
    window is aggregated from one fixed row sequence, never from partial results merged in the
    order a shuffle happens to deliver them. Keyed families partition by their keys; the global
    family by its tumbling window's index; a global sliding family needs a single partition.
    """
    head = group[0]

    def transform(events: DataFrame) -> DataFrame:
        if head.keys:
            spread = events.repartition(partitions, *head.keys)
        elif _is_tumbling(head):
            size_us = interval_ms(head.window) * 1_000
            index = F.floor(F.unix_micros(head.time_column) / F.lit(size_us))
            spread = events.repartition(partitions, index)
        else:
            spread = events.repartition(1)
        return spread.sortWithinPartitions(head.time_column, "event_id")

    return transform


def windows_of_day(family: Family, day: date) -> Callable[[DataFrame], DataFrame]:
    """A group's aggregates -> the family's rows for windows starting on ``day``, as ONE
    partition sorted by (window_start, keys) (the aggregation itself stays parallel; only its
    small output is gathered)."""

    def transform(aggregates: DataFrame) -> DataFrame:
        return (
            aggregates.transform(aggregate.project(family))
            .where(F.col("window_date") == F.lit(day))
            .repartition(1)
            .sortWithinPartitions("window_start", *family.keys)
        )

    return transform


def _differs(name: str, data_type: T.DataType, tolerance: float) -> Column:
    got, was = F.col(f"r.{name}"), F.col(f"s.{name}")
    if isinstance(data_type, T.DoubleType | T.FloatType):
        close = F.abs(got - was) <= F.greatest(F.abs(got), F.abs(was)) * F.lit(tolerance)
        same = (got.isNull() & was.isNull()) | (got == was) | close
        return ~F.coalesce(same, F.lit(False))
    return ~got.eqNullSafe(was)


def window_changes(
    family: Family,
    streamed: DataFrame,
    day: date,
    tolerance: float = FLOAT_TOLERANCE,
) -> Callable[[DataFrame], DataFrame]:
    """Reconciled rows of a family-day -> one row per window of either side, compared.

    Both frames have the family's table columns. Each side's metrics are packed in a struct, the
    two sides are unioned and grouped by (window_start, keys): one shuffle, no join. The result
    has :data:`REPORT_SCHEMA`'s columns (``change`` null when the window agrees) plus
    ``_in_reconciled`` and ``_stream_rows``, so one frame gives both the change rows and the
    per-family counts (:func:`change_counts`).
    """

    def transform(reconciled: DataFrame) -> DataFrame:
        ignored = {"window_start", "window_end", "window_date", *family.keys}
        metric_fields = [f for f in reconciled.schema.fields if f.name not in ignored]
        packed_type = T.StructType([T.StructField(f.name, f.dataType) for f in metric_fields])
        packed = F.struct(*[F.col(f.name) for f in metric_fields])
        nothing = F.lit(None).cast(packed_type)
        window_and_keys = ["window_start", "window_end", *family.keys]
        sides = reconciled.select(
            *window_and_keys, packed.alias("r"), nothing.alias("s")
        ).unionByName(streamed.select(*window_and_keys, nothing.alias("r"), packed.alias("s")))
        paired = sides.groupBy("window_start", *family.keys).agg(
            F.max("window_end").alias("window_end"),
            F.max("r").alias("r"),  # one row per side and window; max() is deterministic
            F.max("s").alias("s"),
            F.count("s").alias("_stream_rows"),
        )
        counted = family.count_column
        in_reconciled = F.col("r").isNotNull()
        in_stream = F.col("s").isNotNull()
        changed = F.array_compact(
            F.array(
                *[
                    F.when(_differs(f.name, f.dataType, tolerance), F.lit(f.name))
                    for f in metric_fields
                ]
            )
        )
        entity = (
            F.concat_ws("|", *[F.col(k).cast("string") for k in family.keys])
            if family.keys
            else F.lit(None).cast("string")
        )
        return paired.select(
            F.lit(family.name).alias("family"),
            F.when(~in_stream, F.lit("missing_in_stream"))
            .when(~in_reconciled, F.lit("only_in_stream"))
            .when(F.size(changed) > 0, F.lit("different"))
            .alias("change"),
            "window_start",
            "window_end",
            entity.alias("entity"),
            F.lit(counted).alias("count_column"),
            F.col(f"s.{counted}").cast("long").alias("streamed_count"),
            F.col(f"r.{counted}").cast("long").alias("reconciled_count"),
            F.when(in_reconciled & in_stream, changed).alias("changed_columns"),
            F.lit(day).alias("report_date"),
            in_reconciled.alias("_in_reconciled"),
            "_stream_rows",
        )

    return transform


def change_counts(comparison: DataFrame) -> DataFrame:
    """Compared windows -> per family: windows, streamed rows, changes by kind, count delta."""
    return comparison.groupBy("family").agg(
        F.count(F.when(F.col("_in_reconciled"), 1)).alias("windows"),
        F.sum("_stream_rows").alias("streamed_windows"),
        *[F.count(F.when(F.col("change") == change, 1)).alias(change) for change in CHANGES],
        F.sum(
            F.coalesce("reconciled_count", F.lit(0)) - F.coalesce("streamed_count", F.lit(0))
        ).alias("count_delta"),
    )


def late_event_stats(threshold_ms: int, by: Sequence[str] = ()) -> Callable[[DataFrame], DataFrame]:
    """Bronze rows -> events, late events (``lateness_ms > threshold_ms``) and max lateness."""

    def transform(events: DataFrame) -> DataFrame:
        return events.groupBy(*by).agg(
            F.count(F.lit(1)).alias("events"),
            F.count(F.when(F.col("lateness_ms") > threshold_ms, 1)).alias("late_events"),
            F.max("lateness_ms").alias("max_lateness_ms"),
        )

    return transform


# -- staging and atomic publication -------------------------------------------------------------


class DayPublisher:
    """Stages each table's day partition as ONE fixed-name file and swaps it in atomically."""

    def __init__(self, spark: SparkSession, settings: Settings, day: date) -> None:
        self.fs = HadoopFS(spark)
        self.settings = settings
        self.staging = f"{table_path(settings, RECONCILED)}/_staging/{day.isoformat()}"

    def reset(self) -> None:
        """Remove what an interrupted run of this day left behind."""
        self.fs.delete(self.staging)

    def _slot(self, table: str) -> str:
        return table.replace("/", "__")

    def stage(self, frame: DataFrame, table: str, partition: str) -> str:
        """Write ``frame`` (one partition) and return the staged ``<partition>`` folder."""
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


# -- reading ------------------------------------------------------------------------------------


# -- the run ------------------------------------------------------------------------------------


def report_path(settings: Settings, day: date) -> str:
    return f"{settings.reports_dir.rstrip('/')}/reconciliation/{day.isoformat()}.json"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    # Spark collects timestamps as naive local times; astimezone() reads those as local too
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_duration_ms(ms: int | None) -> str:
    """3723000 -> '1h02m03s'; None -> 'n/a'."""
    if ms is None:
        return "n/a"
    seconds = max(0, math.floor(ms / 1000))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s" if seconds else f"{ms}ms"


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
    """Recompute, publish and report one UTC day; returns the report (also written as JSON)."""
    families = families or catalog.configured_families(settings.windows)
    partition = f"window_date={day.isoformat()}"
    publisher = DayPublisher(spark, settings, day)
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
    listed = _listed_changes(spark, report_ready)

    # 3. late events of the day (bronze, by event date)
    late = _late_section(spark, settings, families, day)

    # 4. publish: every family-day, then the report partition, then the JSON report
    for item in staged:
        publisher.publish(item.ready, f"{RECONCILED}/{item.family.name}", partition)
    publisher.publish(report_ready, REPORT_TABLE, report_partition)
    publisher.reset()

    report = _report(settings, day, families, counts, listed, late)
    HadoopFS(spark).write_text(report_path(settings, day), json.dumps(report, indent=2) + "\n")
    log.info("reconciled", extra={"day": str(day), "summary": report["summary"]})
    return report


def _union(frames: list[DataFrame]) -> DataFrame:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _listed_changes(spark: SparkSession, report_ready: str) -> dict[str, list[dict]]:
    """Up to :data:`MAX_LISTED_WINDOWS` change rows per family, in report order."""
    fields = [f for f in REPORT_SCHEMA.fields if f.name != "report_date"]
    rank = F.row_number().over(Window.partitionBy("family").orderBy("window_start", "entity"))
    rows = (
        spark.read.schema(T.StructType(fields))
        .parquet(report_ready)
        .withColumn("_rank", rank)
        .where(F.col("_rank") <= MAX_LISTED_WINDOWS)
        .orderBy("family", "window_start", "entity", "change")
        .collect()
    )
    listed: dict[str, list[dict]] = {}
    for row in rows:
        listed.setdefault(row["family"], []).append(
            {
                "change": row["change"],
                "window_start": _iso(row["window_start"]),
                "window_end": _iso(row["window_end"]),
                "entity": row["entity"],
                "streamed_count": row["streamed_count"],
                "reconciled_count": row["reconciled_count"],
                "changed_columns": row["changed_columns"],
            }
        )
    return listed


def _late_section(
    spark: SparkSession, settings: Settings, families: list[Family], day: date
) -> dict:
    """Events of ``day`` (by event date) per source: late counts and maximum lateness."""
    section: dict[str, dict] = {}
    for source, by in (("events", ("service",)), ("user_events", ())):
        delays = [f.delay_ms for f in families if f.source == source]
        if not delays:
            continue
        threshold = min(delays)
        span = (day_start(day), day_start(day + DAY))
        rows = (
            read_bronze(spark, settings, source, span)
            .transform(late_event_stats(threshold, by))
            .collect()
        )
        maxima = [row["max_lateness_ms"] for row in rows if row["max_lateness_ms"] is not None]
        entry = {
            "threshold_ms": threshold,
            "events": sum(row["events"] for row in rows),
            "late_events": sum(row["late_events"] for row in rows),
            "max_lateness_ms": max(maxima) if maxima else None,
        }
        if by:
            entry["per_service"] = {
                row["service"]: {
                    "events": row["events"],
                    "late_events": row["late_events"],
                    "max_lateness_ms": row["max_lateness_ms"],
                }
                for row in sorted(rows, key=lambda row: str(row["service"]))
            }
        section[source] = entry
    return section


def _report(
    settings: Settings,
    day: date,
    families: list[Family],
    counts: dict[str, dict],
    listed: dict[str, list[dict]],
    late: dict[str, dict],
) -> dict:
    per_family = {}
    for family in families:
        numbers = counts.get(family.name, {})
        corrected = listed.get(family.name, [])
        windows_corrected = numbers.get("missing_in_stream", 0) + numbers.get("different", 0)
        per_family[family.name] = {
            "table": table_path(settings, f"{RECONCILED}/{family.name}"),
            "windows": numbers.get("windows", 0),
            "streamed_windows": numbers.get("streamed_windows", 0),
            "windows_corrected": windows_corrected,
            "missing_in_stream": numbers.get("missing_in_stream", 0),
            "different": numbers.get("different", 0),
            "only_in_stream": numbers.get("only_in_stream", 0),
            "count_delta": numbers.get("count_delta") or 0,
            "changes": corrected,
            "changes_truncated": len(corrected)
            < windows_corrected + numbers.get("only_in_stream", 0),
        }
    totals = {
        "windows": sum(item["windows"] for item in per_family.values()),
        "windows_corrected": sum(item["windows_corrected"] for item in per_family.values()),
        "only_in_stream": sum(item["only_in_stream"] for item in per_family.values()),
    }
    logs_late = late.get("events", {})
    summary = (
        f"reconciled {day}: {len(families)} tables, {totals['windows']} windows, "
        f"{totals['windows_corrected']} corrected, {totals['only_in_stream']} only in stream; "
        f"{logs_late.get('late_events', 0)} late log events "
        f"(max lateness {format_duration_ms(logs_late.get('max_lateness_ms'))}); "
        f"report {report_path(settings, day)}"
    )
    return {
        "report_date": day.isoformat(),
        "summary": summary,
        "totals": totals,
        "families": per_family,
        "late": late,
        "tables": {
            "reconciled": table_path(settings, RECONCILED),
            "report": table_path(settings, REPORT_TABLE),
        },
    }


def read_report(settings: Settings, day: date) -> dict | None:
    """The JSON report of ``day`` if ``reports_dir`` is a local folder and it exists."""
    location = report_path(settings, day)
    if "://" in location and not location.startswith("file://"):
        return None
    path = Path(location.removeprefix("file://"))
    return json.loads(path.read_text()) if path.exists() else None


def job_arguments(settings: Settings, day: date) -> list[str]:
    """``jobs/reconcile_day.py`` arguments that pin the job to these settings' tables, reports and
    windows (a cluster driver does not inherit the submitting worker's environment)."""
    arguments = ["--date", day.isoformat()]
    arguments += ["--set", f"data_root={settings.data_root}"]
    arguments += ["--set", f"reports_dir={settings.reports_dir}"]
    if settings.windows:
        arguments += ["--set", f"windows={json.dumps(settings.windows, sort_keys=True)}"]
    return arguments


def run_summary(settings: Settings, day: date) -> dict:
    """What a DAG task returns for a reconciled day: the report's headline numbers."""
    report = read_report(settings, day)
    if report is None:
        return {"day": day.isoformat(), "report": report_path(settings, day)}
    logs_late = report["late"].get("events", {})
    return {
        "day": day.isoformat(),
        "summary": report["summary"],
        **report["totals"],
        "late_events": logs_late.get("late_events", 0),
        "max_lateness_ms": logs_late.get("max_lateness_ms"),
        "report": report_path(settings, day),
    }
