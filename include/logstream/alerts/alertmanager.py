"""The Alertmanager channel: each :class:`Alert` POSTed to Prometheus Alertmanager's v2 API.

``alert_sink`` entries: ``alertmanager:http://host:port`` (any Alertmanager; a path prefix such as
``http://host/am`` is kept) or plain ``alertmanager``, the local one ``logstream up`` runs (its
address is recorded under ``<state_dir>/alertmanager/``; while none was ever started there, the
entry delivers nothing and says so once at INFO level).

Alertmanager then groups, inhibits, silences and routes (``deploy/alertmanager/alertmanager.yml``).
An alert becomes (:func:`alertmanager_alert`):

- labels ``alertname`` (``Logstream<Kind>``; ``LogstreamPipelineDown`` for the kinds in
  :data:`PIPELINE_DOWN_KINDS`), ``kind``, ``service`` (when the alert names one), ``severity``,
  ``category`` (``pipeline_down``, ``pipeline``, ``data``, ``quality``, ``latency`` or
  ``other``: what the routes and the inhibit rule match on) and ``dedup_key`` (Alertmanager tells
  alerts apart by their labels, so two anomalies of one kind and service stay two alerts);
- annotations ``summary``, ``details`` and ``links`` (``name: value`` lines);
- ``startsAt`` = when the alert was raised, ``endsAt`` = ``alertmanager_resolve_s`` later (an
  anomaly is an event: it resolves by itself), at least :data:`MIN_FIRING_S` from now so that an
  alert delivered late from the outbox still fires; ``generatorURL`` = its first http(s) link.

Log lines are attacker-controlled, so every label value and annotation is sanitized
(:func:`label_value`, :func:`annotation`): control and format characters removed, bounded
length. Receivers' templates escape for their medium (``deploy/alertmanager/logstream.tmpl``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from logstream.alerts.channels import BACKOFF_BASE_S, _deliver, _post_json
from logstream.alerts.model import Alert
from logstream.alerts.targets import HttpTarget
from logstream.catalog import anomalies

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)

#: Kinds that mean the streaming job is not running: they inhibit data alerts.
PIPELINE_DOWN_KINDS = frozenset({"restart_loop", "checkpoint_invalid", "pipeline_down"})
#: The anomaly kinds of SPEC §5.2: data alerts, which a pipeline-down alert inhibits.
DATA_KINDS = frozenset(anomalies.KINDS)
_CATEGORIES = {"pipeline_failure": "pipeline", "quality_failure": "quality", "latency": "latency"}

LABEL_MAX = 200  # characters of a label value
SUMMARY_MAX = 500
TEXT_MAX = 4_000  # details and links annotations
MIN_FIRING_S = 300
_LINES_KEPT = "\n"
_SPACES = re.compile(r"[ \t]+")


def _strip(text: object, keep: str = "") -> str:
    """``text`` without control, format and separator characters (``keep`` excepted)."""
    return "".join(
        ch
        for ch in str(text)
        if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def label_value(value: object, limit: int = LABEL_MAX) -> str:
    """One line, no control characters, at most ``limit`` characters; a cut value ends with a
    hash of the whole, so two long values that share a prefix stay two labels."""
    text = _SPACES.sub(" ", _strip(str(value).replace("\n", " ").replace("\t", " "))).strip()
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: limit - 14]}…~{digest}"


def annotation(value: object, limit: int) -> str:
    """Text kept on its lines, without control characters, at most ``limit`` characters."""
    text = _strip(str(value).replace("\t", " "), keep=_LINES_KEPT)
    return _cut(text.strip(), limit)


def alertname(kind: str) -> str:
    """``LogstreamPipelineDown`` for the pipeline-down kinds, else ``Logstream`` + CamelCase."""
    if kind in PIPELINE_DOWN_KINDS:
        return "LogstreamPipelineDown"
    words = re.split(r"[^0-9A-Za-z]+", kind)
    name = "".join(word[:1].upper() + word[1:] for word in words if word)
    return label_value(f"Logstream{name or 'Alert'}", 100)


def category(kind: str) -> str:
    if kind in PIPELINE_DOWN_KINDS:
        return "pipeline_down"
    if kind in DATA_KINDS:
        return "data"
    return _CATEGORIES.get(kind, "other")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lines(mapping: dict) -> str:
    return "\n".join(f"{_strip(k)}: {_strip(v)}" for k, v in mapping.items() if v not in ("", None))


def alertmanager_alert(
    alert: Alert, resolve_s: float = 3600.0, now: datetime | None = None
) -> dict:
    """The v2 API body of one alert (``POST /api/v2/alerts`` takes a list of these)."""
    now = now or datetime.now(UTC)
    starts = _instant(alert.created_at)
    ends = max(starts + timedelta(seconds=resolve_s), now + timedelta(seconds=MIN_FIRING_S))
    labels = {
        "alertname": alertname(alert.kind),
        "kind": label_value(alert.kind, 100),
        "service": label_value(alert.service),
        "severity": label_value(alert.severity.lower(), 20),
        "category": category(alert.kind),
        "dedup_key": label_value(alert.dedup_key),
    }
    annotations = {
        "summary": annotation(" ".join(str(alert.summary).split()), SUMMARY_MAX),
        "details": annotation(_lines(alert.details), TEXT_MAX),
        "links": annotation(_lines(alert.links), TEXT_MAX),
    }
    body = {
        "labels": {k: v for k, v in labels.items() if v},
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": _iso(starts),
        "endsAt": _iso(ends),
    }
    generator = next(
        (
            str(v)
            for v in alert.links.values()
            if isinstance(v, str) and v.startswith(("http://", "https://"))
        ),
        "",
    )
    if generator and len(generator) <= 2_000 and urlsplit(generator).netloc:
        body["generatorURL"] = _strip(generator)
    return body


def recorded_url(settings: Settings) -> str:
    """The local Alertmanager's URL as ``logstream up`` recorded it, or "" when none was set up."""
    from logstream.ops.alertmanager import recorded_url as recorded

    return recorded(settings)


