"""The alert path (SPEC §8): one :class:`Alert` shape, pluggable sinks, real delivery channels.

Anomalies (the streaming job), pipeline failures (DAG ``on_failure_callback``), quality failures
and latency levels all become an :class:`Alert` with a stable dedup key, a severity, a summary,
details and links, and go through the same sinks. Delivery never raises into the caller: a
failing channel is retried, then logged (without its URL or password), and the pipeline goes on.
Secrets never appear in code, settings files or logs.

- :mod:`~logstream.alerts.model`: the :class:`Alert` record, severities, the sink protocol.
- :mod:`~logstream.alerts.messages`: the Slack, webhook and e-mail message of an alert.
- :mod:`~logstream.alerts.targets`: each channel's address, from Airflow connections or env.
- :mod:`~logstream.alerts.channels`: log, JSON lines, Slack, webhook and e-mail delivery, with
  bounded retries.
- :mod:`~logstream.alerts.dedup`: at most one delivery per dedup key and channel in a window.
- :mod:`~logstream.alerts.background`: delivery on a worker thread for the streaming job.
- :mod:`~logstream.alerts.routing`: the ``alert_sink`` setting turned into sinks;
  :func:`notify`.
- :mod:`~logstream.alerts.airflow_callback`: :func:`task_failure_alert` for DAGs.

This package re-exports the names the rest of the project imports.
"""

from __future__ import annotations

from logstream.alerts.airflow_callback import task_failure_alert
from logstream.alerts.background import BackgroundAlertSink
from logstream.alerts.model import Alert, AlertSink
from logstream.alerts.routing import build_alert_sink, notify

__all__ = [
    "Alert",
    "AlertSink",
    "BackgroundAlertSink",
    "build_alert_sink",
    "notify",
    "task_failure_alert",
]
