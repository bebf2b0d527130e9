"""Metric windows per service for the console: requests per minute, error rate and p50/p95/p99.

*Final* windows come from the streamed metric tables ``error_rate`` and ``response_time`` (what
the job wrote once a window became final). *Live* windows are the minutes after the day's last
final window, computed from bronze ``events`` (only the hour folders from that point on): they
change until the job finalises them. Live percentiles are t-digest estimates; the final ones are
Spark's ``percentile_approx``.
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from logstream.config import Settings
from logstream.console.tables import child_names, day_folder, read_day

#: Services charted per page (the busiest); the JSON lists them all.
MAX_CHARTED_SERVICES = 12
#: Without a final window that day, the live part covers this many of the day's newest hours.
LIVE_HOURS_WITHOUT_FINAL = 2
QUANTILES = (0.5, 0.95, 0.99)

_ERROR_COLUMNS = ("window_start", "window_end", "service", "total_requests", "error_rate")
_LATENCY_COLUMNS = (
    "window_start",
    "service",
    "p50_response_time",
    "p95_response_time",
    "p99_response_time",
)


def _service_filter(service: str | None) -> ds.Expression | None:
    return None if service is None else pc.field("service") == service


def final_windows(settings: Settings, day: date, service: str | None = None) -> pa.Table:
    """The day's final windows: error-rate columns joined with the percentiles per window."""
    where = _service_filter(service)
    errors = read_day(settings, "error_rate", day, _ERROR_COLUMNS, where=where)
    latency = read_day(settings, "response_time", day, _LATENCY_COLUMNS, where=where)
    joined = errors.join(latency, keys=["service", "window_start"], join_type="full outer")
    minutes = pc.divide(
        pc.cast(pc.subtract(joined["window_end"], joined["window_start"]), pa.int64()),
        60_000_000.0,
    )
    per_minute = pc.divide(pc.cast(joined["total_requests"], pa.float64()), minutes)
    joined = joined.append_column("requests_per_min", per_minute)
    return joined.sort_by([("service", "ascending"), ("window_start", "ascending")])


def _day_hours(settings: Settings, day: date) -> list[int]:
    hours = []
    for name in child_names(settings, day_folder(settings, "events", day)):
        prefix, _, value = name.partition("=")
        if prefix == "event_hour" and value.isdigit():
            hours.append(int(value))
    return sorted(hours)


def live_windows(
    settings: Settings, day: date, after: datetime | None, service: str | None = None
) -> pa.Table:
    """Per service and minute, from bronze events at or after ``after`` (the end of the day's last
    final window; None = the day's newest :data:`LIVE_HOURS_WITHOUT_FINAL` hours)."""
    hours = _day_hours(settings, day)
    if after is None:
        hours = hours[-LIVE_HOURS_WITHOUT_FINAL:]
    elif after.date() > day:
        hours = []  # the day is final through its end
    else:
        hours = [h for h in hours if after.date() < day or h >= after.hour]
    where = _service_filter(service)
    if after is not None:
        since = pc.field("event_time") >= pa.scalar(after, pa.timestamp("us", tz="UTC"))
        where = since if where is None else where & since
    columns = ("event_time", "service", "status_code", "response_time")
    events = read_day(settings, "events", day, columns, hours=hours, where=where)
    minute = pc.floor_temporal(events["event_time"], unit="minute")
    errors = pc.cast(pc.greater_equal(events["status_code"], 400), pa.int64())
    frame = pa.table(
        {
            "service": events["service"],
            "window_start": minute,
            "is_error": pc.fill_null(errors, 0),
            "response_time": events["response_time"],
        }
    )
    grouped = frame.group_by(["service", "window_start"]).aggregate(
        [
            ([], "count_all"),
            ("is_error", "sum"),
            ("response_time", "tdigest", pc.TDigestOptions(q=list(QUANTILES))),
        ]
    )
    digest = grouped["response_time_tdigest"]
    total = grouped["count_all"]
    return pa.table(
        {
            "service": grouped["service"],
            "window_start": grouped["window_start"],
            "total_requests": total,
            "requests_per_min": pc.cast(total, pa.float64()),
            "error_rate": pc.multiply(
                pc.divide(pc.cast(grouped["is_error_sum"], pa.float64()), total), 100.0
            ),
            **{
                f"p{round(q * 100)}_response_time": pc.list_element(digest, i)
                for i, q in enumerate(QUANTILES)
            },
        }
    ).sort_by([("service", "ascending"), ("window_start", "ascending")])


#: The series of each service's windows, and their types.
SERIES = pa.schema(
    [
        ("service", pa.string()),
        ("window_start", pa.timestamp("us", tz="UTC")),
        ("requests_per_min", pa.float64()),
        ("total_requests", pa.int64()),
        ("error_rate", pa.float64()),
        ("p50_response_time", pa.float64()),
        ("p95_response_time", pa.float64()),
        ("p99_response_time", pa.float64()),
    ]
)


def _series(final: pa.Table, live: pa.Table) -> dict[str, dict[str, list]]:
    """``{service: {column: [values, oldest first]}}``: final windows, then live ones
    (``final``: which), ``window_start`` as ISO text and ``window_start_ms`` as epoch ms."""
    parts = [
        table.select(SERIES.names).cast(SERIES).append_column("final", pa.repeat(flag, len(table)))
        for table, flag in ((final, True), (live, False))
    ]
    combined = pa.concat_tables(parts).sort_by(
        [("service", "ascending"), ("final", "descending"), ("window_start", "ascending")]
    )
    starts = combined["window_start"]
    columns = {name: combined[name].to_pylist() for name in [*SERIES.names[2:], "final"]}
    seconds = pc.cast(starts, pa.timestamp("s", tz="UTC"), safe=False)
    columns["window_start"] = pc.strftime(seconds, "%Y-%m-%dT%H:%M:%SZ").to_pylist()
    columns["window_start_ms"] = pc.divide(pc.cast(starts, pa.int64()), 1000).to_pylist()
    services = combined["service"].to_pylist()
    out: dict[str, dict[str, list]] = {}
    begin = 0
    for end in range(1, len(services) + 1):
        if end == len(services) or services[end] != services[begin]:
            out[str(services[begin])] = {k: v[begin:end] for k, v in columns.items()}
            begin = end
    return out


def metric_windows(settings: Settings, day: date, service: str | None = None) -> dict:
    """The windows page: per service, final windows then live ones, and the services by volume."""
    final = final_windows(settings, day, service)
    after = pc.max(final["window_end"]).as_py() if len(final) else None
    live = live_windows(settings, day, after, service)
    by_service = _series(final, live)
    volume = {name: sum(n or 0 for n in s["total_requests"]) for name, s in by_service.items()}
    ranked = sorted(volume, key=lambda name: (-volume[name], name))
    return {
        "day": day.isoformat(),
        "final_through": after.isoformat() if after else None,
        "services": [{"service": name, "requests": volume[name]} for name in ranked],
        "windows": {name: by_service[name] for name in ranked},
    }
