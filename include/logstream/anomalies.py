"""Anomaly rules (SPEC §5.2) over FINAL metric windows, as pure batch transforms.

A streaming frame cannot look back at earlier windows with SQL window functions, so the rules that
need history (z-score, error-rate spike) run on the metric table itself, right after a micro-batch
of newly final windows is committed to it: every earlier window of the service is already there.
The same functions run in tests and in the replay over static tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

ANOMALY_COLUMNS = [
    "anomaly_id",
    "kind",
    "entity",
    "window_start",
    "window_end",
    "observed",
    "threshold",
    "baseline",
    "severity",
    "detail",
    "window_date",
]

#: Every ``anomalies.kind`` the rules of SPEC §5.2 emit (the quality gate checks the column).
KINDS = (
    "response_time_zscore",
    "error_rate_spike",
    "ddos_suspect",
    "suspicious_ip",
    "high_activity_user",
    "late_data_user",
)

ANOMALIES = T.StructType(
    [
        T.StructField("anomaly_id", T.StringType(), False),
        T.StructField("kind", T.StringType(), False),
        T.StructField("entity", T.StringType()),
        T.StructField("window_start", T.TimestampType()),
        T.StructField("window_end", T.TimestampType()),
        T.StructField("observed", T.DoubleType()),
        T.StructField("threshold", T.DoubleType()),
        T.StructField("baseline", T.DoubleType()),
        T.StructField("severity", T.StringType()),
        T.StructField("detail", T.StringType()),
        T.StructField("window_date", T.DateType()),
    ]
)


@dataclass(frozen=True)
class Thresholds:
    """Defaults from SPEC §5.2; every value can be set under ``thresholds`` in the settings."""

    zscore: float = 2.0
    zscore_lookback: int = 10
    zscore_min_history: int = 3
    error_rate_rise_points: float = 10.0
    ddos_min_requests: int = 100
    ddos_max_users: int = 5
    suspicious_ip_min_requests: int = 1000
    suspicious_ip_min_services: int = 5
    high_activity_min_events: int = 50
    late_user_min_events: int = 5

    @classmethod
    def from_mapping(cls, values: dict | None) -> Thresholds:
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown threshold(s) {', '.join(unknown)}; known: {sorted(known)}")
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in values.items()})


def anomaly_rows(
    kind: str,
    entity: Column,
    observed: Column,
    threshold: float,
    severity: Column,
    detail: Column,
    baseline: Column | None = None,
) -> Callable[[DataFrame], DataFrame]:
    """Shape detections into the ``anomalies`` table; the id is a stable dedup key."""

    def transform(df: DataFrame) -> DataFrame:
        return df.select(
            F.sha2(
                F.concat_ws("|", F.lit(kind), entity, F.col("window_start").cast("string")), 256
            ).alias("anomaly_id"),
            F.lit(kind).alias("kind"),
            entity.alias("entity"),
            "window_start",
            "window_end",
            observed.cast("double").alias("observed"),
            F.lit(float(threshold)).alias("threshold"),
            (baseline if baseline is not None else F.lit(None)).cast("double").alias("baseline"),
            severity.alias("severity"),
            detail.alias("detail"),
            F.to_date("window_start").alias("window_date"),
        )

    return transform


def response_time_zscores(thresholds: Thresholds) -> Callable[[DataFrame], DataFrame]:
    """|z| of a service's avg response time against its previous windows (SPEC §5.2.1)."""
    previous = (
        Window.partitionBy("service")
        .orderBy("window_start")
        .rowsBetween(-thresholds.zscore_lookback, -1)
    )

    def transform(response_time: DataFrame) -> DataFrame:
        scored = (
            response_time.where(F.col("avg_response_time").isNotNull())
            .withColumn("baseline_mean", F.avg("avg_response_time").over(previous))
            .withColumn("baseline_std", F.stddev_samp("avg_response_time").over(previous))
            .withColumn("baseline_n", F.count("avg_response_time").over(previous))
            .withColumn(
                "z",
                (F.col("avg_response_time") - F.col("baseline_mean")) / F.col("baseline_std"),
            )
            .where(
                (F.col("baseline_n") >= thresholds.zscore_min_history)
                & (F.col("baseline_std") > 0)
                & (F.abs("z") > thresholds.zscore)
            )
        )
        return scored.transform(
            anomaly_rows(
                "response_time_zscore",
                F.col("service"),
                F.col("avg_response_time"),
                thresholds.zscore,
                F.when(F.abs("z") > 3, "critical").otherwise("warning"),
                F.format_string(
                    "avg %.3f s, z=%.2f against %d previous windows (mean %.3f s)",
                    "avg_response_time",
                    "z",
                    "baseline_n",
                    "baseline_mean",
                ),
                baseline=F.col("baseline_mean"),
            )
        )

    return transform


