"""Progress and health of the streaming queries (SPEC §9): status files and Prometheus metrics.

:class:`StatusListener` turns every ``StreamingQueryProgress`` into

* ``<status_dir>/<query name>.json``, replaced atomically: rates, batch duration, watermark, rows
  dropped by watermark, state size, Kafka offsets processed vs latest (lag) and event-time lag,
  plus the ingestion totals (valid / quarantined / late) that the job records exactly once;
* Prometheus gauges served on a loopback port (``metrics_port``; 0 turns the server off).

* one JSON line per progress event in ``<status_dir>/history/<query>/<YYYY-MM-DD>.jsonl`` (UTC day
  of the progress timestamp): batch duration, watermark, Kafka lag and event-time lag over time,
  which the hourly latency report (:mod:`logstream.batch.latency`) summarises. Daily files keep each
  read small; files older than ``history_days`` are deleted when a new day starts.

The supervisor and ``logstream status`` read the files; a file whose ``updated_at`` stops moving is
a stalled or dead query.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from logstream.storage.fs import write_local_text
from logstream.timeutil import parse_iso

log = logging.getLogger(__name__)


class TotalsRegistry:
    """Per-query counters the job's batch handlers publish for the listener (same process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, dict[str, Any]] = {}

    def update(self, query_name: str, values: dict[str, Any]) -> None:
        with self._lock:
            self._totals.setdefault(query_name, {}).update(values)

    def get(self, query_name: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._totals.get(query_name, {}))


def _offsets(raw: Any) -> dict[str, dict[str, int]]:
    if raw is None:
        return {}
    data = json.loads(raw) if isinstance(raw, str) else raw
    return data if isinstance(data, dict) else {}


def kafka_lag(source: dict) -> int | None:
    """Records between what the query processed (endOffset) and the topic's latest offsets."""
    if "kafka" not in source.get("description", "").lower():
        return None
    end, latest = _offsets(source.get("endOffset")), _offsets(source.get("latestOffset"))
    if not latest:
        return None
    lag = 0
    for topic, partitions in latest.items():
        for partition, offset in partitions.items():
            lag += max(0, int(offset) - int(end.get(topic, {}).get(partition, 0)))
    return lag


def summarize_progress(progress: dict, dropped_so_far: int) -> dict:
    """The status-file view of one progress event (pure; unit-tested)."""
    state_ops = progress.get("stateOperators") or []
    dropped_now = sum(int(op.get("numRowsDroppedByWatermark", 0)) for op in state_ops)
    lags = [lag for lag in (kafka_lag(s) for s in progress.get("sources", [])) if lag is not None]
    event_time = progress.get("eventTime") or {}
    max_event = parse_iso(event_time.get("max"))
    stamp = parse_iso(progress.get("timestamp"))
    return {
        "query": progress.get("name"),
        "id": progress.get("id"),
        "run_id": progress.get("runId"),
        "batch_id": progress.get("batchId"),
        "progress_timestamp": progress.get("timestamp"),
        "num_input_rows": progress.get("numInputRows", 0),
        "input_rows_per_second": progress.get("inputRowsPerSecond", 0.0),
        "processed_rows_per_second": progress.get("processedRowsPerSecond", 0.0),
        "batch_duration_ms": (progress.get("durationMs") or {}).get("triggerExecution", 0),
        "watermark": event_time.get("watermark"),
        "max_event_time": event_time.get("max"),
        "event_time_lag_seconds": (
            (stamp - max_event).total_seconds() if stamp and max_event else None
        ),
        "rows_dropped_by_watermark": dropped_so_far + dropped_now,
        "state_rows": sum(int(op.get("numRowsTotal", 0)) for op in state_ops),
        "state_memory_bytes": sum(int(op.get("memoryUsedBytes", 0)) for op in state_ops),
        "kafka_lag": sum(lags) if lags else None,
        "sources": [
            {
                "description": s.get("description"),
                "end_offset": _offsets(s.get("endOffset")) if "kafka" in str(s).lower() else None,
                "latest_offset": _offsets(s.get("latestOffset")),
            }
            for s in progress.get("sources", [])
        ],
    }


