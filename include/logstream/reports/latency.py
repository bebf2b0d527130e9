"""The hourly latency report's outputs (SPEC §7.3, §9): written by the Spark job, delivered by the
Airflow DAG.

:func:`run_report` computes the hour's rows (:mod:`logstream.batch.latency`) and writes:

* the ``latency_report`` Parquet table, partitioned by ``report_date``, where a run replaces
  exactly its hour's rows (re-running an hour gives the same rows, never duplicates);
* ``<reports_dir>/latency/<YYYY-MM-DDTHH>.html`` (``reports_dir`` local or shared: hdfs://,
  s3a://) (:mod:`logstream.reports.latency_html`) and
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
from logstream.storage.fs import HadoopFS, Storage, join, local_path, parse_location
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


def report_folder(settings: Settings) -> Path | str:
    """``<reports_dir>/latency``: a local folder as a resolved Path, a shared one (``hdfs://``,
    ``s3a://``) as its URI; either is read and written through :class:`Storage`."""
    local = local_path(settings.reports_dir)
    if local is None:
        parse_location(settings.reports_dir)  # a scheme Python cannot reach is a ConfigError
        return join(settings.reports_dir, "latency")
    return local.expanduser().resolve() / "latency"


@dataclass(frozen=True)
class ReportResult:
    hour: str
    html_path: Path | str
    summary_path: Path | str
    table: str
    rows: list[dict] = field(default_factory=list)
    html_url: str = ""


def run_report(spark: SparkSession, settings: Settings, hour: datetime) -> ReportResult:
    """Build the hour's report and write the table, the HTML page and the JSON summary."""
    hour_text = format_hour(hour)
    folder = report_folder(settings)
    storage = Storage(settings)
    rows = sort_rows(
        _utc_hour(row.asDict()) for row in build_report(spark, settings, hour).collect()
    )
    table = write_report_table(spark, settings, hour, rows)
    generated_at = datetime.now(UTC)
    html_path = _in(folder, f"{hour_text}.html")
    html = render_html(hour, rows, generated_at=generated_at, table=table)
    storage.write_text(html_path, html)
    _refresh_latest(storage, folder)
    summary_path = _in(folder, f"{hour_text}.json")
    html_url = storage.uri(html_path)
    summary = {
        "hour": hour_text,
        "html": str(html_path),
        "html_url": html_url,
        "table": table,
        "generated_at": generated_at.isoformat(),
        "rows": [_jsonable(row) for row in rows],
    }
    storage.write_text(summary_path, page_safe_json.dumps(summary))
    log.info(
        "latency report written",
        extra={"hour": hour_text, "rows": len(rows), "html": str(html_path), "table": table},
    )
    return ReportResult(hour_text, html_path, summary_path, table, rows, html_url)


def _in(folder: Path | str, name: str) -> Path | str:
    """``name`` in ``folder``, keeping its kind (a local Path, a remote URI)."""
    return folder / name if isinstance(folder, Path) else join(folder, name)


def _jsonable(row: dict) -> dict:
    return {
        key: value.isoformat() if isinstance(value, datetime | date) else value
        for key, value in row.items()
    }


def _refresh_latest(storage: Storage, folder: Path | str) -> None:
    """``latest.html`` = the newest hour's page (a backfill of an old hour does not replace it)."""
    hours = []
    for name in storage.list_names(folder):
        if not name.endswith(".html"):
            continue
        try:
            hours.append((parse_hour(name.removesuffix(".html")), name))
        except ConfigError:
            continue
    if hours:
        newest = storage.read_text(_in(folder, max(hours)[1]))
        if newest is not None:
            storage.write_text(_in(folder, "latest.html"), newest)


# -- delivery (Airflow side: plain Python, no Spark) -------------------------------------------


def publish_report(settings: Settings, hour: str, links: dict | None = None) -> dict:
    """Read the hour's JSON summary and deliver WARNING/CRITICAL per-service rows as alerts.

    Each alert has the stable dedup key ``latency:<service>:<stage>:<hour>``, so a re-run of the
    hour does not page twice (the alert path deduplicates by key). Returns what the DAG logs.
    """
    hour_text = format_hour(parse_hour(hour))
    summary_path = _in(report_folder(settings), f"{hour_text}.json")
    text = Storage(settings).read_text(summary_path)
    if text is None:
        raise ConfigError(
            f"no latency report summary at {summary_path}; run jobs/latency_report.py "
            f"--hour {hour_text} first (the DAG's build_report task)"
        )
    summary = json.loads(text)
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
