"""The hourly latency report (SPEC §7.3, §5.1.8, §9): per service and stage, percentiles and levels.

For one UTC hour ``H`` it summarises two sources:

* bronze ``events`` whose event time falls in ``H`` (the ``event_date``/``event_hour`` partition),
  one sample per event and stage:

  - ``event_to_kafka_ms`` = kafka_timestamp - event_time: client and shipper delay (negative when
    a client clock runs ahead of the broker's);
  - ``kafka_to_processed_ms`` = processing_time - kafka_timestamp: the pipeline's own latency;
  - ``end_to_end_ms`` = processing_time - event_time: SPEC §5.1.8's processing latency;

  per service (scope ``service``) and over all services (scope ``all``, service ``*``);
* the streaming queries' progress history (:func:`logstream.stream.status.read_history`) whose
progress
  timestamp falls in ``H``, one sample per micro-batch (scope ``query``, service = query name):
  ``batch_duration_ms`` (durationMs.triggerExecution), ``watermark_delay_ms`` (progress time -
  watermark), ``kafka_lag_records`` (latest - processed offsets) and ``event_time_lag_ms``
  (progress time - newest event time).

Each (hour, scope, service, stage) row holds count, p50/p95/p99, max and avg. Percentiles are
``percentile_approx`` with accuracy :data:`PERCENTILE_ACCURACY` (10 000): the value returned is one
of the samples and its rank is within ``count / 10 000`` of the exact rank ``ceil(p * count)``, so
it is exact below 10 000 samples. Latency stages (:data:`LEVELLED_STAGES`) carry the SPEC §5.1.8
alert level of their average; other stages (watermark delay is minutes by design) carry none.

Outputs (:func:`run_report`): the ``latency_report`` Parquet table, partitioned by ``report_date``,
where a run replaces exactly its hour's rows (re-running an hour gives the same rows, never
duplicates); ``<reports_dir>/latency/<YYYY-MM-DDTHH>.html`` with a summary table and inline SVG
charts, ``latest.html`` (a copy of the newest hour), and ``<YYYY-MM-DDTHH>.json``, the summary the
Airflow DAG reads (:func:`publish_report`) to log the link and deliver WARNING/CRITICAL alerts.
The Spark parts are pure ``DataFrame -> DataFrame`` transforms; the history part is plain Python,
since an hour holds at most a few thousand progress events.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream.alerts import Alert, notify
from logstream.catalog.aggregates import PERCENTILE_ACCURACY
from logstream.catalog.families.processing_latency import LEVEL_THRESHOLDS_MS, alert_level
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.schemas import LATENCY_REPORT
from logstream.storage.fs import HadoopFS
from logstream.storage.tables import read_table, table_path
from logstream.stream.status import read_history

log = logging.getLogger(__name__)

TABLE = "latency_report"
HOUR_FORMAT = "%Y-%m-%dT%H"
PERCENTILES = (0.5, 0.95, 0.99)

#: Event stages: name -> (later timestamp column, earlier timestamp column).
EVENT_STAGES: dict[str, tuple[str, str]] = {
    "event_to_kafka_ms": ("kafka_timestamp", "event_time"),
    "kafka_to_processed_ms": ("processing_time", "kafka_timestamp"),
    "end_to_end_ms": ("processing_time", "event_time"),
}
#: Query stages from the progress history: name -> unit.
QUERY_STAGES: dict[str, str] = {
    "batch_duration_ms": "ms",
    "watermark_delay_ms": "ms",
    "kafka_lag_records": "records",
    "event_time_lag_ms": "ms",
}
STAGE_ORDER = (*EVENT_STAGES, *QUERY_STAGES)
SCOPE_ORDER = ("all", "service", "query")
#: Stages whose average gets a SPEC §5.1.8 alert level.
LEVELLED_STAGES = ("end_to_end_ms", "kafka_to_processed_ms")
ALERTING_LEVELS = ("WARNING", "CRITICAL")

#: Long-format samples: what the progress history turns into before aggregation.
SAMPLES = T.StructType(
    [
        T.StructField("scope", T.StringType(), False),
        T.StructField("service", T.StringType(), False),
        T.StructField("stage", T.StringType(), False),
        T.StructField("unit", T.StringType(), False),
        T.StructField("value", T.DoubleType(), False),
    ]
)

_STAT_NAMES = ("count", "pct", "max", "avg")


# -- hours -------------------------------------------------------------------------------------
def parse_hour(text: str) -> datetime:
    """``2026-11-25T13`` -> the aware UTC datetime 2026-11-25 13:00."""
    try:
        parsed = datetime.strptime(str(text).strip(), HOUR_FORMAT)
    except ValueError:
        raise ConfigError(
            f"hour {text!r} is not a UTC hour written YYYY-MM-DDTHH; pass e.g. 2026-11-25T13"
        ) from None
    return parsed.replace(tzinfo=UTC)


def format_hour(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime(HOUR_FORMAT)


def report_hour_for_run(hour_param: str | None, reference: datetime | None) -> str:
    """The hour a run reports: the ``hour`` param if given, else the full hour before ``reference``.

    ``reference`` is the run's data-interval end (or logical date, or run-after time): a run at
    14:05 reports 13:00-14:00, whether the timetable gives it an interval or just a trigger time.
    """
    if hour_param:
        return format_hour(parse_hour(hour_param))
    if reference is None:
        raise ConfigError(
            "the run has no data interval or logical date to derive the hour from; "
            "trigger it with the param hour=YYYY-MM-DDTHH"
        )
    floor = reference.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return format_hour(floor - timedelta(hours=1))


# -- transforms --------------------------------------------------------------------------------
def events_in_hour(hour: datetime) -> Callable[[DataFrame], DataFrame]:
    """Bronze events whose event time falls in ``[hour, hour + 1h)`` (partition-pruned)."""
    start = hour.astimezone(UTC)
    end = start + timedelta(hours=1)

    def transform(events: DataFrame) -> DataFrame:
        return events.where(
            (F.col("event_date") == F.lit(start.date()))
            & (F.col("event_hour") == F.lit(start.hour))
            & (F.col("event_time") >= F.lit(start))
            & (F.col("event_time") < F.lit(end))
        )

    return transform


def _elapsed_ms(later: str, earlier: str) -> Column:
    """``later - earlier`` in milliseconds, at the timestamps' microsecond resolution."""
    return (F.unix_micros(later) - F.unix_micros(earlier)) / F.lit(1000.0)


