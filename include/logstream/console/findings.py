"""What the console lists as findings of a day: anomalies with their evidence, quarantined records
by reason with samples, and late events per service.

An anomaly's evidence is its key, value, baseline and window, and where its rows are: the metric
window it was computed from and the bronze rows behind that window (folder and filter), so an
operator can open exactly those files.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow.compute as pc

from logstream import catalog
from logstream.catalog import anomalies as rules
from logstream.config import Settings
from logstream.console.tables import day_folder, read_day, sample_rows, table_folder

#: Anomalies listed per page (newest first); the JSON says how many there were.
MAX_ANOMALIES = 500
#: Samples shown per quarantine reason, and the characters kept of each raw record.
SAMPLES_PER_REASON = 5
SAMPLE_CHARS = 300

#: the anomalies table's columns the page lists (window_date is the day folder, already chosen)
_ANOMALY_COLUMNS = tuple(name for name in rules.ANOMALY_COLUMNS if name != "window_date")
#: kind -> the metric family its rule reads
_FAMILY_OF_KIND = {rule.kind: rule.family for rule in (*rules.HISTORY_RULES, *rules.FILTER_RULES)}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _hours(start: datetime, end: datetime) -> list[str]:
    """``event_date=D/event_hour=H`` folders that hold events of ``[start, end)``."""
    folders, hour = [], start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        folders.append(f"event_date={hour.date().isoformat()}/event_hour={hour.hour}")
        hour += timedelta(hours=1)
    return folders


def evidence(settings: Settings, anomaly: dict) -> dict:
    """Where the rows behind ``anomaly`` are: the metric window and the bronze rows."""
    kind, entity = anomaly["kind"], anomaly["entity"]
    start, end = anomaly["window_start"], anomaly["window_end"]
    quoted = json.dumps(entity)
    span = f"event_time >= '{_iso(start)}' and event_time < '{_iso(end)}'"
    if kind == "late_data_user":
        day = start.astimezone(UTC).date()
        return {
            "bronze_table": str(table_folder(settings, "late_events")),
            "bronze_folders": ["event_date=*"],
            "bronze_filter": f"user_id = {quoted} and processing_time on {day.isoformat()}",
        }
    family = catalog.FAMILY_BY_NAME.get(_FAMILY_OF_KIND.get(kind, ""))
    if family is None:
        return {}
    key = family.keys[0] if family.keys else "service"
    window_day = start.astimezone(UTC).date()
    return {
        "metric_table": str(day_folder(settings, family.name, window_day)),
        "metric_filter": f"{key} = {quoted} and window_start = '{_iso(start)}'",
        "bronze_table": str(table_folder(settings, family.source)),
        "bronze_folders": _hours(start, end),
        "bronze_filter": f"{key} = {quoted} and {span}",
    }


def anomaly_rows(settings: Settings, day: date, kind: str | None = None) -> dict:
    """The day's anomalies (window date ``day``), newest first, each with its evidence."""
    where = None if kind is None else pc.field("kind") == kind
    table = read_day(settings, "anomalies", day, _ANOMALY_COLUMNS, where=where)
    table = table.sort_by([("window_start", "descending"), ("kind", "ascending")])
    counts = table.group_by("kind").aggregate([([], "count_all")]).to_pylist()
    rows = []
    for row in table.slice(0, MAX_ANOMALIES).to_pylist():
        found = evidence(settings, row)
        rows.append(
            {
                **row,
                "window_start": _iso(row["window_start"]),
                "window_end": _iso(row["window_end"]),
                "evidence": found,
            }
        )
    return {
        "day": day.isoformat(),
        "total": len(table),
        "by_kind": {c["kind"]: c["count_all"] for c in sorted(counts, key=lambda c: c["kind"])},
        "anomalies": rows,
    }


def _sample_text(raw: bytes | None) -> str:
    if raw is None:
        return ""
    text = raw[: SAMPLE_CHARS * 4].decode("utf-8", errors="replace")
    return text[:SAMPLE_CHARS]


def quarantine_by_reason(settings: Settings, day: date) -> dict:
    """Quarantined records of ``day`` (Kafka timestamp date) per reason, with a few samples."""
    reasons = read_day(settings, "quarantine", day, ("reason",))
    counts = reasons.group_by("reason").aggregate([([], "count_all")]).to_pylist()
    counts.sort(key=lambda c: (-c["count_all"], str(c["reason"])))
    columns = (
        "detail",
        "raw_value",
        "raw_length",
        "kafka_topic",
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
    )
    samples = sample_rows(
        settings,
        "quarantine",
        day,
        columns,
        "reason",
        [count["reason"] for count in counts],
        SAMPLES_PER_REASON,
    )
    out = []
    for count in counts:
        reason = count["reason"]
        out.append(
            {
                "reason": reason,
                "count": count["count_all"],
                "samples": [
                    {
                        **{k: v for k, v in s.items() if k not in ("raw_value", "kafka_timestamp")},
                        "kafka_timestamp": _iso(s["kafka_timestamp"]),
                        "raw": _sample_text(s["raw_value"]),
                    }
                    for s in samples[reason].to_pylist()
                ],
            }
        )
    return {"day": day.isoformat(), "total": len(reasons), "reasons": out}


def late_by_service(settings: Settings, day: date) -> dict:
    """Late events with event date ``day`` per service: count and lateness (ms)."""
    late = read_day(settings, "late_events", day, ("service", "lateness_ms"))
    grouped = late.group_by("service").aggregate(
        [([], "count_all"), ("lateness_ms", "max"), ("lateness_ms", "mean")]
    )
    rows = [
        {
            "service": row["service"],
            "late_events": row["count_all"],
            "max_lateness_ms": row["lateness_ms_max"],
            "avg_lateness_ms": None
            if row["lateness_ms_mean"] is None
            else round(row["lateness_ms_mean"], 1),
        }
        for row in grouped.to_pylist()
    ]
    rows.sort(key=lambda r: (-r["late_events"], str(r["service"])))
    return {"day": day.isoformat(), "total": len(late), "services": rows}
