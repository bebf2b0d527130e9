"""The reconciliation report of one day: what the replay changed, and how late the events were.

Per family: windows corrected (missing from the streamed table, or different in a metric column;
see :mod:`logstream.transforms.comparisons`) with the streamed and reconciled value of the
family's count column; windows only in the stream; late events per service (lateness above the
smallest log watermark delay) and the maximum lateness. Written as JSON to
``<reports_dir>/reconciliation/<D>.json`` (:func:`report_path`) and as the Parquet table
``reconciliation_report`` (one row per changed window, partitioned by ``report_date``).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import schemas
from logstream.catalog import Family
from logstream.config import Settings
from logstream.storage.bronze import read_bronze
from logstream.storage.fs import Storage
from logstream.storage.tables import table_path
from logstream.timeutil import from_spark, iso_z
from logstream.transforms.comparisons import late_event_stats
from logstream.transforms.windows import DAY, day_start

#: the reconciled tables: ``reconciled/<family>/window_date=D``
RECONCILED = "reconciled"
REPORT_TABLE = "reconciliation_report"
#: ``reconciliation_report``: one row per window whose reconciled row differs from the stream
REPORT_SCHEMA = schemas.RECONCILIATION_REPORT
#: corrected windows listed per family in the JSON report (the Parquet report holds all of them)
MAX_LISTED_WINDOWS = 1_000


def report_path(settings: Settings, day: date) -> str:
    return f"{settings.reports_dir.rstrip('/')}/reconciliation/{day.isoformat()}.json"


def read_report(settings: Settings, day: date) -> dict | None:
    """The JSON report of ``day`` (``reports_dir`` local or shared), or None when none exists."""
    text = Storage(settings).read_text(report_path(settings, day))
    return None if text is None else json.loads(text)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso_z(from_spark(moment))


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


def listed_changes(spark: SparkSession, report_ready: str) -> dict[str, list[dict]]:
    """Up to :data:`MAX_LISTED_WINDOWS` change rows per family of the staged report partition
    ``report_ready``, in report order."""
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


def late_section(
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


def build_report(
    settings: Settings,
    day: date,
    families: list[Family],
    counts: dict[str, dict],
    listed: dict[str, list[dict]],
    late: dict[str, dict],
) -> dict:
    """The JSON report of a day from the per-family change counts
    (:func:`logstream.transforms.comparisons.change_counts`), the listed changes and the late
    section."""
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
