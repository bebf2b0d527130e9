"""The hourly latency report's outputs (SPEC §7.3, §9): written by the Spark job, delivered by the
Airflow DAG.

:func:`run_report` computes the hour's rows (:mod:`logstream.batch.latency`) and writes:

* the ``latency_report`` Parquet table, partitioned by ``report_date``, where a run replaces
  exactly its hour's rows (re-running an hour gives the same rows, never duplicates);
* ``<reports_dir>/latency/<YYYY-MM-DDTHH>.html`` (:mod:`logstream.reports.latency_html`) and
  ``latest.html``, a copy of the newest hour;
* ``<YYYY-MM-DDTHH>.json``, the summary the DAG reads back (:func:`publish_report`) to log the
  link and deliver WARNING/CRITICAL alerts (safe to embed in a page as it is:
  :mod:`logstream.reports.page_safe_json`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from logstream.alerts import Alert, notify
from logstream.batch.latency import (
    ALERTING_LEVELS,
    build_report,
    format_hour,
    parse_hour,
    report_hour_for_run,
    sort_rows,
)
from logstream.catalog.families.processing_latency import LEVEL_THRESHOLDS_MS
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.reports import page_safe_json
from logstream.reports.latency_html import render_html
from logstream.schemas import LATENCY_REPORT
from logstream.storage.fs import HadoopFS, local_path, write_local_text
from logstream.storage.tables import table_path
from logstream.timeutil import from_spark

__all__ = [
    "TABLE",
    "ReportResult",
    "parse_hour",
    "publish_report",
    "report_folder",
    "report_hour_for_run",
    "run_report",
    "write_report_table",
]

log = logging.getLogger(__name__)

TABLE = "latency_report"


# -- the table and the files (Spark job) -------------------------------------------------------


def write_report_table(
    spark: SparkSession, settings: Settings, hour: datetime, rows: list[dict]
) -> str:
    """Replace the hour's rows in the ``latency_report`` table, keeping the day's other hours.

    The day's partition is small (hours x services x stages): it is read to the driver, the hour's
    rows are swapped, and the partition is overwritten as one file with dynamic partition
    overwrite, so readers see the old partition or the new one. Returns the table path.
    """
    start = hour.astimezone(UTC)
    day = start.date()
    path = table_path(settings, TABLE)
    partition = f"{path}/report_date={day.isoformat()}"
    fs = HadoopFS(spark)
    kept: list[dict] = []
    if fs.list_files(partition, ".parquet"):
        kept = [
            row.asDict()
            for row in spark.read.schema(LATENCY_REPORT)
            .parquet(path)
            .where((F.col("report_date") == F.lit(day)) & (F.col("report_hour") != F.lit(start)))
            .collect()
        ]
    combined = sort_rows(_utc_hour(row) for row in [*kept, *rows])
    if not combined:
        fs.delete(partition)
        return path
    frame = spark.createDataFrame(
        [tuple(row[name] for name in LATENCY_REPORT.fieldNames()) for row in combined],
        LATENCY_REPORT,
    )
    (
        frame.coalesce(1)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("report_date")
        .parquet(path)
    )
    return path


def _utc_hour(row: dict) -> dict:
    """``report_hour`` as an aware UTC datetime."""
    return {**row, "report_hour": from_spark(row["report_hour"])}


def report_folder(settings: Settings) -> Path:
    """``<reports_dir>/latency``; the reports are files on the machine that runs the job."""
    folder = local_path(settings.reports_dir)
    if folder is None:
        raise ConfigError(
            f"reports_dir={settings.reports_dir!r} must be a local folder (the HTML report is "
            "written with plain file I/O); set LOGSTREAM_REPORTS_DIR to a path"
        )
    return folder.expanduser().resolve() / "latency"


@dataclass(frozen=True)
class ReportResult:
    hour: str
    html_path: Path
    summary_path: Path
    table: str
    rows: list[dict] = field(default_factory=list)

    @property
    def html_url(self) -> str:
        return self.html_path.as_uri()


def run_report(spark: SparkSession, settings: Settings, hour: datetime) -> ReportResult:
    """Build the hour's report and write the table, the HTML page and the JSON summary."""
    hour_text = format_hour(hour)
    folder = report_folder(settings)
    rows = sort_rows(
        _utc_hour(row.asDict()) for row in build_report(spark, settings, hour).collect()
    )
    table = write_report_table(spark, settings, hour, rows)
    generated_at = datetime.now(UTC)
    html_path = folder / f"{hour_text}.html"
    write_local_text(html_path, render_html(hour, rows, generated_at=generated_at, table=table))
    _refresh_latest(folder)
    summary_path = folder / f"{hour_text}.json"
    summary = {
        "hour": hour_text,
        "html": str(html_path),
        "html_url": html_path.as_uri(),
        "table": table,
        "generated_at": generated_at.isoformat(),
        "rows": [_jsonable(row) for row in rows],
    }
    write_local_text(summary_path, page_safe_json.dumps(summary))
    log.info(
        "latency report written",
        extra={"hour": hour_text, "rows": len(rows), "html": str(html_path), "table": table},
    )
    return ReportResult(hour_text, html_path, summary_path, table, rows)


