"""The alert path (SPEC §8): one :class:`Alert` shape and pluggable sinks.

The streaming job hands every detection to an :class:`AlertSink`. Delivery channels (Slack, JSON
webhook, e-mail) plug in here; the job ships with a structured log line and a JSON-lines file
sink (what tests and the supervisor read). Sinks never raise into the caller.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    dedup_key: str
    kind: str
    severity: str
    summary: str
    details: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class LogAlertSink:
    """One structured WARNING line per alert."""

    def send(self, alert: Alert) -> None:
        log.warning(
            alert.summary,
            extra={"alert": alert.kind, "severity": alert.severity, "dedup_key": alert.dedup_key},
        )


class JsonLinesAlertSink:
    """Appends each alert as one JSON line to a file (what tests and on-call tooling read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a") as out:
                out.write(json.dumps(alert.as_dict(), default=str) + "\n")
        except OSError as exc:
            log.error("alert not recorded", extra={"path": str(self.path), "error": str(exc)})


class FanOutAlertSink:
    """Delivers to every sink; one failing sink does not stop the others or the caller."""

    def __init__(self, sinks: list[AlertSink]) -> None:
        self.sinks = sinks

    def send(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception as exc:  # noqa: BLE001 - alerting must never break the pipeline
                log.error(
                    "alert delivery failed", extra={"sink": type(sink).__name__, "error": exc}
                )


def build_alert_sink(spec: str) -> AlertSink:
    """``log`` (default), ``jsonl:/path/alerts.jsonl``, or both joined with commas."""
    sinks: list[AlertSink] = []
    for part in filter(None, (item.strip() for item in spec.split(","))):
        if part == "log":
            sinks.append(LogAlertSink())
        elif part.startswith("jsonl:"):
            sinks.append(JsonLinesAlertSink(part.removeprefix("jsonl:")))
        else:
            raise ValueError(f"unknown alert sink {part!r}; use 'log' or 'jsonl:/path/file.jsonl'")
    return FanOutAlertSink(sinks or [LogAlertSink()])
