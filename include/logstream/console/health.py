"""Pipeline health for the console: each query's last status, its recent progress history, and
the supervisor's view (running job, restarts, an operator's hold).

Sources: the status files and their daily history (:mod:`logstream.stream.status`, in a local
or shared ``status_dir``) and the supervisor's state files (:mod:`logstream.supervisor.state`);
no table is read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from logstream.config import Settings
from logstream.console.tables import shared_storage
from logstream.stream.history import read_history
from logstream.stream.status import read_statuses
from logstream.supervisor import state
from logstream.timeutil import parse_iso

#: What the console shows of a status file.
QUERY_FIELDS = (
    "query",
    "state",
    "batch_id",
    "updated_at",
    "num_input_rows",
    "input_rows_per_second",
    "processed_rows_per_second",
    "batch_duration_ms",
    "watermark",
    "max_event_time",
    "event_time_lag_seconds",
    "kafka_lag",
    "rows_dropped_by_watermark",
    "state_rows",
    "windows_final_through",
    "exception",
)
#: The history series charted per query.
SERIES = ("batch_duration_ms", "kafka_lag", "event_time_lag_ms", "num_input_rows")


def _age_seconds(stamp: str | None, now: datetime) -> float | None:
    moment = parse_iso(stamp) if isinstance(stamp, str) else None
    return None if moment is None else round((now - moment).total_seconds(), 1)


def query_rows(settings: Settings, now: datetime) -> list[dict]:
    """One row per status file: :data:`QUERY_FIELDS` and how old the status is."""
    rows = []
    for status in read_statuses(settings.status_dir, shared_storage(settings)):
        row = {name: status.get(name) for name in QUERY_FIELDS}
        row["query"] = str(row["query"] or "unnamed")
        row["age_seconds"] = _age_seconds(status.get("updated_at"), now)
        rows.append(row)
    return rows


def history_series(settings: Settings, now: datetime, hours: float) -> dict[str, dict]:
    """``{query: {series: [[epoch ms, value], ...]}}`` over the last ``hours``, oldest first."""
    series: dict[str, dict[str, list]] = {}
    since = now - timedelta(hours=hours)
    for record in read_history(settings.status_dir, since, now, shared_storage(settings)):
        moment = parse_iso(record.get("timestamp"))
        if moment is None:
            continue
        points = series.setdefault(str(record.get("query") or "unnamed"), {s: [] for s in SERIES})
        for name in SERIES:
            value = record.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                points[name].append([int(moment.timestamp() * 1000), value])
    for points in series.values():
        for values in points.values():
            values.sort(key=lambda point: point[0])
    return series


def supervisor_view(settings: Settings) -> dict:
    """The running job as the supervisor recorded it, its restarts (newest first) and a hold."""
    record = state.read_record(settings)
    restarts = sorted(state.read_history(settings), key=lambda r: r["at"], reverse=True)
    return {
        "job": None
        if record is None
        else {
            "pid": record.pid,
            "started_at": datetime.fromtimestamp(record.started_at, UTC).isoformat(),
            "pipelines": list(record.pipelines),
            "adopted": record.adopted,
        },
        "restarts": [
            {
                "at": datetime.fromtimestamp(r["at"], UTC).isoformat(),
                "reason": str(r.get("reason", "")),
            }
            for r in restarts
        ],
        "hold": state.read_hold(settings),
    }


def pipeline_health(settings: Settings, now: datetime | None = None, hours: float = 1.0) -> dict:
    """Everything the health page shows."""
    now = now or datetime.now(UTC)
    return {
        "generated_at": now.isoformat(),
        "queries": query_rows(settings, now),
        "history_hours": hours,
        "series": history_series(settings, now, hours),
        "supervisor": supervisor_view(settings),
    }
