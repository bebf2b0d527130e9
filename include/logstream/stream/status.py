"""Progress and health of the streaming queries (SPEC §9): status files and Prometheus metrics.

:class:`StatusListener` turns every ``StreamingQueryProgress`` into

* ``<status_dir>/<query name>.json``, replaced atomically: rates, batch duration, watermark, rows
  dropped by watermark, state size, Kafka offsets processed vs latest (lag) and event-time lag,
  plus the ingestion totals (valid / quarantined / late) that the job records exactly once;
* the Prometheus metrics of :data:`METRICS` (:class:`QueryMetrics`), served on 127.0.0.1
  (``metrics_port``; 0 turns them off): rates, batch durations, lag, watermark, progress heartbeat,
  and the ingestion totals as counters, labelled ``query`` and ``pipeline`` only;
* one JSON line per progress event in the query's history (:mod:`logstream.stream.history`).

``status_dir`` is a local folder or a shared one (``hdfs://``, ``s3a://``), read and written
through :class:`logstream.storage.fs.Storage`: pass the job's (its settings reach the store).

The supervisor and ``logstream status`` read the files; a file whose ``updated_at`` stops moving is
a stalled or dead query.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from pyspark.sql.streaming import StreamingQueryListener

from logstream.alerts import counters
from logstream.storage.fs import Storage, join
from logstream.stream.history import (
    HISTORY_DAYS,
    UNSAFE_NAME,
    append_history,
    default_storage,
    history_record,
)
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


#: The exporter's families, all labelled ``query`` and ``pipeline`` (names our code chooses, never
#: log content): (name, type, help, key of the query's values). Counters get ``_total`` on the
#: wire; the ingestion totals are restored from the checkpoint, so they continue across restarts.
METRICS = (
    ("logstream_input_rows_per_second", "gauge", "Input rate of the last micro-batch", "in_rate"),
    ("logstream_processed_rows_per_second", "gauge", "Processing rate, last batch", "out_rate"),
    ("logstream_last_batch_duration_seconds", "gauge", "Last micro-batch duration", "batch_s"),
    ("logstream_trigger_interval_seconds", "gauge", "Configured trigger interval", "trigger_s"),
    ("logstream_kafka_lag_records", "gauge", "Topics' latest offsets minus processed", "lag"),
    ("logstream_event_time_lag_seconds", "gauge", "Progress time minus max event time", "ev_lag"),
    ("logstream_watermark_timestamp_seconds", "gauge", "Event-time watermark (Unix s)", "wm"),
    ("logstream_last_progress_timestamp_seconds", "gauge", "Last progress or idle", "heartbeat"),
    ("logstream_query_up", "gauge", "1 while the query runs, 0 once it stopped or failed", "up"),
    ("logstream_state_rows", "gauge", "State store rows", "state_rows"),
    ("logstream_state_memory_bytes", "gauge", "State store memory", "state_bytes"),
    ("logstream_input_rows", "counter", "Rows read from Kafka by this process", "input_rows"),
    ("logstream_valid_records", "counter", "Valid records landed in bronze", "valid"),
    ("logstream_quarantined_records", "counter", "Records sent to quarantine", "quarantined"),
    ("logstream_late_records", "counter", "Records behind the watermark (late_events)", "late"),
    ("logstream_rows_dropped_by_watermark", "counter", "Rows behind the watermark", "dropped"),
    ("logstream_error_records", "counter", "Valid records with status_code >= 400", "errors"),
    ("logstream_anomalies", "counter", "Anomalies detected", "anomalies"),
)
#: Per-request response time of valid log records (a summary: ``_sum`` and ``_count``).
RESPONSE_TIME = "logstream_response_time_seconds"
#: Every micro-batch's duration (a histogram, so a scrape misses none of them).
BATCH_DURATION = "logstream_batch_duration_seconds"
BATCH_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
#: Ingestion totals (published by the batch handlers) -> the key of the query's values.
_TOTAL_KEYS = {key: key for key in ("valid", "quarantined", "late", "errors", "anomalies")}
_TOTAL_KEYS |= {"response_time_sum_s": "rt_sum", "response_time_count": "rt_count"}
#: What a stopped query keeps: its counters (its gauges go, so no frozen lag or heartbeat alerts).
_COUNTERS = {key for _, kind, _, key in METRICS if kind == "counter"} | {"rt_sum", "rt_count"}


def query_labels(name: str) -> tuple[str, str]:
    """``(query, pipeline)`` label values: ``ingest_logs`` -> ``("ingest_logs", "logs")``."""
    query = UNSAFE_NAME.sub("_", str(name))[:80] or "unnamed"
    return query, query.removeprefix("ingest_")


class QueryMetrics(Collector):
    """The queries' latest values, served as Prometheus families (thread-safe: the listener
    writes from Spark's listener thread, scrapes read from the HTTP server's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, float]] = {}
        self._batches: dict[str, list[float]] = {}  # cumulative bucket counts, +Inf, sum

    def set(self, query: str, **values: float | None) -> None:
        with self._lock:
            target = self._values.setdefault(query, {})
            target.update({key: float(v) for key, v in values.items() if v is not None})

    def add(self, query: str, key: str, amount: float) -> None:
        with self._lock:
            target = self._values.setdefault(query, {})
            target[key] = target.get(key, 0.0) + amount

    def stopped(self, query: str) -> None:
        with self._lock:
            known = self._values.get(query, {})
            kept = {key: value for key, value in known.items() if key in _COUNTERS}
            self._values[query] = {**kept, "up": 0.0}

    def observe_batch(self, query: str, seconds: float) -> None:
        with self._lock:
            counts = self._batches.setdefault(query, [0.0] * (len(BATCH_BUCKETS_S) + 2))
            for index, bound in enumerate((*BATCH_BUCKETS_S, float("inf"))):
                counts[index] += seconds <= bound
            counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            values = {q: dict(v) for q, v in self._values.items()}
            batches = {q: list(c) for q, c in self._batches.items()}
        labels = ["query", "pipeline"]
        for name, kind, text, key in METRICS:
            family_type = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            family = family_type(name, text, labels=labels)
            for query, known in sorted(values.items()):
                if key in known:
                    family.add_metric(query_labels(query), known[key])
            yield family
        summary = SummaryMetricFamily(
            RESPONSE_TIME, "Response time of valid records", labels=labels
        )
        for query, known in sorted(values.items()):
            if "rt_count" in known and "rt_sum" in known:
                summary.add_metric(query_labels(query), known["rt_count"], known["rt_sum"])
        yield summary
        histogram = HistogramMetricFamily(BATCH_DURATION, "Micro-batch durations", labels=labels)
        bounds = [str(bound) for bound in BATCH_BUCKETS_S] + ["+Inf"]
        for query, counts in sorted(batches.items()):
            buckets = list(zip(bounds, counts[:-1], strict=True))
            histogram.add_metric(query_labels(query), buckets, counts[-1])
        yield histogram