class _Gauges:
    """Prometheus gauges, created once per process."""

    _instance: _Gauges | None = None

    def __init__(self) -> None:
        from prometheus_client import Gauge

        labels = ["query"]
        self.input_rate = Gauge("logstream_input_rows_per_second", "Input rate", labels)
        self.processed_rate = Gauge(
            "logstream_processed_rows_per_second", "Processing rate", labels
        )
        self.batch_duration = Gauge("logstream_batch_duration_ms", "Last batch duration", labels)
        self.watermark = Gauge("logstream_watermark_seconds", "Watermark (epoch s)", labels)
        self.dropped = Gauge(
            "logstream_rows_dropped_by_watermark", "Rows behind the watermark", labels
        )
        self.state_rows = Gauge("logstream_state_rows", "State store rows", labels)
        self.state_bytes = Gauge("logstream_state_memory_bytes", "State store memory", labels)
        self.kafka_lag = Gauge("logstream_kafka_lag_records", "Latest minus processed", labels)
        self.event_lag = Gauge("logstream_event_time_lag_seconds", "Now minus max event", labels)
        self.heartbeat = Gauge("logstream_last_progress_seconds", "Last progress (epoch)", labels)
        self.totals = Gauge("logstream_ingested_records", "Ingestion totals", ["query", "kind"])

    @classmethod
    def get(cls) -> _Gauges:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


