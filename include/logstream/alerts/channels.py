"""The delivery channels: how one alert reaches one receiver.

- :class:`LogAlertSink` (``log``): one structured WARNING log line per alert.
- :class:`JsonLinesAlertSink` (``jsonl:/path/alerts.jsonl``): one JSON line per alert in a file.
- :class:`SlackAlertSink` (``slack``), :class:`WebhookAlertSink` (``webhook``) and
  :class:`EmailAlertSink` (``email``): the network channels, addressed through
  :mod:`logstream.alerts.targets` and rendered by :mod:`logstream.alerts.messages`.

A network channel gets ``alert_retries`` attempts (default 3) of at most ``alert_timeout_s``
seconds each (default 5; the timeout applies to each connect and each read), with a short
exponential backoff in between; HTTP 5xx, 408, 429, timeouts and connection errors are retried,
other 4xx and SMTP 5xx replies are not. Every failed attempt is logged with the URL, token and
password redacted, and ``send`` returns False instead of raising: the pipeline goes on.
"""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from logstream.alerts import counters
from logstream.alerts.messages import email_message, slack_payload, webhook_payload
from logstream.alerts.model import Alert
from logstream.alerts.targets import (
    HttpTarget,
    SmtpTarget,
    UnconfiguredError,
    resolve_slack_target,
    resolve_smtp_target,
    resolve_webhook_target,
)

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)

#: First pause between delivery attempts; doubled per attempt, capped at BACKOFF_MAX_S.
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 5.0


class LogAlertSink:
    """One structured WARNING line per alert."""

    def send(self, alert: Alert) -> bool:
        log.warning(
            alert.summary,
            extra={"alert": alert.kind, "severity": alert.severity, "dedup_key": alert.dedup_key},
        )
        counters.count("logstream_alerts_delivered_total", "log")
        return True