class AlertCounters(Collector):
    """The alert path's counters of this process (:mod:`logstream.alerts.counters`), labelled by
    channel (a configured channel name) where they have one."""

    def collect(self) -> Iterator[Metric]:
        values = counters.samples()
        for name, (kind, text) in counters.METRICS.items():
            family = Metric(name.removesuffix("_total"), text, kind)
            for metric, labels, value in values:
                if metric == name:
                    family.add_sample(name, labels, value)
            yield family


_REGISTRY = CollectorRegistry()
_METRICS = QueryMetrics()
_REGISTRY.register(_METRICS)
_REGISTRY.register(AlertCounters())
ProcessCollector(namespace="logstream", registry=_REGISTRY)  # process start time = restarts


def metrics_registry() -> CollectorRegistry:
    """What the exporter serves (one per process)."""
    return _REGISTRY


def start_metrics_server(port: int, host: str = "127.0.0.1") -> WSGIServer | None:
    """Serve the metrics on ``host:port`` (loopback; 0 = off) from a daemon thread.

    A port already in use (another job on this machine, a test) is logged once as a warning and the
    job goes on without metrics. Returns the server (``shutdown()`` stops it), or None.
    """
    if not port:
        return None
    try:
        server, _ = start_http_server(port, addr=host, registry=_REGISTRY)
    except OSError as exc:
        log.warning(
            "Prometheus metrics are not served: %s:%d cannot be bound (%s); the job goes on "
            "without them. Set LOGSTREAM_METRICS_PORT to a free port, or 0 to turn them off.",
            host,
            port,
            exc.strerror or exc,
        )
        return None
    return server


