"""The alert path (SPEC §8): one :class:`Alert` shape, pluggable sinks, real delivery channels.

Anomalies (the streaming job), pipeline failures (DAG ``on_failure_callback``), quality failures
and latency levels all become an :class:`Alert` with a stable dedup key, a severity, a summary,
details and links, and go through the same sinks. Prometheus Alertmanager is the recommended
receiver (it groups, inhibits, silences and routes); Slack, webhook and e-mail remain for setups
without it, grouped and rate-limited here. Delivery never raises into the caller: a failing
channel is retried, then logged (without its URL or password), and the alert waits in a durable
outbox; the pipeline goes on. Secrets never appear in code, settings files or logs.

- :mod:`~logstream.alerts.model`: the :class:`Alert` record, severities, the sink protocol.
- :mod:`~logstream.alerts.messages`: the Slack, webhook and e-mail message of an alert.
- :mod:`~logstream.alerts.targets`: each channel's address, from Airflow connections or env.
- :mod:`~logstream.alerts.channels`: log, JSON lines, Slack, webhook and e-mail delivery, with
  bounded retries.
- :mod:`~logstream.alerts.alertmanager`: the Alertmanager v2 API channel (labels, annotations).
- :mod:`~logstream.alerts.dedup`: at most one delivery per dedup key and channel in a window,
  and a per-kind hourly rate for the direct channels.
- :mod:`~logstream.alerts.grouping`: the direct channels' grouping into digests.
- :mod:`~logstream.alerts.outbox`: the durable outbox of undelivered alerts.
- :mod:`~logstream.alerts.background`: delivery on a worker thread for the streaming job, with
  the outbox behind it.
- :mod:`~logstream.alerts.counters`: delivered, retried, spilled, dropped ... counters.
- :mod:`~logstream.alerts.routing`: the ``alert_sink`` setting turned into sinks;
  :func:`notify`.
- :mod:`~logstream.alerts.airflow_callback`: :func:`task_failure_alert` for DAGs.

This package re-exports the names the rest of the project imports.
"""

from __future__ import annotations

from logstream.alerts.airflow_callback import task_failure_alert
from logstream.alerts.background import BackgroundAlertSink
from logstream.alerts.counters import snapshot as alert_counters
from logstream.alerts.model import Alert, AlertSink
from logstream.alerts.routing import build_alert_sink, notify

__all__ = [
    "Alert",
    "AlertSink",
    "BackgroundAlertSink",
    "alert_counters",
    "build_alert_sink",
    "notify",
    "task_failure_alert",
]
