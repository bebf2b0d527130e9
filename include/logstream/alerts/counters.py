"""What happened to the alerts of this process: counters other code reads and exports.

Every delivery path counts here (channels, the background queue, the outbox, the grouping of
the direct channels), per channel where there is one. :func:`snapshot` gives the totals by
metric name, :func:`samples` the per-channel values; :data:`METRICS` holds each metric's type
and help text for an exporter. Counters are process-local and start at zero with the process
(the streaming job's Prometheus endpoint serves its own).
"""

from __future__ import annotations

import threading
from collections import Counter

#: metric name -> (Prometheus type, help text)
METRICS: dict[str, tuple[str, str]] = {
    "logstream_alerts_delivered_total": (
        "counter",
        "Alerts a channel accepted (the receiver answered 2xx / the mail server took it)",
    ),
    "logstream_alerts_delivery_failures_total": (
        "counter",
        "Deliveries a channel gave up on after its retries (the alert then goes to the outbox)",
    ),
    "logstream_alerts_retries_total": (
        "counter",
        "Delivery attempts after the first one (a receiver was slow, down or refused)",
    ),
    "logstream_alerts_spilled_total": (
        "counter",
        "Alerts written to the durable outbox (queue full, delivery failed, or shutdown)",
    ),
    "logstream_alerts_redelivered_total": (
        "counter",
        "Outbox alerts delivered later",
    ),
    "logstream_alerts_dropped_total": (
        "counter",
        "Alerts lost for good: outbox unwritable, full or past its age limit (each logged)",
    ),
    "logstream_alerts_grouped_total": (
        "counter",
        "Alerts a direct channel held and sent inside a grouped digest message",
    ),
    "logstream_alerts_rate_limited_total": (
        "counter",
        "Alerts a direct channel did not send on their own because their kind hit its rate limit",
    ),
    "logstream_alerts_outbox_pending": (
        "gauge",
        "Alerts waiting in the outbox of this process' alert worker",
    ),
}

_lock = threading.Lock()
_values: Counter[tuple[str, str]] = Counter()


def count(name: str, channel: str = "", amount: float = 1) -> None:
    """Add ``amount`` to the counter ``name`` (a :data:`METRICS` key) for ``channel``."""
    if name not in METRICS:
        raise KeyError(f"unknown alert metric {name!r}; add it to METRICS")
    with _lock:
        _values[(name, channel)] += amount


def set_gauge(name: str, value: float, channel: str = "") -> None:
    if name not in METRICS:
        raise KeyError(f"unknown alert metric {name!r}; add it to METRICS")
    with _lock:
        _values[(name, channel)] = value


def snapshot() -> dict[str, float]:
    """Every metric of :data:`METRICS` summed over channels (zero when nothing happened)."""
    totals = dict.fromkeys(METRICS, 0.0)
    with _lock:
        for (name, _channel), value in _values.items():
            totals[name] += value
    return totals


def samples() -> list[tuple[str, dict[str, str], float]]:
    """``(metric, labels, value)`` per metric and channel (``{"channel": name}``; no labels for
    the queue and outbox metrics), sorted."""
    with _lock:
        items = sorted(_values.items())
    return [(name, {"channel": ch} if ch else {}, value) for (name, ch), value in items]


def reset() -> None:
    """Back to zero (tests)."""
    with _lock:
        _values.clear()
