"""Which channels an alert goes to: the ``alert_sink`` setting turned into sinks, and
:func:`notify`, the one call the DAGs, the batch jobs and the supervisor use.

``alert_sink`` (``LOGSTREAM_ALERT_SINK``) lists the channels, comma-separated, for example
``LOGSTREAM_ALERT_SINK=log,slack,email``: ``log``, ``jsonl:/path/alerts.jsonl``, ``alertmanager``
(the local Alertmanager; ``alertmanager:http://host:port`` for another one, see
:mod:`logstream.alerts.alertmanager`), ``slack``, ``webhook`` and ``email`` (see
:mod:`logstream.alerts.channels`). The default is ``log,alertmanager``. A listed channel without
an address logs one error naming what to set, and the other channels still deliver.

:func:`notify` (one alert, then the process may exit) deduplicates per channel and limits each
direct channel to ``alert_kind_rate_per_hour`` messages per kind; a channel that fails leaves
the alert in the outbox (:mod:`logstream.alerts.outbox`) for the streaming job's alert worker.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from logstream.alerts.alertmanager import AlertmanagerAlertSink
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
from logstream.alerts.outbox import Outbox

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)


class FanOutAlertSink:
    """Delivers to every sink; one failing sink does not stop the others or the caller.

    ``names`` are the channels' names in ``alert_sink`` (what outbox entries record);
    ``settings`` carries the outbox and grouping knobs a
    :class:`~logstream.alerts.background.BackgroundAlertSink` takes from it. Returns True only
    when every sink delivered.
    """

    def __init__(
        self,
        sinks: list[AlertSink],
        names: list[str] | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.sinks = sinks
        self.names = names or [f"sink{number}" for number in range(len(sinks))]
        if len(self.names) != len(sinks):
            raise ValueError("FanOutAlertSink needs one name per sink")
        self.settings = settings

    @property
    def named(self) -> list[tuple[str, AlertSink]]:
        return list(zip(self.names, self.sinks, strict=True))

    def send(self, alert: Alert) -> bool:
        return not self.send_each(alert)

    def send_each(self, alert: Alert, only: list[str] | None = None) -> list[str]:
        """Deliver to every sink (those named in ``only``); the names of those that failed."""
        return [
            name
            for name, sink in self.named
            if (only is None or name in only) and not safe_send(sink, alert)
        ]


#: The channels that page people directly (grouped and rate-limited by logstream itself).
DIRECT_CHANNELS = ("slack", "webhook", "email")

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


def _parse(spec: str) -> list[str]:
    channel_names = [item.strip() for item in spec.split(",") if item.strip()] or ["log"]
    for name in channel_names:
        if name not in ("log", "alertmanager", *_CHANNELS) and not name.startswith(
            ("jsonl:", "alertmanager:")
        ):
            raise ValueError(
                f"unknown alert sink {name!r} in alert_sink={spec!r}; use a comma-separated "
                f"list of log, jsonl:/path/file.jsonl, alertmanager, "
                f"alertmanager:http://HOST:PORT, slack, webhook, email"
            )
    return list(dict.fromkeys(channel_names))


def _channel(name: str, settings: Settings | None) -> AlertSink:
    if name == "log":
        return LogAlertSink()
    if name.startswith("jsonl:"):
        return JsonLinesAlertSink(name.removeprefix("jsonl:"))
    if name == "alertmanager" or name.startswith("alertmanager:"):
        url = name.removeprefix("alertmanager").removeprefix(":") or None
        if settings is None:
            return AlertmanagerAlertSink(url)
        return AlertmanagerAlertSink.from_settings(settings, url)
    return _CHANNELS[name].from_settings(settings)


def build_alert_sink(
    spec: str, settings: Settings | None = None, *, dedup: bool = False
) -> FanOutAlertSink:
    """Sinks for ``spec``: ``log``, ``jsonl:/path/alerts.jsonl``, ``alertmanager``,
    ``alertmanager:http://host:port``, ``slack``, ``webhook``, ``email``, joined with commas
    (empty = ``log``).

    ``settings`` supplies timeouts, retries, the dedup window, the state folder (the local
    Alertmanager, the outbox) and the grouping knobs (loaded from the environment when omitted
    and needed). With ``dedup`` every channel is wrapped in a :class:`DedupAlertSink` over
    ``<state_dir>/alerts/sent.json``, the direct channels with a per-kind hourly rate. Raises
    ValueError for an unknown channel name or a malformed Alertmanager URL.
    """
    channel_names = _parse(spec)
    needs = ("alertmanager", *_CHANNELS)
    if settings is None and (dedup or any(name in needs for name in channel_names)):
        settings = _load_settings()
    store = DedupStore(dedup_state_path(settings)) if dedup and settings is not None else None
    sinks: list[AlertSink] = []
    for name in channel_names:
        sink = _channel(name, settings)
        if store is not None:
            rate = settings.alert_kind_rate_per_hour if name in DIRECT_CHANNELS else None
            sink = DedupAlertSink(
                sink, store, settings.alert_dedup_seconds, scope=name, rate_per_hour=rate
            )
        sinks.append(sink)
    return FanOutAlertSink(sinks, channel_names, settings=settings)


def notify(alert: Alert, spec: str | None = None, settings: Settings | None = None) -> bool:
    """Deliver one alert through the configured channels (``alert_sink`` setting), at most once
    per dedup key and channel within ``alert_dedup_seconds``. A channel that fails after its
    retries gets the alert through the outbox later. Never raises; returns whether every
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
        return safe_send(LogAlertSink(), alert)
    try:
        failed = sink.send_each(alert)
    except Exception as exc:  # noqa: BLE001 - alerting must never break the pipeline
        log.error(f"alert delivery failed: {exc}", extra={"error": str(exc)})
        return False
    if failed:
        Outbox.from_settings(settings).spill(alert, failed, "delivery_failed")
    return not failed
