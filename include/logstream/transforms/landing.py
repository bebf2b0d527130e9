"""What one micro-batch of parsed records lands (SPEC §3, §4): bronze rows, quarantine rows and
late rows, and the batch's statistics.

The ingestion handler (:mod:`logstream.stream.batch`) applies these to the parsed frame of each
micro-batch; each is a plain DataFrame transform, so it runs the same on a static frame.

*Lateness* is a property of the data as ingested: every valid event is stamped with
``lateness_ms`` = the event-time high-water mark before its batch minus its event time (null in
the first batch of a checkpoint). An event is *late* for a metric family when its lateness
exceeds the family's watermark delay; ``late_events`` holds the events late for the smallest
delay, each with the families it is late for (``late_for``). So the rows a metric leaves out are
exactly the rows ``late_events`` holds for that delay, whatever the micro-batch boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream import schemas
from logstream.transforms import parsing
from logstream.transforms.finalize import within_delay

#: (family name, watermark delay in ms), as :func:`late_rows` takes them.
Delays = Sequence[tuple[str, int]]


def processing_time(batch_time_ms: int) -> Column:
    """The micro-batch's processing time as a timestamp column."""
    return F.timestamp_millis(F.lit(batch_time_ms))


def bronze_rows(
    events_schema: T.StructType, batch_time_ms: int, high_water_ms: int | None
) -> Callable[[DataFrame], DataFrame]:
    """The valid events of a parsed batch as bronze rows (``events_schema``): stamped with the
    batch's processing time, their lateness behind ``high_water_ms`` and their partitions."""
    lateness = (
        F.lit(high_water_ms) - F.unix_millis("event_time")
        if high_water_ms is not None
        else F.lit(None)
    )

    stamped = {
        "processing_time": processing_time(batch_time_ms),
        "lateness_ms": lateness.cast("long"),
        "event_date": F.to_date("event_time"),
        "event_hour": F.hour("event_time"),
    }
    # one projection (each withColumn would analyze the whole parse plan again)
    columns = [
        stamped[name].alias(name) if name in stamped else F.col(name)
        for name in events_schema.fieldNames()
    ]
    return lambda parsed: parsed.transform(parsing.valid_events).select(*columns)


def quarantine_rows(batch_time_ms: int) -> Callable[[DataFrame], DataFrame]:
    """The rejected records of a parsed batch as ``quarantine`` rows, partitioned by the day of
    their Kafka timestamp."""

    stamped = {
        "processing_time": processing_time(batch_time_ms),
        "quarantine_date": F.to_date("kafka_timestamp"),
    }
    columns = [
        stamped[name].alias(name) if name in stamped else F.col(name)
        for name in schemas.QUARANTINE.fieldNames()
    ]
    return lambda parsed: parsed.transform(parsing.rejected_records).select(*columns)


def late_threshold_ms(delays: Delays) -> int:
    """The smallest watermark delay: rows later than it are late events (0 without families)."""
    return min((delay for _, delay in delays), default=0)


def is_late(delays: Delays) -> Column:
    """A bronze row later than the smallest delay (null when its lateness is unknown)."""
    return F.col("lateness_ms") > late_threshold_ms(delays)


def late_rows(delays: Delays) -> Callable[[DataFrame], DataFrame]:
    """The late bronze rows, each with ``late_for``: the families (smallest delay first) whose
    delay it is later than."""
    ordered = sorted(delays, key=lambda item: item[1])
    late_for = F.array_compact(
        F.array(*[F.when(F.col("lateness_ms") > delay, F.lit(name)) for name, delay in ordered])
    )
    return lambda bronze: bronze.where(is_late(delays)).withColumn("late_for", late_for)


def batch_stats(delays: Delays) -> Callable[[DataFrame], DataFrame]:
    """One row of statistics over a batch's bronze rows (any frame with ``event_time`` and
    ``lateness_ms``): ``max_ms`` (the largest event time), ``min_on_time_ms`` (the smallest
    event time that is not late), ``min_usable_ms`` (the smallest one within the largest delay,
    that some metric can still use), ``valid`` (rows) and ``late`` (late rows); for log events
    also ``errors`` (status code 400 or above) and ``response_time_sum_s`` /
    ``response_time_count`` (the traffic totals the status file and Prometheus export)."""
    late = is_late(delays)
    usable = within_delay(max((delay for _, delay in delays), default=0))
    event_ms = F.unix_millis("event_time")

    def transform(bronze: DataFrame) -> DataFrame:
        traffic = []
        if "status_code" in bronze.columns:
            traffic.append(F.count(F.when(F.col("status_code") >= 400, 1)).alias("errors"))
        if "response_time" in bronze.columns:
            traffic += [
                F.coalesce(F.sum("response_time"), F.lit(0.0)).alias("response_time_sum_s"),
                F.count("response_time").alias("response_time_count"),
            ]
        return bronze.agg(
            F.max(event_ms).alias("max_ms"),
            F.min(F.when(~F.coalesce(late, F.lit(False)), event_ms)).alias("min_on_time_ms"),
            F.min(F.when(usable, event_ms)).alias("min_usable_ms"),
            F.count(F.lit(1)).alias("valid"),
            F.count(F.when(late, 1)).alias("late"),
            *traffic,
        )

    return transform


#: the traffic totals :func:`batch_stats` adds for log events (summed into the query's totals),
#: and the bronze columns they read
TRAFFIC_TOTALS = ("errors", "response_time_sum_s", "response_time_count")
TRAFFIC_COLUMNS = ("status_code", "response_time")


def late_user_counts(late: DataFrame) -> DataFrame:
    """Late events per arrival day (UTC date of ``processing_time``, as text) and ``user_id``:
    the input of the late-data user rule (SPEC §5.2.6)."""
    return (
        late.where(F.col("user_id").isNotNull())
        .groupBy(F.to_date("processing_time").cast("string").alias("day"), "user_id")
        .count()
    )