def write_status(
    status_dir: str | Path, name: str, status: dict, storage: Storage | None = None
) -> None:
    """Replace ``<status_dir>/<name>.json`` (any location of :class:`Storage`)."""
    text = json.dumps(status, indent=2, default=str)
    default_storage(storage).write_text(join(status_dir, f"{name}.json"), text)


def read_statuses(status_dir: str | Path, storage: Storage | None = None) -> list[dict]:
    """Every query's status file in ``status_dir`` (local or remote), by name."""
    storage = default_storage(storage)
    statuses = []
    for name in storage.list_names(status_dir):
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            text = storage.read_text(join(status_dir, name))
            if text is not None:
                statuses.append(json.loads(text))
        except (OSError, json.JSONDecodeError):
            continue
    return statuses


class StatusListener(StreamingQueryListener):
    """Writes one status file per query, appends its progress history and, with ``metrics``,
    updates what the exporter serves (:class:`QueryMetrics`)."""

    def __init__(
        self,
        status_dir: str | Path,
        registry: TotalsRegistry,
        metrics: bool,
        history_days: int = HISTORY_DAYS,
        trigger_interval_s: float | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.status_dir = str(status_dir)
        self.storage = default_storage(storage)
        self.registry = registry
        self.metrics = metrics
        self.history_days = history_days
        self.trigger_interval_s = trigger_interval_s
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
            write_status(self.status_dir, name, status, self.storage)
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
        if self.metrics:
            _METRICS.set(name, up=1, heartbeat=time.time(), trigger_s=self.trigger_interval_s)

    def onQueryProgress(self, event) -> None:  # noqa: N802
        progress = json.loads(event.progress.json)
        name = progress.get("name") or progress.get("id")
        status = summarize_progress(progress, self._dropped.get(name, 0))
        self._dropped[name] = status["rows_dropped_by_watermark"]
        status["state"] = "active"
        self._emit(name, status)
        try:
            record = {**history_record(status), "query": name}
            append_history(self.status_dir, record, self.history_days, self.storage)
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
            _METRICS.set(name, up=1, heartbeat=time.time())

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        name = self._names.get(str(event.id), str(event.id))
        status = dict(self._last.get(name, {"query": name}))
        status["state"] = "failed" if event.exception else "terminated"
        status["exception"] = (event.exception or "")[:4000] or None
        self._emit(name, status)
        if self.metrics:
            _METRICS.stopped(name)

    def _update_gauges(self, name: str, status: dict) -> None:
        watermark = parse_iso(status.get("watermark"))
        batch_s = (status.get("batch_duration_ms") or 0) / 1000.0
        _METRICS.set(
            name,
            in_rate=status.get("input_rows_per_second") or 0,
            out_rate=status.get("processed_rows_per_second") or 0,
            batch_s=batch_s,
            trigger_s=self.trigger_interval_s,
            lag=status.get("kafka_lag"),
            ev_lag=status.get("event_time_lag_seconds"),
            wm=watermark.timestamp() if watermark else None,
            heartbeat=time.time(),
            up=1,
            state_rows=status.get("state_rows"),
            state_bytes=status.get("state_memory_bytes"),
            dropped=status.get("rows_dropped_by_watermark"),
        )
        _METRICS.add(name, "input_rows", status.get("num_input_rows") or 0)
        _METRICS.observe_batch(name, batch_s)
        totals = {
            _TOTAL_KEYS[key]: value
            for key, value in (status.get("totals") or {}).items()
            if key in _TOTAL_KEYS and isinstance(value, int | float) and not isinstance(value, bool)
        }
        _METRICS.set(name, **totals)
