"""The independent oracle: expected metric tables (SPEC §5.1, §5.3) and anomalies (§5.2).

Plain Python over a list of event dicts (the generator's ``truth`` dicts, or hand-written ones),
written from the specification without looking at the Spark code, so end-to-end tests can compare
the pipeline's output with it. Every function is pure; windows, slides and thresholds are
parameters defaulting to the SPEC values.

Semantics (the product's definition):

- Times are aware UTC datetimes. Tumbling windows of ``size`` seconds are aligned to the epoch:
  an event at ``t`` belongs to ``[floor(t / size) * size, + size)``. Sliding windows of size ``S``
  and slide ``D`` start at every ``k * D``; an event at ``t`` belongs to each window with
  ``start <= t < start + S``.
- A window exists iff at least one event (of its key) falls into it. Group keys that are null
  (``ip_address`` for IP patterns, ``user_id`` for user activity) produce no rows.
- Finality: a streaming (append-mode) query emits a window iff ``window_end <= final_watermark``,
  where ``final_watermark = max event_time the stream saw - watermark delay`` (see ``final`` and
  ``final_watermark``). Late events are the caller's business: pass the non-late events to compare
  with the streamed tables and all valid events to compare with the reconciled ones.
- Averages, minima, maxima, stddevs and percentiles are over non-null values only; counts of
  requests count every event. ``stddev`` is the sample standard deviation (None below 2 values).
  Percentiles ``pNN`` are the exact value at rank ``ceil(p * n)`` of the sorted non-null values
  (what Spark's ``percentile_approx`` returns when it is exact); the sorted values are returned
  in ``response_times`` so a test can accept an approximate answer with ``percentile_rank_ok``.
- Errors are ``status_code >= 400`` (null is not an error); success is ``status_code == 200``;
  a fast request has a non-null ``response_time <= 1.0`` s.

Rows are dicts: key columns first, then ``window_start``, ``window_end``, then the metrics; lists
are sorted by key then window start.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Event = dict[str, Any]
Row = dict[str, Any]

#: Default watermark delays per family (SPEC §5), in seconds.
WATERMARK_DELAY_S = {
    "response_time": 300,
    "error_rate": 300,
    "ip_patterns": 600,
    "sla": 300,
    "user_activity": 600,
    "service_popularity": 300,
    "system_health": 300,
    "processing_latency": 600,
    "user_event_activity": 300,
    "action_metrics": 300,
}


# -- windows ----------------------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the oracle works in aware UTC datetimes")
    return (moment - EPOCH) // _MICROSECOND


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def window_starts(moment: datetime, size_s: int, slide_s: int | None = None) -> list[datetime]:
    """Starts of every window containing ``moment``: one if tumbling, ceil(S/D)-ish if sliding."""
    t = _micros(moment)
    size = size_s * 1_000_000
    slide = (slide_s or size_s) * 1_000_000
    last = t // slide
    first = (t - size) // slide + 1  # smallest k with k * slide > t - size
    return [_at(k * slide) for k in range(first, last + 1)]


def _windowed(
    events: Iterable[Event],
    key: Callable[[Event], Hashable],
    size_s: int,
    slide_s: int | None = None,
) -> dict[tuple[Hashable, datetime], list[Event]]:
    """Events grouped by (key, window start); events whose key is None are left out."""
    groups: dict[tuple[Hashable, datetime], list[Event]] = defaultdict(list)
    for event in events:
        group_key = key(event)
        if group_key is None:
            continue
        for start in window_starts(event["event_time"], size_s, slide_s):
            groups[(group_key, start)].append(event)
    return groups


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is None, value)


def _rows(
    groups: dict[tuple[Hashable, datetime], list[Event]],
    key_name: str | None,
    size_s: int,
    metrics: Callable[[list[Event]], Row],
) -> list[Row]:
    rows = []
    for (group_key, start), members in sorted(
        groups.items(), key=lambda item: (_sort_key(item[0][0]), item[0][1])
    ):
        row: Row = {} if key_name is None else {key_name: group_key}
        row["window_start"] = start
        row["window_end"] = start + timedelta(seconds=size_s)
        row.update(metrics(members))
        rows.append(row)
    return rows


def final_watermark(events: Iterable[Event], delay_s: int) -> datetime:
    """The watermark after the stream saw ``events``: max event_time - delay."""
    return max(event["event_time"] for event in events) - timedelta(seconds=delay_s)


def final(rows: Iterable[Row], watermark: datetime) -> list[Row]:
    """The rows an append-mode query has emitted once its watermark is ``watermark``."""
    return [row for row in rows if row["window_end"] <= watermark]


# -- statistics -------------------------------------------------------------------------------


def _values(events: Iterable[Event], name: str) -> list[float]:
    return [event[name] for event in events if event.get(name) is not None]


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _stddev(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def exact_percentile(values_sorted: Sequence[float], p: float) -> float | None:
    """The value at rank ceil(p * n) (1-based) of sorted values; None if there are none."""
    if not values_sorted:
        return None
    rank = max(1, math.ceil(p * len(values_sorted)))
    return values_sorted[rank - 1]


def percentile_rank_ok(
    values_sorted: Sequence[float], p: float, got: float | None, accuracy: int = 10_000
) -> bool:
    """Whether ``got`` is an acceptable ``percentile_approx(p, accuracy)`` answer.

    Spark returns one of the values whose rank is within ``n / accuracy`` of the exact rank
    ``ceil(p * n)``; ties share every rank they occupy.
    """
    if not values_sorted:
        return got is None
    if got is None:
        return False
    lo = bisect_left(values_sorted, got)  # got occupies ranks lo+1 .. hi (1-based)
    hi = bisect_right(values_sorted, got)
    if lo == hi:
        return False  # not one of the values
    target = max(1, math.ceil(p * len(values_sorted)))
    tolerance = len(values_sorted) / accuracy
    nearest = min(max(target, lo + 1), hi)
    return abs(nearest - target) <= tolerance


def _distinct(events: Iterable[Event], name: str) -> set[Any]:
    return {event[name] for event in events if event.get(name) is not None}


def _errors(events: Iterable[Event]) -> int:
    return sum(1 for event in events if (event.get("status_code") or 0) >= 400)


# -- §5.1 log metrics -------------------------------------------------------------------------


def response_time_per_service(events: Iterable[Event], window: int = 60) -> list[Row]:
    """1. Per service: request_count, avg/min/max/stddev and p50/p95/p99 of response_time."""

    def metrics(members: list[Event]) -> Row:
        values = sorted(_values(members, "response_time"))
        return {
            "request_count": len(members),
            "avg_response_time": _mean(values),
            "min_response_time": values[0] if values else None,
            "max_response_time": values[-1] if values else None,
            "stddev_response_time": _stddev(values),
            "p50_response_time": exact_percentile(values, 0.50),
            "p95_response_time": exact_percentile(values, 0.95),
            "p99_response_time": exact_percentile(values, 0.99),
            "response_times": values,
        }

    return _rows(_windowed(events, lambda e: e["service"], window), "service", window, metrics)


def error_rate_per_service(events: Iterable[Event], window: int = 60) -> list[Row]:
    """2. Per service: total_requests, error_count (status >= 400), error_rate in percent."""

    def metrics(members: list[Event]) -> Row:
        errors = _errors(members)
        return {
            "total_requests": len(members),
            "error_count": errors,
            "error_rate": errors / len(members) * 100,
        }

    return _rows(_windowed(events, lambda e: e["service"], window), "service", window, metrics)


def ip_patterns(events: Iterable[Event], window: int = 300) -> list[Row]:
    """3. Per non-null ip_address: request_count, unique_users, services_used (sorted)."""

    def metrics(members: list[Event]) -> Row:
        return {
            "request_count": len(members),
            "unique_users": len(_distinct(members, "user_id")),
            "services_used": sorted(_distinct(members, "service")),
        }

    return _rows(
        _windowed(events, lambda e: e.get("ip_address"), window), "ip_address", window, metrics
    )


def sla_per_service(events: Iterable[Event], window: int = 60) -> list[Row]:
    """4. Per service: totals, fast (<= 1.0 s) and successful (200) requests, and their shares."""

    def metrics(members: list[Event]) -> Row:
        total = len(members)
        fast = sum(
            1
            for event in members
            if event.get("response_time") is not None and event["response_time"] <= 1.0
        )
        successful = sum(1 for event in members if event.get("status_code") == 200)
        return {
            "total_requests": total,
            "fast_requests": fast,
            "successful_requests": successful,
            "availability_pct": successful / total * 100,
            "performance_pct": fast / total * 100,
        }

    return _rows(_windowed(events, lambda e: e["service"], window), "service", window, metrics)


def user_activity(events: Iterable[Event], window: int = 300) -> list[Row]:
    """5. Per non-null user_id: activity_count, distinct_services, avg_response_time."""

    def metrics(members: list[Event]) -> Row:
        return {
            "activity_count": len(members),
            "distinct_services": len(_distinct(members, "service")),
            "avg_response_time": _mean(_values(members, "response_time")),
        }

    return _rows(_windowed(events, lambda e: e.get("user_id"), window), "user_id", window, metrics)


def service_popularity(events: Iterable[Event], window: int = 60) -> list[Row]:
    """6. Per service: request_count, unique_users (distinct non-null user_id)."""

    def metrics(members: list[Event]) -> Row:
        return {
            "request_count": len(members),
            "unique_users": len(_distinct(members, "user_id")),
        }

    return _rows(_windowed(events, lambda e: e["service"], window), "service", window, metrics)


def health_score(error_rate: float) -> int:
    """100 below 1 % errors, 80 below 5 %, 60 below 10 %, else 40."""
    if error_rate < 1:
        return 100
    if error_rate < 5:
        return 80
    if error_rate < 10:
        return 60
    return 40


def system_health(events: Iterable[Event], window: int = 60) -> list[Row]:
    """7. Global: totals, active services/users, avg response time, errors, health_score."""

    def metrics(members: list[Event]) -> Row:
        errors = _errors(members)
        error_rate = errors / len(members) * 100
        return {
            "total_requests": len(members),
            "active_services": len(_distinct(members, "service")),
            "active_users": len(_distinct(members, "user_id")),
            "avg_response_time": _mean(_values(members, "response_time")),
            "error_count": errors,
            "error_rate": error_rate,
            "health_score": health_score(error_rate),
        }

    return _rows(_windowed(events, lambda e: "all", window), None, window, metrics)


def latency_alert_level(avg_latency_ms: float) -> str:
    """CRITICAL above 2000 ms, WARNING above 1000, INFO above 500, else OK."""
    if avg_latency_ms > 2000:
        return "CRITICAL"
    if avg_latency_ms > 1000:
        return "WARNING"
    if avg_latency_ms > 500:
        return "INFO"
    return "OK"


def processing_latency(events: Iterable[Event], window: int = 60) -> list[Row]:
    """8. Per service: latency_ms = processing_time - event_time (each event has both)."""

    def metrics(members: list[Event]) -> Row:
        latencies = [
            (event["processing_time"] - event["event_time"]) / timedelta(milliseconds=1)
            for event in members
        ]
        average = math.fsum(latencies) / len(latencies)
        return {
            "record_count": len(members),
            "avg_latency_ms": average,
            "max_latency_ms": max(latencies),
            "min_latency_ms": min(latencies),
            "alert_level": latency_alert_level(average),
        }

    return _rows(_windowed(events, lambda e: e["service"], window), "service", window, metrics)


# -- §5.3 user events ---------------------------------------------------------------------------


def user_event_activity(events: Iterable[Event], window: int = 60, slide: int = 30) -> list[Row]:
    """Per user_id, sliding: total_events, unique_actions, total_value, actions in time order."""

    def metrics(members: list[Event]) -> Row:
        values = _values(members, "value")
        ordered = sorted(members, key=lambda e: (e["event_time"], e.get("action") or ""))
        return {
            "total_events": len(members),
            "unique_actions": len(_distinct(members, "action")),
            "total_value": math.fsum(values) if values else None,
            "actions": [event.get("action") for event in ordered],
        }

    return _rows(
        _windowed(events, lambda e: e.get("user_id"), window, slide), "user_id", window, metrics
    )


def action_metrics(events: Iterable[Event], window: int = 120, slide: int = 60) -> list[Row]:
    """Per action, sliding: action_count, unique_users, avg/max/min value."""

    def metrics(members: list[Event]) -> Row:
        values = _values(members, "value")
        return {
            "action_count": len(members),
            "unique_users": len(_distinct(members, "user_id")),
            "avg_value": _mean(values),
            "max_value": max(values) if values else None,
            "min_value": min(values) if values else None,
        }

    return _rows(
        _windowed(events, lambda e: e.get("action"), window, slide), "action", window, metrics
    )


# -- §5.2 anomalies -----------------------------------------------------------------------------


def _anomaly(kind: str, key: Any, row: Row | None, observed: float, threshold: float) -> Row:
    return {
        "kind": kind,
        "key": key,
        "window_start": row["window_start"] if row else None,
        "window_end": row["window_end"] if row else None,
        "observed": observed,
        "threshold": threshold,
    }


def _by_key(rows: Iterable[Row], key_name: str) -> dict[Any, list[Row]]:
    grouped: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[key_name]].append(row)
    for members in grouped.values():
        members.sort(key=lambda row: row["window_start"])
    return grouped


def response_time_zscore(
    rows: Iterable[Row], history: int = 10, min_history: int = 3, threshold: float = 2.0
) -> list[Row]:
    """1. |z| of a window's avg_response_time against the service's previous windows > 2.

    ``rows`` are response_time_per_service rows (the set being compared, e.g. the final ones).
    The baseline is the previous up to ``history`` windows of the service that have an average;
    at least ``min_history`` of them and a non-zero sample stddev are needed.
    """
    anomalies = []
    for service, members in sorted(_by_key(rows, "service").items()):
        with_avg = [row for row in members if row["avg_response_time"] is not None]
        for position, row in enumerate(with_avg):
            baseline = [
                r["avg_response_time"] for r in with_avg[max(0, position - history) : position]
            ]
            if len(baseline) < min_history:
                continue
            stddev = statistics.stdev(baseline)
            if stddev == 0:
                continue
            mean = math.fsum(baseline) / len(baseline)
            z = (row["avg_response_time"] - mean) / stddev
            if abs(z) > threshold:
                anomaly = _anomaly(
                    "response_time_zscore", service, row, row["avg_response_time"], threshold
                )
                anomaly.update(baseline_mean=mean, baseline_stddev=stddev, z_score=z)
                anomalies.append(anomaly)
    return anomalies


def error_rate_spike(rows: Iterable[Row], threshold: float = 10.0) -> list[Row]:
    """2. error_rate minus the service's previous window's (the latest earlier one) > 10 points."""
    anomalies = []
    for service, members in sorted(_by_key(rows, "service").items()):
        for previous, row in pairwise(members):
            change = row["error_rate"] - previous["error_rate"]
            if change > threshold:
                anomaly = _anomaly("error_rate_spike", service, row, row["error_rate"], threshold)
                anomaly.update(baseline=previous["error_rate"], change=change)
                anomalies.append(anomaly)
    return anomalies


def ddos_suspect(
    events: Iterable[Event], window: int = 60, min_requests: int = 100, max_users: int = 5
) -> list[Row]:
    """3. Per ip_address and 1-min window: request_count > 100 and unique_users < 5."""
    anomalies = []
    for row in ip_patterns(events, window):
        if row["request_count"] > min_requests and row["unique_users"] < max_users:
            anomaly = _anomaly(
                "ddos_suspect", row["ip_address"], row, row["request_count"], min_requests
            )
            anomaly["unique_users"] = row["unique_users"]
            anomalies.append(anomaly)
    return anomalies


def suspicious_ip(
    rows: Iterable[Row], min_requests: int = 1000, min_services: int = 5
) -> list[Row]:
    """4. ip_patterns rows with request_count > 1000 and more than 5 distinct services."""
    anomalies = []
    for row in rows:
        if row["request_count"] > min_requests and len(row["services_used"]) > min_services:
            anomaly = _anomaly(
                "suspicious_ip", row["ip_address"], row, row["request_count"], min_requests
            )
            anomaly["services_used"] = row["services_used"]
            anomalies.append(anomaly)
    return anomalies


def high_activity_user(
    user_events: Iterable[Event], window: int = 300, slide: int = 120, threshold: int = 50
) -> list[Row]:
    """5. User events per user_id in a 5-min window sliding 2 min: count > 50."""
    anomalies = []
    groups = _windowed(user_events, lambda e: e.get("user_id"), window, slide)
    for row in _rows(groups, "user_id", window, lambda members: {"count": len(members)}):
        if row["count"] > threshold:
            anomalies.append(
                _anomaly("high_activity_user", row["user_id"], row, row["count"], threshold)
            )
    return anomalies


def late_data_user(late_events: Iterable[Event], threshold: int = 5) -> list[Row]:
    """6. Users with more than 5 late events (over all late events given; no window)."""
    counts: dict[str, int] = defaultdict(int)
    for event in late_events:
        if event.get("user_id") is not None:
            counts[event["user_id"]] += 1
    return [
        _anomaly("late_data_user", user, None, count, threshold)
        for user, count in sorted(counts.items())
        if count > threshold
    ]
