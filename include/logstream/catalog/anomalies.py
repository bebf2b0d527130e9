"""Anomaly rules (SPEC §5.2) over FINAL metric windows.

The rules run on the windows a micro-batch has just made final (:mod:`logstream.stream.detect`),
and come in two kinds:

* :class:`FilterRule`: a window is an anomaly on its own values (the DDoS, suspicious-IP and
  high-activity rules). The test is a Spark filter over the new windows, which can be many (one
  per IP and minute); only the matches reach the driver, where they are shaped into rows.
* :class:`HistoryRule`: a window is compared with its key's earlier windows (the response-time
  z-score, the error-rate spike). Their families have one row per service and window, so the new
  windows are collected and the rule runs in plain Python against each key's latest windows,
  which :class:`KeyHistory` keeps between micro-batches (seeded from the committed table when a
  process starts). No Spark job per rule: for a few hundred rows, generating and compiling a
  Spark plan per rule would cost more than the rule.

The late-data user rule (SPEC §5.2.6) counts late events per user and arrival day as they land;
:func:`late_data_user` shapes its row.

Every rule yields :func:`anomaly` rows whose ``anomaly_id`` is a stable dedup key.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from logstream.errors import ConfigError

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
        """Thresholds from the ``thresholds`` setting; ConfigError naming the one that is wrong
        (unknown, not a number, or out of range: counts and look-backs >= 1, the rest >= 0)."""
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"thresholds must be a mapping of name: number, got {values!r}")
        values = dict(values or {})
        defaults = cls()
        known = list(cls.__dataclass_fields__)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"thresholds: unknown threshold(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        typed: dict[str, Any] = {}
        for name, value in values.items():
            kind = type(getattr(defaults, name))
            try:
                number = float(value)
                if kind is int and number != int(number):
                    raise ValueError
                typed[name] = kind(number)
            except (TypeError, ValueError, OverflowError):
                expected = "an integer" if kind is int else "a number"
                raise ConfigError(f"thresholds.{name}={value!r} is not {expected}") from None
            minimum = 1 if kind is int and name != "ddos_max_users" else 0
            if not typed[name] >= minimum or not math.isfinite(typed[name]):
                raise ConfigError(
                    f"thresholds.{name}={value!r} must be a finite number >= {minimum}"
                )
        return cls(**typed)


Row = dict[str, Any]


def stable_id(*parts: str | None) -> str:
    """sha256 of the parts joined with ``|`` (absent parts skipped): an anomaly's dedup key."""
    return hashlib.sha256("|".join(p for p in parts if p is not None).encode()).hexdigest()


def timestamp_text(instant: datetime) -> str:
    """An instant as Spark casts a timestamp to string in UTC (``2026-11-26 10:05:00``, with the
    fraction only when there is one), so ids match those of earlier releases."""
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    text = instant.strftime("%Y-%m-%d %H:%M:%S")
    if instant.microsecond:
        text += f".{instant.microsecond:06d}".rstrip("0")
    return text


def anomaly(
    kind: str,
    entity: str | None,
    window: Row,
    observed: float,
    threshold: float,
    severity: str,
    detail: str,
    baseline: float | None = None,
    period: str | None = None,
) -> Row:
    """One ``anomalies`` row for a detection on ``window`` (a row with UTC ``window_start`` and
    ``window_end``). The ``anomaly_id`` keys on the kind, the entity and ``period`` (by default
    the window start as :func:`timestamp_text`)."""
    start = window["window_start"]
    return {
        "anomaly_id": stable_id(kind, entity, period or timestamp_text(start)),
        "kind": kind,
        "entity": entity,
        "window_start": start,
        "window_end": window["window_end"],
        "observed": float(observed),
        "threshold": float(threshold),
        "baseline": None if baseline is None else float(baseline),
        "severity": severity,
        "detail": detail,
        "window_date": start.date(),
    }