def _stats(value: Column) -> dict[str, Column]:
    """The aggregates of one stage; nulls are not samples."""
    return {
        "count": F.count(value),
        "pct": F.percentile_approx(value, list(PERCENTILES), PERCENTILE_ACCURACY),
        "max": F.max(value),
        "avg": F.avg(value),
    }


def _stat_columns(prefix: str = "") -> list[Column]:
    pct = F.col(f"{prefix}pct")
    return [
        F.col(f"{prefix}count").cast("long").alias("count"),
        *[pct[i].cast("double").alias(f"p{round(p * 100)}") for i, p in enumerate(PERCENTILES)],
        F.col(f"{prefix}max").cast("double").alias("max"),
        F.col(f"{prefix}avg").cast("double").alias("avg"),
    ]


def event_stage_summary(events: DataFrame) -> DataFrame:
    """Per service and over all services (``*``): the three event stages' statistics.

    One pass over the events: a rollup on ``service`` aggregates every stage side by side, then
    each group row is unpivoted into one row per stage. Columns: scope, service, stage, unit,
    count, p50, p95, p99, max, avg.
    """
    staged = events.select(
        # bronze guarantees a service; a null one must not pose as the all-services row
        F.coalesce(F.col("service"), F.lit("(unknown)")).alias("service"),
        *[
            _elapsed_ms(later, earlier).alias(stage)
            for stage, (later, earlier) in EVENT_STAGES.items()
        ],
    )
    aggregates = [
        column.alias(f"{stage}__{name}")
        for stage in EVENT_STAGES
        for name, column in _stats(F.col(stage)).items()
    ]
    grouped = staged.rollup("service").agg(F.grouping("service").alias("is_total"), *aggregates)
    per_stage = F.explode(
        F.array(
            *[
                F.struct(
                    F.lit(stage).alias("stage"),
                    *[F.col(f"{stage}__{name}").alias(name) for name in _STAT_NAMES],
                )
                for stage in EVENT_STAGES
            ]
        )
    )
    is_total = F.col("is_total") == 1
    return grouped.select(
        F.when(is_total, "all").otherwise("service").alias("scope"),
        F.when(is_total, "*").otherwise(F.col("service")).alias("service"),
        per_stage.alias("s"),
    ).select(
        "scope",
        "service",
        F.col("s.stage").alias("stage"),
        F.lit("ms").alias("unit"),
        *_stat_columns("s."),
    )


