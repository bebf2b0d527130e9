"""Which channels an alert goes to: the ``alert_sink`` setting turned into sinks, and
:func:`notify`, the one call the DAGs, the batch jobs and the supervisor use.

``alert_sink`` (``LOGSTREAM_ALERT_SINK``) lists the channels, comma-separated, for example
``LOGSTREAM_ALERT_SINK=log,slack,email``: ``log`` (the default), ``jsonl:/path/alerts.jsonl``,
``slack``, ``webhook`` and ``email`` (see :mod:`logstream.alerts.channels`). A listed channel
without an address logs one error naming what to set, and the other channels still deliver.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from logstream.alerts.channels import (
    ChannelSink,
    EmailAlertSink,
    JsonLinesAlertSink,
    LogAlertSink,
    SlackAlertSink,
    WebhookAlertSink,
)
from logstream.alerts.dedup import DedupAlertSink, DedupStore, dedup_state_path
from logstream.alerts.model import Alert, AlertSink, safe_send

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)


class FanOutAlertSink:
    """Delivers to every sink; one failing sink does not stop the others or the caller.

    Returns True only when every sink delivered.
    """

    def __init__(self, sinks: list[AlertSink]) -> None:
        self.sinks = sinks

    def send(self, alert: Alert) -> bool:
        results = [safe_send(sink, alert) for sink in self.sinks]
        return all(results)


_CHANNELS: dict[str, type[ChannelSink]] = {
    "slack": SlackAlertSink,
    "webhook": WebhookAlertSink,
    "email": EmailAlertSink,
}


def _load_settings() -> Settings:
    from logstream.config import Settings

    try:
        return Settings.load()
    except Exception as exc:  # noqa: BLE001 - alerting must work with a broken config
        log.error(
            f"settings could not be loaded ({exc}); alerting with default delivery settings",
            extra={"error": str(exc)},
        )
        return Settings()


def build_alert_sink(
    spec: str, settings: Settings | None = None, *, dedup: bool = False
) -> AlertSink:
    """Sinks for ``spec``: ``log``, ``jsonl:/path/alerts.jsonl``, ``slack``, ``webhook``,
    ``email``, joined with commas (empty = ``log``).

    ``settings`` supplies timeouts, retries and the dedup window and state folder (loaded from the
    environment when omitted and needed). With ``dedup`` every channel is wrapped in a
    :class:`DedupAlertSink` over ``<state_dir>/alerts/sent.json``. Raises ValueError for an
    unknown channel name.
    """
    channel_names = [item.strip() for item in spec.split(",") if item.strip()] or ["log"]
    for name in channel_names:
        if name not in ("log", *_CHANNELS) and not name.startswith("jsonl:"):
            raise ValueError(
                f"unknown alert sink {name!r} in alert_sink={spec!r}; use a comma-separated "
                f"list of log, jsonl:/path/file.jsonl, slack, webhook, email"
            )
    if settings is None and (dedup or any(name in _CHANNELS for name in channel_names)):
        settings = _load_settings()
    store = DedupStore(dedup_state_path(settings)) if dedup and settings is not None else None
    sinks: list[AlertSink] = []
    for name in channel_names:
        if name == "log":
            sink: AlertSink = LogAlertSink()
        elif name.startswith("jsonl:"):
            sink = JsonLinesAlertSink(name.removeprefix("jsonl:"))
        else:
            sink = _CHANNELS[name].from_settings(settings)
        if store is not None:
            sink = DedupAlertSink(sink, store, settings.alert_dedup_seconds, scope=name)
        sinks.append(sink)
    return FanOutAlertSink(sinks)


def notify(alert: Alert, spec: str | None = None, settings: Settings | None = None) -> bool:
    """Deliver one alert through the configured channels (``alert_sink`` setting), at most once
    per dedup key and channel within ``alert_dedup_seconds``. Never raises; returns whether every
    channel delivered (or had already delivered)."""
    try:
        settings = settings or _load_settings()
        sink = build_alert_sink(
            spec if spec is not None else settings.alert_sink, settings, dedup=True
        )
    except Exception as exc:  # noqa: BLE001 - a broken alert config must not hide the failure
        log.error(
            f"alert configuration is invalid ({exc}); logging the alert instead. "
            "Fix LOGSTREAM_ALERT_SINK",
            extra={"error": str(exc)},
        )
        sink = LogAlertSink()
    return safe_send(sink, alert)