class JsonLinesAlertSink:
    """Appends each alert as one JSON line to a file (what tests and on-call tooling read)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a") as out:
                out.write(json.dumps(alert.as_dict(), default=str) + "\n")
        except OSError as exc:
            log.error(
                f"alert not recorded in {self.path}: {exc}",
                extra={"path": str(self.path), "error": str(exc)},
            )
            counters.count("logstream_alerts_delivery_failures_total", "jsonl")
            return False
        counters.count("logstream_alerts_delivered_total", "jsonl")
        return True


class _AttemptError(Exception):
    """One delivery attempt failed; ``retryable`` says whether another attempt can help."""

    def __init__(self, status: str, reason: str, *, retryable: bool) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.retryable = retryable


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted({s for s in secrets if s and len(s) > 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _deliver(
    channel: str,
    alert: Alert,
    attempt: Callable[[], None],
    *,
    retries: int,
    backoff_s: float,
    secrets: list[str],
    source: str,
) -> bool:
    """Run ``attempt`` up to ``retries`` times; log each failure (redacted); never raise."""
    attempts = max(1, retries)
    status, reason = "error", ""
    for number in range(1, attempts + 1):
        try:
            attempt()
        except _AttemptError as exc:
            status, reason, retryable = exc.status, exc.reason, exc.retryable
        except Exception as exc:  # noqa: BLE001 - any failure is logged, never raised
            status, reason, retryable = "error", f"{type(exc).__name__}: {exc}", True
        else:
            counters.count("logstream_alerts_delivered_total", channel)
            counters.count("logstream_alerts_retries_total", channel, number - 1)
            log.info(
                f"alert {alert.dedup_key} delivered to {channel} (attempt {number})",
                extra={"channel": channel, "dedup_key": alert.dedup_key, "attempts": number},
            )
            return True
        reason = _redact(reason, secrets)[:500]
        # channel, status and reason go in the message too: Airflow's task log drops ``extra``
        log.warning(
            f"alert delivery to {channel} failed (attempt {number}/{attempts}): {status} {reason}",
            extra={
                "channel": channel,
                "dedup_key": alert.dedup_key,
                "attempt": number,
                "of": attempts,
                "status": status,
                "reason": reason,
            },
        )
        if not retryable:
            break
        if number < attempts:
            time.sleep(min(BACKOFF_MAX_S, backoff_s * 2 ** (number - 1)))
    counters.count("logstream_alerts_delivery_failures_total", channel)
    counters.count("logstream_alerts_retries_total", channel, number - 1)
    log.error(
        f"alert {alert.dedup_key} not delivered to {channel} after {number} attempt(s), last "
        f"{status} {reason}; check the receiver and {source}",
        extra={
            "channel": channel,
            "dedup_key": alert.dedup_key,
            "attempts": number,
            "status": status,
            "reason": reason,
        },
    )
    return False


def _post_json(target: HttpTarget, payload: dict | list, timeout_s: float) -> Callable[[], None]:
    """One POST of ``payload`` to ``target``; raises _AttemptError on anything but 2xx."""

    def attempt() -> None:
        scheme = urlsplit(target.url).scheme.lower()
        if scheme not in ("http", "https"):
            raise _AttemptError(
                "bad-url", f"not an http(s) URL; fix {target.source}", retryable=False
            )
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            target.url,
            data=json.dumps(payload, default=str).encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "logstream-alerts",
                **target.headers,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                response.read(1024)
        except urllib.error.HTTPError as exc:
            code = exc.code
            raise _AttemptError(
                f"http-{code}", exc.reason or "", retryable=code >= 500 or code in (408, 429)
            ) from None
        except TimeoutError:
            raise _AttemptError(
                "timeout", f"no answer within {timeout_s}s", retryable=True
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _AttemptError(
                    "timeout", f"no answer within {timeout_s}s", retryable=True
                ) from None
            raise _AttemptError("unreachable", str(exc.reason), retryable=True) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:  # resets, bad replies
            raise _AttemptError("error", f"{type(exc).__name__}: {exc}", retryable=True) from None

    return attempt


def _http_sink_send(
    channel: str,
    alert: Alert,
    resolve: Callable[[], HttpTarget],
    payload: Callable[[Alert], dict],
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> bool:
    try:
        target = resolve()
    except UnconfiguredError as exc:
        log.error(str(exc), extra={"channel": channel, "dedup_key": alert.dedup_key})
        return False
    return _deliver(
        channel,
        alert,
        _post_json(target, payload(alert), timeout_s),
        retries=retries,
        backoff_s=backoff_s,
        secrets=target.secrets,
        source=target.source,
    )


class ChannelSink:
    """Shared delivery knobs of the network channels."""

    def __init__(
        self, *, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = BACKOFF_BASE_S
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings: Settings) -> ChannelSink:
        return cls(timeout_s=settings.alert_timeout_s, retries=settings.alert_retries)


class SlackAlertSink(ChannelSink):
    """Posts to a Slack incoming webhook (``logstream_slack`` / LOGSTREAM_SLACK_WEBHOOK_URL)."""

    def send(self, alert: Alert) -> bool:
        return _http_sink_send(
            "slack",
            alert,
            resolve_slack_target,
            slack_payload,
            self.timeout_s,
            self.retries,
            self.backoff_s,
        )


class WebhookAlertSink(ChannelSink):
    """Posts the alert as JSON (``logstream_webhook`` / LOGSTREAM_ALERT_WEBHOOK_URL)."""

    def send(self, alert: Alert) -> bool:
        return _http_sink_send(
            "webhook",
            alert,
            resolve_webhook_target,
            webhook_payload,
            self.timeout_s,
            self.retries,
            self.backoff_s,
        )


class EmailAlertSink(ChannelSink):
    """Sends a plain-text e-mail over SMTP (``logstream_smtp`` / LOGSTREAM_SMTP_*)."""

    def send(self, alert: Alert) -> bool:
        try:
            target = resolve_smtp_target()
        except UnconfiguredError as exc:
            log.error(str(exc), extra={"channel": "email", "dedup_key": alert.dedup_key})
            return False
        message = email_message(alert, target.sender, target.recipients)
        return _deliver(
            "email",
            alert,
            self._attempt(target, message),
            retries=self.retries,
            backoff_s=self.backoff_s,
            secrets=target.secrets,
            source=target.source,
        )

    def _attempt(self, target: SmtpTarget, message: EmailMessage) -> Callable[[], None]:
        def attempt() -> None:
            try:
                if target.implicit_tls:
                    client: smtplib.SMTP = smtplib.SMTP_SSL(
                        target.host,
                        target.port,
                        timeout=self.timeout_s,
                        context=ssl.create_default_context(),
                    )
                else:
                    client = smtplib.SMTP(target.host, target.port, timeout=self.timeout_s)
                with client:
                    if target.starttls:
                        client.starttls(context=ssl.create_default_context())
                    if target.user:
                        client.login(target.user, target.password)
                    client.send_message(message, target.sender, list(target.recipients))
            except smtplib.SMTPResponseException as exc:
                text = exc.smtp_error.decode(errors="replace") if exc.smtp_error else ""
                raise _AttemptError(
                    f"smtp-{exc.smtp_code}", text, retryable=exc.smtp_code < 500
                ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = sorted({code for code, _ in exc.recipients.values()})
                raise _AttemptError(
                    f"smtp-{codes[0] if codes else 550}",
                    f"{len(exc.recipients)} recipient(s) refused",
                    retryable=bool(codes) and all(code < 500 for code in codes),
                ) from None
            except smtplib.SMTPNotSupportedError as exc:
                raise _AttemptError(
                    "smtp-unsupported",
                    f"{exc}; check starttls/ssl in {target.source}",
                    retryable=False,
                ) from None
            except TimeoutError:
                raise _AttemptError(
                    "timeout", f"no answer within {self.timeout_s}s", retryable=True
                ) from None
            except OSError as exc:  # refused, reset, disconnected, TLS errors
                raise _AttemptError(
                    "unreachable", f"{type(exc).__name__}: {exc}", retryable=True
                ) from None

        return attempt