def sample_summary(samples: DataFrame) -> DataFrame:
    """Long-format samples (:data:`SAMPLES`) -> one statistics row per scope/service/stage/unit."""
    stats = _stats(F.col("value"))
    return (
        samples.groupBy("scope", "service", "stage", "unit")
        .agg(*[column.alias(name) for name, column in stats.items()])
        .select("scope", "service", "stage", "unit", *_stat_columns())
    )


def finish_report(hour: datetime) -> Callable[[DataFrame], DataFrame]:
    """Stamp summary rows with their hour, date and alert level, in the table's column order.

    Rows without samples are dropped: an hour with no events yields no event rows.
    """
    start = hour.astimezone(UTC)

    def transform(summary: DataFrame) -> DataFrame:
        return (
            summary.where(F.col("count") > 0)
            .withColumn("report_hour", F.lit(start).cast("timestamp"))
            .withColumn(
                "alert_level",
                F.when(F.col("stage").isin(*LEVELLED_STAGES), alert_level(F.col("avg"))),
            )
            .withColumn("report_date", F.lit(start.date()).cast("date"))
            .select(*LATENCY_REPORT.fieldNames())
        )

    return transform


# -- progress history (plain Python) ----------------------------------------------------------
def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def progress_samples(records: Iterable[dict]) -> list[tuple[str, str, str, str, float]]:
    """History lines (:func:`logstream.stream.status.history_record`) -> :data:`SAMPLES` tuples.

    The watermark delay needs a real watermark: queries without one, and watermarked queries
    before their first data (Spark reports the epoch), give no sample.
    """
    samples = []
    for record in records:
        query = str(record.get("query") or "unnamed")
        stamp = _time(record.get("timestamp"))
        watermark = _time(record.get("watermark"))
        delay = None
        if stamp is not None and watermark is not None and watermark.timestamp() > 0:
            delay = (stamp - watermark) / timedelta(milliseconds=1)
        values = {
            "batch_duration_ms": _number(record.get("batch_duration_ms")),
            "watermark_delay_ms": delay,
            "kafka_lag_records": _number(record.get("kafka_lag")),
            "event_time_lag_ms": _number(record.get("event_time_lag_ms")),
        }
        for stage, value in values.items():
            if value is not None:
                samples.append(("query", query, stage, QUERY_STAGES[stage], value))
    return samples


# -- the report --------------------------------------------------------------------------------
def build_report(spark: SparkSession, settings: Settings, hour: datetime) -> DataFrame:
    """The hour's report rows (a DataFrame in :data:`LATENCY_REPORT` order; nothing written)."""
    start = hour.astimezone(UTC)
    events = read_table(spark, settings, "events").transform(events_in_hour(start))
    history = read_history(settings.status_dir, start, start + timedelta(hours=1))
    samples = spark.createDataFrame(progress_samples(history), SAMPLES)
    return (
        events.transform(event_stage_summary)
        .unionByName(samples.transform(sample_summary))
        .transform(finish_report(start))
    )


def sort_rows(rows: Iterable[dict]) -> list[dict]:
    """Report order: all services first, then services, then queries; stages in pipeline order."""

    def key(row: dict) -> tuple:
        return (
            row["report_hour"],
            SCOPE_ORDER.index(row["scope"]) if row["scope"] in SCOPE_ORDER else len(SCOPE_ORDER),
            row["service"],
            STAGE_ORDER.index(row["stage"]) if row["stage"] in STAGE_ORDER else len(STAGE_ORDER),
            row["stage"],
        )

    return sorted(rows, key=key)


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
    """``report_hour`` as an aware UTC datetime.

    PySpark returns timestamps as naive datetimes in the Python process's local time zone (and
    reads naive ones back the same way), so a naive value is local time.
    """
    hour = row["report_hour"]
    return {**row, "report_hour": hour.astimezone(UTC)}