class AlertmanagerAlertSink:
    """POSTs each alert to ``<url>/api/v2/alerts`` with the network channels' retries.

    ``url`` None means the local Alertmanager (looked up at each send, so one started after
    this sink was built is found); ``settings`` then locates it.
    """

    channel = "alertmanager"

    def __init__(
        self,
        url: str | None = None,
        *,
        settings: Settings | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = BACKOFF_BASE_S,
        resolve_s: float = 3600.0,
    ) -> None:
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(
                f"alert sink 'alertmanager:{url}' is not an http(s) URL; use "
                "alertmanager:http://HOST:PORT"
            )
        self.url = url.rstrip("/") if url else None
        self.settings = settings
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.resolve_s = resolve_s
        self._told_unset = False

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> AlertmanagerAlertSink:
        return cls(
            url,
            settings=settings,
            timeout_s=settings.alert_timeout_s,
            retries=settings.alert_retries,
            resolve_s=settings.alertmanager_resolve_s,
        )

    def _base_url(self) -> str:
        if self.url:
            return self.url
        return recorded_url(self.settings) if self.settings is not None else ""

    def send(self, alert: Alert) -> bool:
        base = self._base_url()
        if not base:
            if not self._told_unset:
                self._told_unset = True
                where = Path(self.settings.state_dir) / "alertmanager" if self.settings else "?"
                log.info(
                    f"alert sink 'alertmanager': no local Alertmanager was started ({where} "
                    "has none); alerts go to the other channels. Start one with `logstream up` "
                    "or set alert_sink=alertmanager:http://HOST:PORT",
                    extra={"channel": self.channel},
                )
            return True
        target = HttpTarget(f"{base}/api/v2/alerts", "the alert_sink setting (alertmanager)")
        return _deliver(
            self.channel,
            alert,
            _post_json(target, [alertmanager_alert(alert, self.resolve_s)], self.timeout_s),
            retries=self.retries,
            backoff_s=self.backoff_s,
            secrets=[],
            source=target.source,
        )