def start_metrics_server(port: int) -> None:
    """Serve Prometheus metrics on 127.0.0.1:port (0 = off)."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr="127.0.0.1")
        _Gauges.get()


def write_status(status_dir: str | Path, name: str, status: dict) -> None:
    write_local_text(Path(status_dir) / f"{name}.json", json.dumps(status, indent=2, default=str))


def read_statuses(status_dir: str | Path) -> list[dict]:
    directory = Path(status_dir)
    if not directory.exists():
        return []
    statuses = []
    for path in sorted(directory.glob("*.json")):
        try:
            statuses.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return statuses


#: Days of progress history kept per query (the latency report needs the last few hours).
HISTORY_DAYS = 7
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def history_record(status: dict) -> dict:
    """The history line of one progress status (what :func:`summarize_progress` returned)."""
    lag_seconds = status.get("event_time_lag_seconds")
    return {
        "timestamp": status.get("progress_timestamp"),
        "query": status.get("query"),
        "run_id": status.get("run_id"),
        "batch_id": status.get("batch_id"),
        "num_input_rows": status.get("num_input_rows"),
        "batch_duration_ms": status.get("batch_duration_ms"),
        "watermark": status.get("watermark"),
        "max_event_time": status.get("max_event_time"),
        "kafka_lag": status.get("kafka_lag"),
        "event_time_lag_ms": lag_seconds * 1000.0 if lag_seconds is not None else None,
    }


def _history_folder(status_dir: str | Path, query: str) -> Path:
    return Path(status_dir) / "history" / (_UNSAFE_NAME.sub("_", query) or "_")


def history_path(status_dir: str | Path, query: str, day: date) -> Path:
    """``<status_dir>/history/<query>/<YYYY-MM-DD>.jsonl`` (unsafe characters become ``_``)."""
    return _history_folder(status_dir, query) / f"{day.isoformat()}.jsonl"


def append_history(status_dir: str | Path, record: dict, keep_days: int = HISTORY_DAYS) -> Path:
    """Append one history line to its query's file for the record's UTC day.

    A new day's file prunes the query's files older than ``keep_days``, so the history stays
    bounded without a separate clean-up job.
    """
    stamp = parse_iso(record.get("timestamp")) or datetime.now(UTC)
    day = stamp.astimezone(UTC).date()
    query = str(record.get("query") or "unnamed")
    target = history_path(status_dir, query, day)
    is_new = not target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as out:
        out.write(json.dumps(record, default=str) + "\n")
    if is_new:
        oldest_kept = day - timedelta(days=keep_days - 1)
        for old in target.parent.glob("*.jsonl"):
            try:
                if date.fromisoformat(old.stem) < oldest_kept:
                    old.unlink(missing_ok=True)
            except ValueError:
                continue
    return target


def read_history(status_dir: str | Path, start: datetime, end: datetime) -> list[dict]:
    """Every query's history lines with ``start <= timestamp < end`` (aware datetimes).

    Lines that do not parse (a write cut short by a crash) are skipped, not fatal.
    """
    root = Path(status_dir) / "history"
    if not root.is_dir():
        return []
    days = []
    day = start.astimezone(UTC).date()
    while day <= (end - timedelta(microseconds=1)).astimezone(UTC).date():
        days.append(day)
        day += timedelta(days=1)
    records = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for day in days:
            path = folder / f"{day.isoformat()}.jsonl"
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    stamp = parse_iso(record.get("timestamp"))
                except (json.JSONDecodeError, ValueError, AttributeError):
                    continue
                if stamp is not None and start <= stamp < end:
                    records.append(record)
    return records


class StatusListener(StreamingQueryListener):
    """Writes one status file per query, appends its progress history, updates the gauges."""

    def __init__(
        self,
        status_dir: str | Path,
        registry: TotalsRegistry,
        metrics: bool,
        history_days: int = HISTORY_DAYS,
    ) -> None:
        self.status_dir = Path(status_dir)
        self.registry = registry
        self.metrics = metrics
        self.history_days = history_days
        self._dropped: dict[str, int] = {}
        self._last: dict[str, dict] = {}
        self._names: dict[str, str] = {}

    def _emit(self, name: str, status: dict) -> None:
        status["updated_at"] = datetime.now(UTC).isoformat()
        values = self.registry.get(name)
        # the ingestion handlers keep the watermarks (no Spark withWatermark in the job)
        watermark = values.pop("watermark", None)
        max_event_time = values.pop("max_event_time", None)
        final_through = values.pop("final_through", None)
        if watermark and not status.get("watermark"):
            status["watermark"] = watermark
        if max_event_time and not status.get("max_event_time"):
            status["max_event_time"] = max_event_time
            stamp = parse_iso(status.get("progress_timestamp"))
            if stamp is not None:
                lag = stamp - parse_iso(max_event_time)
                status["event_time_lag_seconds"] = lag.total_seconds()
        if final_through:
            status["windows_final_through"] = final_through
        status["totals"] = values
        if "late" in status["totals"]:
            # ingestion: rows behind the watermark, counted exactly once across restarts
            status["rows_dropped_by_watermark"] = status["totals"]["late"]
        self._last[name] = status
        try:
            write_status(self.status_dir, name, status)
        except OSError as exc:
            log.error("status file not written", extra={"query": name, "error": str(exc)})

    def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's API
        name = event.name or str(event.id)
        self._names[str(event.id)] = name
        self._emit(
            name,
            {
                "query": name,
                "id": str(event.id),
                "run_id": str(event.runId),
                "state": "active",
                "started_at": event.timestamp,
            },
        )

    def onQueryProgress(self, event) -> None:  # noqa: N802
        progress = json.loads(event.progress.json)
        name = progress.get("name") or progress.get("id")
        status = summarize_progress(progress, self._dropped.get(name, 0))
        self._dropped[name] = status["rows_dropped_by_watermark"]
        status["state"] = "active"
        self._emit(name, status)
        try:
            record = {**history_record(status), "query": name}
            append_history(self.status_dir, record, self.history_days)
        except OSError as exc:
            log.error("progress history not written", extra={"query": name, "error": str(exc)})
        if self.metrics:
            self._update_gauges(name, status)

    def onQueryIdle(self, event) -> None:  # noqa: N802
        name = self._names.get(str(event.id), str(event.id))
        status = dict(self._last.get(name, {"query": name}))
        status["state"] = "idle"
        self._emit(name, status)
        if self.metrics:
            _Gauges.get().heartbeat.labels(name).set(time.time())

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        name = self._names.get(str(event.id), str(event.id))
        status = dict(self._last.get(name, {"query": name}))
        status["state"] = "failed" if event.exception else "terminated"
        status["exception"] = (event.exception or "")[:4000] or None
        self._emit(name, status)

    def _update_gauges(self, name: str, status: dict) -> None:
        gauges = _Gauges.get()
        gauges.input_rate.labels(name).set(status["input_rows_per_second"] or 0)
        gauges.processed_rate.labels(name).set(status["processed_rows_per_second"] or 0)
        gauges.batch_duration.labels(name).set(status["batch_duration_ms"] or 0)
        watermark = parse_iso(status["watermark"])
        if watermark:
            gauges.watermark.labels(name).set(watermark.timestamp())
        gauges.dropped.labels(name).set(status["rows_dropped_by_watermark"])
        gauges.state_rows.labels(name).set(status["state_rows"])
        gauges.state_bytes.labels(name).set(status["state_memory_bytes"])
        if status["kafka_lag"] is not None:
            gauges.kafka_lag.labels(name).set(status["kafka_lag"])
        if status["event_time_lag_seconds"] is not None:
            gauges.event_lag.labels(name).set(status["event_time_lag_seconds"])
        gauges.heartbeat.labels(name).set(time.time())
        for kind, value in status["totals"].items():
            if isinstance(value, int | float):
                gauges.totals.labels(name, kind).set(value)