def report_folder(settings: Settings) -> Path:
    """``<reports_dir>/latency``; the reports are files on the machine that runs the job."""
    folder = settings.reports_dir
    if folder.startswith("file://"):
        folder = folder.removeprefix("file://")
    elif "://" in folder:
        raise ConfigError(
            f"reports_dir={settings.reports_dir!r} must be a local folder (the HTML report is "
            "written with plain file I/O); set LOGSTREAM_REPORTS_DIR to a path"
        )
    return Path(folder).expanduser().resolve() / "latency"


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
    _write_atomically(html_path, render_html(hour, rows, generated_at=generated_at, table=table))
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
    _write_atomically(summary_path, json.dumps(summary, indent=2))
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


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
        _write_atomically(folder / "latest.html", newest.read_text(encoding="utf-8"))


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


# -- HTML --------------------------------------------------------------------------------------
LEVEL_COLOURS = {
    "OK": "#2e7d32",
    "INFO": "#1565c0",
    "WARNING": "#ef6c00",
    "CRITICAL": "#c62828",
    None: "#607d8b",
}
_PCT_OPACITY = {"p50": 0.45, "p95": 0.7, "p99": 1.0}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th { background: #f3f3f3; }
td.text { text-align: left; }
.level { color: #fff; font-weight: 600; text-align: center; }
figure { margin: 1.5rem 0; }
figcaption { font-weight: 600; margin-bottom: 0.5rem; }
.muted { color: #666; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.2rem 0 0.6rem; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if unit == "records" else f"{value:,.1f}"


def render_html(hour: datetime, rows: Sequence[dict], *, generated_at: datetime, table: str) -> str:
    """A self-contained page: alert summary, statistics table and one SVG bar chart per stage.

    Every piece of text from the data (service and query names) is HTML-escaped.
    """
    start = hour.astimezone(UTC)
    title = f"Latency report {format_hour(start)} UTC"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<p class="muted">'
        f"Hour {_esc(start.strftime('%Y-%m-%d %H:00'))}&ndash;"
        f"{_esc((start + timedelta(hours=1)).strftime('%H:00'))} UTC · generated "
        f"{_esc(generated_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S'))} UTC · table "
        f"<code>{_esc(table)}</code> · percentiles by percentile_approx (accuracy "
        f"{PERCENTILE_ACCURACY:,}: rank error at most count/{PERCENTILE_ACCURACY:,}) · levels "
        "(SPEC §5.1.8, on the average of end_to_end_ms and kafka_to_processed_ms): CRITICAL &gt; "
        "2000 ms, WARNING &gt; 1000, INFO &gt; 500, else OK.</p>",
    ]
    if not rows:
        parts.append("<p>No events and no streaming progress in this hour: nothing to report.</p>")
    else:
        parts += _alert_section(rows)
        parts += _summary_table(rows)
        parts += ["<h2>Charts</h2>", _legend()]
        for stage in STAGE_ORDER:
            stage_rows = [row for row in rows if row["stage"] == stage]
            if stage_rows:
                parts.append(
                    f'<figure id="chart-{_esc(stage)}"><figcaption>{_esc(stage)} '
                    f"(p50 / p95 / p99, {_esc(stage_rows[0]['unit'])})</figcaption>"
                    f"{bar_chart_svg(stage_rows)}</figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def _alert_section(rows: Sequence[dict]) -> list[str]:
    alerting = [r for r in rows if r["scope"] == "service" and r["alert_level"] in ALERTING_LEVELS]
    parts = ["<h2>Alerts</h2>"]
    if not alerting:
        return [*parts, "<p>No service above the WARNING level.</p>"]
    parts.append("<ul>")
    for row in alerting:
        parts.append(
            f'<li><span class="level" style="background:{LEVEL_COLOURS[row["alert_level"]]}">'
            f"&nbsp;{_esc(row['alert_level'])}&nbsp;</span> {_esc(row['service'])} "
            f"{_esc(row['stage'])}: avg {_esc(_fmt(row['avg'], 'ms'))} ms, p99 "
            f"{_esc(_fmt(row['p99'], 'ms'))} ms</li>"
        )
    return [*parts, "</ul>"]


def _summary_table(rows: Sequence[dict]) -> list[str]:
    header = ("scope", "service", "stage", "unit", "count", "p50", "p95", "p99", "max", "avg")
    parts = [
        "<h2>Summary</h2>",
        '<table id="summary"><thead><tr>',
        *[f"<th>{_esc(name)}</th>" for name in (*header, "level")],
        "</tr></thead><tbody>",
    ]
    for row in rows:
        level = row.get("alert_level")
        cells = [f'<td class="text">{_esc(row[name])}</td>' for name in header[:4]]
        cells.append(f"<td>{row['count']:,}</td>")
        cells += [f"<td>{_esc(_fmt(row[name], row['unit']))}</td>" for name in header[5:]]
        cells.append(
            f'<td class="level" style="background:{LEVEL_COLOURS[level]}">{_esc(level)}</td>'
            if level
            else "<td>&ndash;</td>"
        )
        parts.append(f"<tr>{''.join(cells)}</tr>")
    return [*parts, "</tbody></table>"]


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _tick_label(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 else f"{value:,.2f}"


def bar_chart_svg(rows: Sequence[dict]) -> str:
    """Grouped bars: one group per service (or query), bars p50/p95/p99 in its level's colour.

    Lighter to darker bars are p50, p95, p99; each bar's tooltip gives its value.
    """
    unit = rows[0]["unit"]
    values = [row[p] for row in rows for p in _PCT_OPACITY if row[p] is not None]
    low, high = min([0.0, *values]), max([0.0, *values])
    step = _nice_step(high - low)
    top = max(step * math.ceil(high / step), step)
    bottom = -step * math.ceil(-low / step) if low < 0 else 0.0
    bar, gap, left, plot_h, pad_top, label_h = 16, 22, 110, 180, 22, 90
    group = bar * len(_PCT_OPACITY) + gap
    width = max(360, left + group * len(rows) + 20)
    height = pad_top + plot_h + label_h

    def y(value: float) -> float:
        return pad_top + plot_h * (top - value) / (top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
        f'<text x="{left - 6}" y="{pad_top - 10}" text-anchor="end" fill="#555">'
        f"{_esc(unit)}</text>",
    ]
    for index in range(round((top - bottom) / step) + 1):
        tick = bottom + index * step
        out.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="{"#999" if abs(tick) < step / 2 else "#e5e5e5"}"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{_esc(_tick_label(tick, step))}</text>"
        )
    for index, row in enumerate(rows):
        x0 = left + index * group + gap / 2
        colour = LEVEL_COLOURS.get(row.get("alert_level"), LEVEL_COLOURS[None])
        level = f" ({row['alert_level']})" if row.get("alert_level") else ""
        service = row["service"]
        for offset, (pct, opacity) in enumerate(_PCT_OPACITY.items()):
            value = row[pct]
            if value is None:
                continue
            y_top, y_bottom = sorted((y(value), y(0.0)))
            out.append(
                f'<rect x="{x0 + offset * bar:.1f}" y="{y_top:.1f}" width="{bar - 2}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{colour}" '
                f'fill-opacity="{opacity}"><title>'
                f"{_esc(f'{service} {pct} = {_fmt(value, unit)} {unit}{level}')}"
                "</title></rect>"
            )
        label = str(row["service"])
        label = label if len(label) <= 18 else label[:17] + "…"
        cx = x0 + bar * len(_PCT_OPACITY) / 2
        ly = pad_top + plot_h + 14
        out.append(
            f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {ly})">{_esc(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    swatches = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{_esc(level or "no level")} '
        for level, colour in LEVEL_COLOURS.items()
    )
    return (
        f'<p class="legend">Bar colour = alert level: {swatches}. In each group, lighter to '
        "darker bars are p50, p95 and p99; hover a bar for its value.</p>"
    )