def error_rate_spikes(thresholds: Thresholds) -> Callable[[DataFrame], DataFrame]:
    """A service's error rate up by more than N points over its previous window (§5.2.2)."""
    by_service = Window.partitionBy("service").orderBy("window_start")

    def transform(error_rate: DataFrame) -> DataFrame:
        spikes = error_rate.withColumn("previous_rate", F.lag("error_rate").over(by_service)).where(
            F.col("error_rate") - F.col("previous_rate") > thresholds.error_rate_rise_points
        )
        rise = F.col("error_rate") - F.col("previous_rate")
        return spikes.transform(
            anomaly_rows(
                "error_rate_spike",
                F.col("service"),
                F.col("error_rate"),
                thresholds.error_rate_rise_points,
                F.when(rise > 25, "critical").otherwise("warning"),
                F.format_string(
                    "error rate %.1f%% after %.1f%% (+%.1f points)",
                    "error_rate",
                    "previous_rate",
                    rise,
                ),
                baseline=F.col("previous_rate"),
            )
        )

    return transform


def ddos_suspects(thresholds: Thresholds) -> Callable[[DataFrame], DataFrame]:
    """An IP with many requests in one minute from few users (SPEC §5.2.3)."""

    def transform(ip_requests: DataFrame) -> DataFrame:
        return ip_requests.where(
            (F.col("request_count") > thresholds.ddos_min_requests)
            & (F.col("unique_users") < thresholds.ddos_max_users)
        ).transform(
            anomaly_rows(
                "ddos_suspect",
                F.col("ip_address"),
                F.col("request_count"),
                thresholds.ddos_min_requests,
                F.lit("critical"),
                F.format_string(
                    "%d requests in 1 min from %d users", "request_count", "unique_users"
                ),
            )
        )

    return transform


def suspicious_ips(thresholds: Thresholds) -> Callable[[DataFrame], DataFrame]:
    """An IP with very many requests across many services in 5 minutes (SPEC §5.2.4)."""

    def transform(ip_patterns: DataFrame) -> DataFrame:
        return ip_patterns.where(
            (F.col("request_count") > thresholds.suspicious_ip_min_requests)
            & (F.size("services_used") > thresholds.suspicious_ip_min_services)
        ).transform(
            anomaly_rows(
                "suspicious_ip",
                F.col("ip_address"),
                F.col("request_count"),
                thresholds.suspicious_ip_min_requests,
                F.lit("warning"),
                F.format_string(
                    "%d requests to %d services in 5 min",
                    "request_count",
                    F.size("services_used"),
                ),
            )
        )

    return transform


def high_activity_users(thresholds: Thresholds) -> Callable[[DataFrame], DataFrame]:
    """A user with many user-events in a 5-minute sliding window (SPEC §5.2.5)."""

    def transform(user_event_counts: DataFrame) -> DataFrame:
        return user_event_counts.where(
            F.col("event_count") > thresholds.high_activity_min_events
        ).transform(
            anomaly_rows(
                "high_activity_user",
                F.col("user_id"),
                F.col("event_count"),
                thresholds.high_activity_min_events,
                F.lit("warning"),
                F.format_string("%d events in 5 min", "event_count"),
            )
        )

    return transform


@dataclass(frozen=True)
class History:
    """What a rule looks back on: per key, the latest ``rows`` earlier windows of the family
    where ``usable`` holds (the rule ignores the others)."""

    rows: Callable[[Thresholds], int]
    usable: Callable[[], Column] = lambda: F.lit(True)


Rule = Callable[[Thresholds], Callable[[DataFrame], DataFrame]]

#: family name -> (rule, the history it needs besides the new windows, or None)
RULES: dict[str, list[tuple[Rule, History | None]]] = {
    "response_time": [
        (
            response_time_zscores,
            History(
                rows=lambda thresholds: thresholds.zscore_lookback,
                usable=lambda: F.col("avg_response_time").isNotNull(),
            ),
        )
    ],
    "error_rate": [(error_rate_spikes, History(rows=lambda thresholds: 1))],
    "ip_requests": [(ddos_suspects, None)],
    "ip_patterns": [(suspicious_ips, None)],
    "user_event_counts": [(high_activity_users, None)],
}
