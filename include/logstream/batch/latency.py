"""The hourly latency statistics (SPEC §7.3, §5.1.8): per service and stage, percentiles and levels.

For one UTC hour ``H`` they summarise two sources:

* bronze ``events`` whose event time falls in ``H`` (the ``event_date``/``event_hour`` partition),
  one sample per event and stage:

  - ``event_to_kafka_ms`` = kafka_timestamp - event_time: client and shipper delay (negative when
    a client clock runs ahead of the broker's);
  - ``kafka_to_processed_ms`` = processing_time - kafka_timestamp: the pipeline's own latency;
  - ``end_to_end_ms`` = processing_time - event_time: SPEC §5.1.8's processing latency;

  per service (scope ``service``) and over all services (scope ``all``, service ``*``);
* the streaming queries' progress history (:func:`logstream.stream.history.read_history`) whose
  progress timestamp falls in ``H``, one sample per micro-batch (scope ``query``, service = query
  name): ``batch_duration_ms`` (durationMs.triggerExecution), ``watermark_delay_ms`` (progress
  time - watermark), ``kafka_lag_records`` (latest - processed offsets) and ``event_time_lag_ms``
  (progress time - newest event time).

Each (hour, scope, service, stage) row holds count, p50/p95/p99, max and avg. Percentiles are
``percentile_approx`` with accuracy :data:`PERCENTILE_ACCURACY` (10 000): the value returned is one
of the samples and its rank is within ``count / 10 000`` of the exact rank ``ceil(p * count)``, so
it is exact below 10 000 samples. Latency stages (:data:`LEVELLED_STAGES`) carry the SPEC §5.1.8
alert level of their average; other stages (watermark delay is minutes by design) carry none.

The Spark parts are pure ``DataFrame -> DataFrame`` transforms; the history part is plain Python,
since an hour holds at most a few thousand progress events. :mod:`logstream.reports.latency` writes
and delivers the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream.catalog.aggregates import PERCENTILE_ACCURACY
from logstream.catalog.families.processing_latency import alert_level
from logstream.config import Settings
from logstream.errors import ConfigError
from logstream.schemas import LATENCY_REPORT
from logstream.storage.fs import Storage
from logstream.storage.tables import read_table
from logstream.stream.history import read_history

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
    """History lines (:func:`logstream.stream.history.history_record`) -> :data:`SAMPLES` tuples.

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


# -- the hour's rows --------------------------------------------------------------------------
def build_report(spark: SparkSession, settings: Settings, hour: datetime) -> DataFrame:
    """The hour's report rows (a DataFrame in :data:`LATENCY_REPORT` order; nothing written)."""
    start = hour.astimezone(UTC)
    events = read_table(spark, settings, "events").transform(events_in_hour(start))
    history = read_history(
        settings.status_dir, start, start + timedelta(hours=1), Storage(settings)
    )
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