@dataclass(frozen=True)
class FilterRule:
    """A rule that tests each window on its own: ``where`` selects the anomalous windows (a Spark
    filter over a family's new windows), ``shape`` turns one of them (the family's key, window
    bounds and ``columns``) into an :func:`anomaly` row."""

    kind: str
    family: str
    where: Callable[[Thresholds], Column]
    columns: dict[str, Callable[[], Column]]
    shape: Callable[[Thresholds, Row], Row]


@dataclass(frozen=True)
class HistoryRule:
    """A rule that compares each new window of a key with the key's earlier windows.

    ``check(thresholds, window, earlier)`` gets a window and up to ``lookback(thresholds)`` of the
    key's previous windows (oldest first); only windows where ``usable`` holds take part, as the
    window checked or as history. It returns an :func:`anomaly` row or None.
    """

    kind: str
    family: str
    key: str
    columns: tuple[str, ...]
    lookback: Callable[[Thresholds], int]
    check: Callable[[Thresholds, Row, list[Row]], Row | None]
    usable: Callable[[Row], bool] = field(default=lambda row: True)


def _zscore(thresholds: Thresholds, window: Row, earlier: list[Row]) -> Row | None:
    """|z| of a service's avg response time against its previous windows (SPEC §5.2.1)."""
    baseline = [row["avg_response_time"] for row in earlier[-thresholds.zscore_lookback :]]
    if len(baseline) < thresholds.zscore_min_history:
        return None
    stddev = statistics.stdev(baseline)
    if not stddev > 0:
        return None
    mean = math.fsum(baseline) / len(baseline)
    observed = window["avg_response_time"]
    z = (observed - mean) / stddev
    if not abs(z) > thresholds.zscore:
        return None
    return anomaly(
        "response_time_zscore",
        window["service"],
        window,
        observed,
        thresholds.zscore,
        "critical" if abs(z) > 3 else "warning",
        f"avg {observed:.3f} s, z={z:.2f} against {len(baseline)} previous windows "
        f"(mean {mean:.3f} s)",
        baseline=mean,
    )


def _error_rate_spike(thresholds: Thresholds, window: Row, earlier: list[Row]) -> Row | None:
    """A service's error rate up by more than N points over its previous window (§5.2.2)."""
    if not earlier:
        return None
    previous, rate = earlier[-1]["error_rate"], window["error_rate"]
    rise = rate - previous
    if not rise > thresholds.error_rate_rise_points:
        return None
    return anomaly(
        "error_rate_spike",
        window["service"],
        window,
        rate,
        thresholds.error_rate_rise_points,
        "critical" if rise > 25 else "warning",
        f"error rate {rate:.1f}% after {previous:.1f}% (+{rise:.1f} points)",
        baseline=previous,
    )


HISTORY_RULES: tuple[HistoryRule, ...] = (
    HistoryRule(
        "response_time_zscore",
        "response_time",
        "service",
        ("avg_response_time",),
        lookback=lambda thresholds: thresholds.zscore_lookback,
        check=_zscore,
        usable=lambda row: row["avg_response_time"] is not None,
    ),
    HistoryRule(
        "error_rate_spike",
        "error_rate",
        "service",
        ("error_rate",),
        lookback=lambda thresholds: 1,
        check=_error_rate_spike,
    ),
)