def _jsonable(row: dict) -> dict:
    return {
        key: value.isoformat() if isinstance(value, datetime | date) else value
        for key, value in row.items()
    }


def _refresh_latest(folder: Path) -> None:
    """``latest.html`` = the newest hour's page (a backfill of an old hour does not replace it)."""
    hours = []
    for page in folder.glob("*.html"):
        try:
            hours.append((parse_hour(page.stem), page))
        except ConfigError:
            continue
    if hours:
        newest = max(hours)[1]
        write_local_text(folder / "latest.html", newest.read_text(encoding="utf-8"))


# -- delivery (Airflow side: plain Python, no Spark) -------------------------------------------


def publish_report(settings: Settings, hour: str, links: dict | None = None) -> dict:
    """Read the hour's JSON summary and deliver WARNING/CRITICAL per-service rows as alerts.

    Each alert has the stable dedup key ``latency:<service>:<stage>:<hour>``, so a re-run of the
    hour does not page twice (the alert path deduplicates by key). Returns what the DAG logs.
    """
    hour_text = format_hour(parse_hour(hour))
    summary_path = report_folder(settings) / f"{hour_text}.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no latency report summary at {summary_path}; run jobs/latency_report.py "
            f"--hour {hour_text} first (the DAG's build_report task)"
        ) from None
    alerts = [
        _latency_alert(row, hour_text, summary, links or {})
        for row in summary["rows"]
        if row["scope"] == "service" and row.get("alert_level") in ALERTING_LEVELS
    ]
    for alert in alerts:
        notify(alert, settings.alert_sink)
    levels: dict[str, int] = {}
    for row in summary["rows"]:
        if row.get("alert_level"):
            levels[row["alert_level"]] = levels.get(row["alert_level"], 0) + 1
    return {
        "hour": hour_text,
        "report": summary["html_url"],
        "table": summary["table"],
        "rows": len(summary["rows"]),
        "levels": levels,
        "alerts": [alert.dedup_key for alert in alerts],
    }


def _latency_alert(row: dict, hour: str, summary: dict, links: dict) -> Alert:
    level = row["alert_level"]
    return Alert(
        dedup_key=f"latency:{row['service']}:{row['stage']}:{hour}",
        kind="latency",
        severity=level.lower(),
        summary=(
            f"{row['service']} {row['stage']} averaged {row['avg']:.0f} ms in {hour} UTC "
            f"({level}; p99 {row['p99']:.0f} ms over {row['count']} events)"
        ),
        details={
            "hour": hour,
            "service": row["service"],
            "stage": row["stage"],
            "level": level,
            **{name: row[name] for name in ("count", "p50", "p95", "p99", "max", "avg")},
            "thresholds_ms": dict(LEVEL_THRESHOLDS_MS),
        },
        links={"report": summary["html_url"], "table": summary["table"], **links},
    )
