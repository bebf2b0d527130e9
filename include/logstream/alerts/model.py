"""What an alert is: the :class:`Alert` record, its severities and the :class:`AlertSink` protocol.

Anomalies, pipeline failures, quality failures and latency levels all become one :class:`Alert`
with a stable dedup key, so every channel and every wrapper (dedup, fan-out, background) handles
one shape. :func:`safe_send` is the one place that turns a sink's exception into a logged
failure: delivery never raises into the pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)

#: Slack emoji and display label per severity; unknown severities show upper-cased.
SEVERITY_STYLE = {
    "critical": (":rotating_light:", "CRITICAL"),
    "error": (":red_circle:", "ERROR"),
    "warning": (":warning:", "WARNING"),
    "info": (":information_source:", "INFO"),
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Alert:
    """One thing on-call should know about.

    ``dedup_key`` is stable for the same underlying event (the same anomaly, the same failed task
    run), so repeated deliveries can be suppressed; ``links`` map a name to a URL or a path
    (Airflow run, task log, table, window). ``service`` names the service concerned when there
    is one (a per-service anomaly), else is empty: receivers group alerts by kind and service.
    """

    dedup_key: str
    kind: str
    severity: str
    summary: str
    details: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)
    service: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Alert:
        """The alert :meth:`as_dict` wrote (unknown keys ignored, so old records still load)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    @property
    def severity_label(self) -> str:
        return SEVERITY_STYLE.get(self.severity.lower(), ("", self.severity.upper()))[1]


class AlertSink(Protocol):
    """Delivers alerts. ``send`` never raises; channel sinks return whether delivery succeeded
    (``None`` from a sink counts as delivered)."""

    def send(self, alert: Alert) -> bool | None: ...


def safe_send(sink: AlertSink, alert: Alert) -> bool:
    """``sink.send(alert)`` as a bool (None counts as delivered); an exception is logged as a
    failed delivery, never raised."""
    try:
        return sink.send(alert) is not False
    except Exception as exc:  # noqa: BLE001 - alerting must never break the pipeline
        log.error(
            f"alert delivery through {type(sink).__name__} failed: {exc}",
            extra={"sink": type(sink).__name__, "error": str(exc)},
        )
        return False