FILTER_RULES: tuple[FilterRule, ...] = (
    # SPEC §5.2.3: an IP with many requests in one minute from few users
    FilterRule(
        "ddos_suspect",
        "ip_requests",
        where=lambda t: (
            (F.col("request_count") > t.ddos_min_requests)
            & (F.col("unique_users") < t.ddos_max_users)
        ),
        columns={
            "ip_address": lambda: F.col("ip_address"),
            "request_count": lambda: F.col("request_count"),
            "unique_users": lambda: F.col("unique_users"),
        },
        shape=lambda t, w: anomaly(
            "ddos_suspect",
            w["ip_address"],
            w,
            w["request_count"],
            t.ddos_min_requests,
            "critical",
            f"{w['request_count']} requests in 1 min from {w['unique_users']} users",
        ),
    ),
    # SPEC §5.2.4: an IP with very many requests across many services in 5 minutes
    FilterRule(
        "suspicious_ip",
        "ip_patterns",
        where=lambda t: (
            (F.col("request_count") > t.suspicious_ip_min_requests)
            & (F.size("services_used") > t.suspicious_ip_min_services)
        ),
        columns={
            "ip_address": lambda: F.col("ip_address"),
            "request_count": lambda: F.col("request_count"),
            "services": lambda: F.size("services_used"),
        },
        shape=lambda t, w: anomaly(
            "suspicious_ip",
            w["ip_address"],
            w,
            w["request_count"],
            t.suspicious_ip_min_requests,
            "warning",
            f"{w['request_count']} requests to {w['services']} services in 5 min",
        ),
    ),
    # SPEC §5.2.5: a user with many user-events in a 5-minute sliding window
    FilterRule(
        "high_activity_user",
        "user_event_counts",
        where=lambda t: F.col("event_count") > t.high_activity_min_events,
        columns={
            "user_id": lambda: F.col("user_id"),
            "event_count": lambda: F.col("event_count"),
        },
        shape=lambda t, w: anomaly(
            "high_activity_user",
            w["user_id"],
            w,
            w["event_count"],
            t.high_activity_min_events,
            "warning",
            f"{w['event_count']} events in 5 min",
        ),
    ),
)


def late_data_user(thresholds: Thresholds, user_id: str, day: date, late_events: int) -> Row:
    """SPEC §5.2.6: ``user_id`` sent ``late_events`` late log events that arrived on ``day``
    (UTC), more than ``late_user_min_events``. The window is the arrival day; the id keys on the
    day's ISO date, so each user is reported at most once a day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    limit = thresholds.late_user_min_events
    return anomaly(
        "late_data_user",
        user_id,
        {"window_start": start, "window_end": start + timedelta(days=1)},
        late_events,
        limit,
        "warning",
        f"{late_events} late events today (more than {limit})",
        period=day.isoformat(),
    )


#: The families some rule reads.
RULE_FAMILIES = frozenset(rule.family for rule in (*HISTORY_RULES, *FILTER_RULES))


class KeyHistory:
    """Each key's latest usable windows for one :class:`HistoryRule`, oldest first."""

    def __init__(self, rule: HistoryRule, thresholds: Thresholds) -> None:
        self.rule = rule
        self.thresholds = thresholds
        self.keep = rule.lookback(thresholds)
        self.windows: dict[Any, list[Row]] = {}

    def add(self, rows: Iterable[Row]) -> None:
        """Remember committed windows (a table read when a process starts); a window seen
        again replaces the earlier copy. Kept whole until the next :meth:`detect`: a replayed
        batch finds its own windows among them, and needs the ones before them."""
        self.windows.update(self._merge(rows))

    def detect(self, new_windows: Iterable[Row]) -> list[Row]:
        """The rule's anomalies among ``new_windows``, each against its key's windows before it;
        the new windows then join the history."""
        new = [row for row in new_windows if self.rule.usable(row)]
        merged = self._merge(new)
        found = []
        for row in new:
            series = merged[row[self.rule.key]]
            earlier = [w for w in series if w["window_start"] < row["window_start"]]
            hit = self.rule.check(self.thresholds, row, earlier[-self.keep :])
            if hit is not None:
                found.append(hit)
        for key, series in merged.items():
            self.windows[key] = series[-self.keep :]
        return found

    def _merge(self, rows: Iterable[Row]) -> dict[Any, list[Row]]:
        """The windows of the keys in ``rows``, the history's and ``rows`` merged, in window
        order."""
        touched: dict[Any, dict[datetime, Row]] = {}
        for row in rows:
            if not self.rule.usable(row):
                continue
            key = row[self.rule.key]
            if key not in touched:
                touched[key] = {w["window_start"]: w for w in self.windows.get(key, [])}
            touched[key][row["window_start"]] = row
        return {key: [by_start[s] for s in sorted(by_start)] for key, by_start in touched.items()}
