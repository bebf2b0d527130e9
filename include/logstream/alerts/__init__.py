"""The alert path (SPEC §8): one :class:`Alert` shape, pluggable sinks, real delivery channels.

Anomalies (the streaming job), pipeline failures (DAG ``on_failure_callback``), quality failures
and latency levels all become an :class:`Alert` with a stable dedup key, a severity, a summary,
details and links, and go through the same sinks. Delivery never raises into the caller: a
failing channel is retried, then logged (without its URL or password), and the pipeline goes on.

Configuration
-------------

List the channels in the `alert_sink` setting (`LOGSTREAM_ALERT_SINK`), comma-separated, for
example `LOGSTREAM_ALERT_SINK=log,slack,email`:

- `log` (default): one structured WARNING log line per alert.
- `jsonl:/path/alerts.jsonl`: appends each alert as one JSON line to a file.
- `slack`: a Slack incoming webhook. Airflow connection `logstream_slack` with the webhook URL in
  `host` or `password` (or `host=https://hooks.slack.com/services` and the token part in
  `password`), or the environment variable `LOGSTREAM_SLACK_WEBHOOK_URL`.
- `webhook`: a generic JSON webhook (HTTP POST of the alert as JSON). Airflow connection
  `logstream_webhook` with the URL in `extra.url`, or in `host` (a full URL, or a host name with
  `port`, `schema` as the path and the connection type `http`/`https` as the scheme); optional
  request headers (for example a bearer token) in `extra.headers`. Or the environment variable
  `LOGSTREAM_ALERT_WEBHOOK_URL`.
- `email`: e-mail over SMTP. Airflow connection `logstream_smtp` with `host`, `port`, `login`,
  `password` and `extra` `{"from": "logstream@example.com", "to": "a@example.com,b@example.com",
  "starttls": true}` (`"ssl": true` for implicit TLS, usually port 465). Or the environment
  variables `LOGSTREAM_SMTP_HOST`, `LOGSTREAM_SMTP_PORT` (default 25), `LOGSTREAM_SMTP_USER`,
  `LOGSTREAM_SMTP_PASSWORD`, `LOGSTREAM_SMTP_FROM`, `LOGSTREAM_SMTP_TO` (comma-separated),
  `LOGSTREAM_SMTP_STARTTLS` and `LOGSTREAM_SMTP_SSL` (`true`/`false`, default false). Connection
  fields win; missing ones are taken from the environment. The sender defaults to the login when
  it is an address, else `logstream@<hostname>`.

Addresses and secrets are resolved each time an alert is sent, so a rotated secret takes effect
without a restart. Airflow connections are consulted when the alert is sent from an Airflow
process (a task or a failure callback, where Airflow serves connections from its metadata DB or
secrets backend) or when `AIRFLOW_CONN_<CONN_ID>` is set in the environment; other processes (the
Spark streaming job) read the `LOGSTREAM_*` variables and never import Airflow for this. A listed
channel without an address logs one error naming the connection id and the variable to set, and
the other channels still deliver. Secrets never appear in code, settings files or logs.

Delivery: each channel gets `alert_retries` attempts (default 3) of at most `alert_timeout_s`
seconds each (default 5; the timeout applies to each connect and each read), with a short
exponential backoff in between; HTTP 5xx, 408, 429, timeouts and connection errors are retried,
other 4xx and SMTP 5xx replies are not. `notify()` (used by the DAG failure callback and the
batch jobs) delivers a given dedup key at most once per `alert_dedup_seconds` (default 3600) per
channel; the record lives in `<state_dir>/alerts/sent.json`, so repeated Airflow runs do not page
twice. A channel whose delivery failed is not recorded and is tried again by the next call. The
streaming job builds its sinks once with `build_alert_sink(spec, settings)`, without this record:
every anomaly already carries its own dedup key, and delivers through a
:class:`BackgroundAlertSink`, so a slow or hanging receiver never stalls a micro-batch (a bounded
queue and one worker thread; alerts queued at shutdown get up to 10 s to go out).

The messages: Slack gets `text` (severity and summary, what notifications show) and `blocks`
(summary, details, links, dedup key); the webhook gets `{"source": "logstream", "dedup_key",
"kind", "severity", "summary", "details", "links", "created_at"}`; e-mail gets the subject
`[logstream][SEVERITY] summary`, a plain-text body with details and links, and the header
`X-Logstream-Dedup-Key`.
"""

from __future__ import annotations

import contextlib
import email.policy
import fcntl
import http.client
import json
import logging
import os
import queue
import smtplib
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)

#: Airflow connection ids per channel (override nothing else: one id per channel).
SLACK_CONN_ID = "logstream_slack"
WEBHOOK_CONN_ID = "logstream_webhook"
SMTP_CONN_ID = "logstream_smtp"

#: First pause between delivery attempts; doubled per attempt, capped at BACKOFF_MAX_S.
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 5.0

_SEVERITY_STYLE = {
    "critical": (":rotating_light:", "CRITICAL"),
    "error": (":red_circle:", "ERROR"),
    "warning": (":warning:", "WARNING"),
    "info": (":information_source:", "INFO"),
}
_SUMMARY_MAX = 200  # subject lines and Slack notification text
_TEXT_MAX = 2_900  # Slack section text limit is 3000 characters
_FIELD_MAX = 1_900  # Slack field text limit is 2000 characters
_ERROR_EXCERPT_MAX = 2_000  # error text carried by a pipeline-failure alert


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Alert:
    """One thing on-call should know about.

    ``dedup_key`` is stable for the same underlying event (the same anomaly, the same failed task
    run), so repeated deliveries can be suppressed; ``links`` map a name to a URL or a path
    (Airflow run, task log, table, window).
    """

    dedup_key: str
    kind: str
    severity: str
    summary: str
    details: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def severity_label(self) -> str:
        return _SEVERITY_STYLE.get(self.severity.lower(), ("", self.severity.upper()))[1]


class AlertSink(Protocol):
    """Delivers alerts. ``send`` never raises; channel sinks return whether delivery succeeded
    (``None`` from a sink counts as delivered)."""

    def send(self, alert: Alert) -> bool | None: ...


class LogAlertSink:
    """One structured WARNING line per alert."""

    def send(self, alert: Alert) -> bool:
        log.warning(
            alert.summary,
            extra={"alert": alert.kind, "severity": alert.severity, "dedup_key": alert.dedup_key},
        )
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
            return False
        return True


class FanOutAlertSink:
    """Delivers to every sink; one failing sink does not stop the others or the caller.

    Returns True only when every sink delivered.
    """

    def __init__(self, sinks: list[AlertSink]) -> None:
        self.sinks = sinks

    def send(self, alert: Alert) -> bool:
        results = [_safe_send(sink, alert) for sink in self.sinks]
        return all(results)


# --------------------------------------------------------------------------------------------
# Where the channels point: Airflow connections or environment, resolved at send time
# --------------------------------------------------------------------------------------------


class _UnconfiguredError(Exception):
    """A listed channel has no address; the message says what to set."""


@dataclass(frozen=True)
class _HttpTarget:
    url: str
    source: str  # "Airflow connection 'logstream_slack'" or "LOGSTREAM_SLACK_WEBHOOK_URL"
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def secrets(self) -> list[str]:
        parts = urlsplit(self.url)
        return [self.url, parts.path, parts.query, parts.password or "", *self.headers.values()]


@dataclass(frozen=True)
class _SmtpTarget:
    host: str
    port: int
    user: str
    password: str
    sender: str
    recipients: tuple[str, ...]
    starttls: bool
    implicit_tls: bool
    source: str

    @property
    def secrets(self) -> list[str]:
        return [self.password]


def _airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None when Airflow is not in play or lacks it.

    Airflow is only asked from an Airflow process (already imported) or when the connection is
    defined as ``AIRFLOW_CONN_<ID>``: importing Airflow elsewhere (the Spark driver) costs
    seconds and reconfigures logging.
    """
    if "airflow" not in sys.modules and f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ:
        return None
    try:
        from airflow.sdk import Connection

        return Connection.get(conn_id)
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - not found / no backend: fall back to the environment
        return None
    try:
        from airflow.hooks.base import BaseHook

        return BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - Airflow absent or connection missing
        return None


def _extra(conn: Any) -> dict:
    try:
        extra = conn.extra_dejson
    except Exception:  # noqa: BLE001 - malformed extra: treat as empty
        return {}
    return extra if isinstance(extra, dict) else {}


def _url_from_connection(conn: Any, *, token_in_password: bool) -> str:
    """The URL in ``extra.url``, a URL-valued ``password``, or ``host``/``port``/``schema``."""
    extra_url = str(_extra(conn).get("url") or "").strip()
    if extra_url:
        return extra_url
    host = (conn.host or "").strip()
    password = (conn.password or "").strip()
    if password.startswith(("http://", "https://")):
        return password
    if not host:
        return ""
    if "://" in host:
        base = host
    else:
        scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
        base = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
        if conn.schema:
            base = f"{base}/{conn.schema.lstrip('/')}"
    if token_in_password and password:
        base = f"{base.rstrip('/')}/{password.lstrip('/')}"
    return base


def resolve_slack_target() -> _HttpTarget:
    """The Slack incoming-webhook URL from ``logstream_slack`` or LOGSTREAM_SLACK_WEBHOOK_URL."""
    conn = _airflow_connection(SLACK_CONN_ID)
    if conn is not None:
        url = _url_from_connection(conn, token_in_password=True)
        if url:
            return _HttpTarget(url, f"Airflow connection {SLACK_CONN_ID!r}")
    url = os.environ.get("LOGSTREAM_SLACK_WEBHOOK_URL", "").strip()
    if url:
        return _HttpTarget(url, "LOGSTREAM_SLACK_WEBHOOK_URL")
    raise _UnconfiguredError(
        f"alert channel 'slack' has no webhook URL: create the Airflow connection "
        f"{SLACK_CONN_ID!r} (URL in host or password) or set LOGSTREAM_SLACK_WEBHOOK_URL"
    )


def resolve_webhook_target() -> _HttpTarget:
    """The generic webhook URL (and headers) from ``logstream_webhook`` or the environment."""
    conn = _airflow_connection(WEBHOOK_CONN_ID)
    if conn is not None:
        url = _url_from_connection(conn, token_in_password=False)
        headers = _extra(conn).get("headers") or {}
        if url:
            return _HttpTarget(
                url,
                f"Airflow connection {WEBHOOK_CONN_ID!r}",
                {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
            )
    url = os.environ.get("LOGSTREAM_ALERT_WEBHOOK_URL", "").strip()
    if url:
        return _HttpTarget(url, "LOGSTREAM_ALERT_WEBHOOK_URL")
    raise _UnconfiguredError(
        f"alert channel 'webhook' has no URL: create the Airflow connection {WEBHOOK_CONN_ID!r} "
        f"(URL in host or extra.url) or set LOGSTREAM_ALERT_WEBHOOK_URL"
    )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def resolve_smtp_target() -> _SmtpTarget:
    """SMTP server, credentials and addresses from ``logstream_smtp``, filled in from the env."""
    conn = _airflow_connection(SMTP_CONN_ID)
    extra = _extra(conn) if conn is not None else {}
    env = os.environ

    def pick(conn_value: Any, env_name: str) -> str:
        if conn_value not in (None, ""):
            return str(conn_value).strip()
        return env.get(env_name, "").strip()

    host = pick(getattr(conn, "host", None), "LOGSTREAM_SMTP_HOST")
    recipients_raw = extra.get("to") or env.get("LOGSTREAM_SMTP_TO", "")
    if isinstance(recipients_raw, str):
        recipients_raw = recipients_raw.split(",")
    recipients = tuple(str(r).strip() for r in recipients_raw if str(r).strip())
    source = f"Airflow connection {SMTP_CONN_ID!r}" if conn is not None else "LOGSTREAM_SMTP_*"
    if not host or not recipients:
        missing = "host" if not host else "recipients"
        raise _UnconfiguredError(
            f"alert channel 'email' has no SMTP {missing}: create the Airflow connection "
            f'{SMTP_CONN_ID!r} (host, port, login, password, extra {{"from", "to"}}) or set '
            f"LOGSTREAM_SMTP_HOST and LOGSTREAM_SMTP_TO"
        )
    implicit_tls = _flag(extra.get("ssl", env.get("LOGSTREAM_SMTP_SSL", "false")))
    port_text = pick(getattr(conn, "port", None), "LOGSTREAM_SMTP_PORT")
    try:
        port = int(port_text) if port_text else (465 if implicit_tls else 25)
    except ValueError:
        raise _UnconfiguredError(
            f"alert channel 'email': SMTP port {port_text!r} from {source} is not a number"
        ) from None
    user = pick(getattr(conn, "login", None), "LOGSTREAM_SMTP_USER")
    sender = pick(extra.get("from"), "LOGSTREAM_SMTP_FROM") or (
        user if "@" in user else f"logstream@{socket.gethostname()}"
    )
    return _SmtpTarget(
        host=host,
        port=port,
        user=user,
        password=pick(getattr(conn, "password", None), "LOGSTREAM_SMTP_PASSWORD"),
        sender=sender,
        recipients=recipients,
        starttls=_flag(extra.get("starttls", env.get("LOGSTREAM_SMTP_STARTTLS", "false"))),
        implicit_tls=implicit_tls,
        source=source,
    )


# --------------------------------------------------------------------------------------------
# Delivery: bounded attempts, backoff, redacted logging, never raises
# --------------------------------------------------------------------------------------------


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


def _post_json(target: _HttpTarget, payload: dict, timeout_s: float) -> Callable[[], None]:
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
    resolve: Callable[[], _HttpTarget],
    payload: Callable[[Alert], dict],
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> bool:
    try:
        target = resolve()
    except _UnconfiguredError as exc:
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


class _ChannelSink:
    """Shared delivery knobs of the network channels."""

    def __init__(
        self, *, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = BACKOFF_BASE_S
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings: Settings) -> _ChannelSink:
        return cls(timeout_s=settings.alert_timeout_s, retries=settings.alert_retries)


class SlackAlertSink(_ChannelSink):
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


class WebhookAlertSink(_ChannelSink):
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


class EmailAlertSink(_ChannelSink):
    """Sends a plain-text e-mail over SMTP (``logstream_smtp`` / LOGSTREAM_SMTP_*)."""

    def send(self, alert: Alert) -> bool:
        try:
            target = resolve_smtp_target()
        except _UnconfiguredError as exc:
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

    def _attempt(self, target: _SmtpTarget, message: EmailMessage) -> Callable[[], None]:
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


# --------------------------------------------------------------------------------------------
# Message shapes
# --------------------------------------------------------------------------------------------


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _bounded(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def webhook_payload(alert: Alert) -> dict:
    """The generic webhook body: the alert as JSON, tagged with its source."""
    return {"source": "logstream", **alert.as_dict()}


def slack_payload(alert: Alert) -> dict:
    """Slack incoming-webhook body: ``text`` for notifications and ``blocks`` for the message."""
    emoji, label = _SEVERITY_STYLE.get(alert.severity.lower(), (":bell:", alert.severity.upper()))
    summary = _one_line(alert.summary, _SUMMARY_MAX)
    blocks: list[dict] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _bounded(
                    f"{emoji} *{label}* `{_slack_escape(alert.kind)}`\n"
                    f"{_slack_escape(alert.summary)}",
                    _TEXT_MAX,
                ),
            },
        }
    ]
    if alert.details:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": _bounded(
                            f"*{_slack_escape(key)}*\n{_slack_escape(value)}", _FIELD_MAX
                        ),
                    }
                    for key, value in list(alert.details.items())[:10]
                ],
            }
        )
    link_lines = [
        f"<{value}|{_slack_escape(name)}>"
        if _is_url(value)
        else f"*{_slack_escape(name)}*: {_slack_escape(value)}"
        for name, value in alert.links.items()
        if value
    ]
    if link_lines:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _bounded(" · ".join(link_lines), _TEXT_MAX)},
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _bounded(
                        f"logstream · dedup key `{_slack_escape(alert.dedup_key)}` · "
                        f"{alert.created_at}",
                        _TEXT_MAX,
                    ),
                }
            ],
        }
    )
    return {"text": f"{emoji} {label}: {_slack_escape(summary)}", "blocks": blocks}


def email_message(
    alert: Alert, sender: str, recipients: tuple[str, ...] | list[str]
) -> EmailMessage:
    """Plain-text e-mail with details and links; the dedup key in ``X-Logstream-Dedup-Key``."""
    # headers unfolded up to RFC 5322's hard limit: the stdlib folds a long Subject into a
    # leading-space continuation line that clients show verbatim
    message = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    message["Subject"] = f"[logstream][{alert.severity_label}] {_one_line(alert.summary, 200)}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="logstream")
    message["X-Logstream-Dedup-Key"] = alert.dedup_key
    message["X-Logstream-Severity"] = alert.severity
    lines = [f"{alert.severity_label} {alert.kind}", "", alert.summary, ""]
    if alert.details:
        lines.append("Details")
        lines += [f"  {key}: {value}" for key, value in alert.details.items()]
        lines.append("")
    links = {name: value for name, value in alert.links.items() if value}
    if links:
        lines.append("Links")
        lines += [f"  {name}: {value}" for name, value in links.items()]
        lines.append("")
    lines += [f"dedup key: {alert.dedup_key}", f"created at: {alert.created_at}"]
    message.set_content("\n".join(lines))
    return message


# --------------------------------------------------------------------------------------------
# Dedup: at most one delivery per key and channel within a window, across processes
# --------------------------------------------------------------------------------------------


class DedupStore:
    """``{key: sent_at}`` in a JSON file, changed under an exclusive file lock, replaced atomically.

    A key is *claimed* before delivery (so two processes racing on the same key page once) and
    *released* when delivery failed (so the next call tries again).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, float]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                entries = self._read()
                before = dict(entries)
                yield entries
                if entries != before:
                    self._write(entries)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning(
                f"alert dedup state {self.path} unreadable ({exc}); starting empty",
                extra={"path": str(self.path), "error": str(exc)},
            )
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def _write(self, entries: dict[str, float]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(entries, sort_keys=True))
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def claim(self, key: str, window_s: float, now: float | None = None) -> float | None:
        """Record ``key`` as sent now unless it was sent within ``window_s``; returns the claim
        time, or None when the key is a duplicate."""
        now = time.time() if now is None else now
        with self._locked() as entries:
            for stale in [k for k, sent in entries.items() if now - sent >= window_s]:
                del entries[stale]
            if key in entries:
                return None
            entries[key] = now
            return now

    def release(self, key: str, claimed_at: float) -> None:
        """Forget a claim whose delivery failed (only if nobody re-claimed it since)."""
        with self._locked() as entries:
            if entries.get(key) == claimed_at:
                del entries[key]


class DedupAlertSink:
    """Suppresses an alert whose dedup key ``inner`` already delivered within ``window_s``.

    ``scope`` separates channels sharing one store (``slack`` and ``email`` dedup independently,
    so a channel that failed is retried without paging again on the ones that worked). If the
    store cannot be used the alert is delivered anyway: a duplicate page beats a missed one.
    """

    def __init__(
        self,
        inner: AlertSink,
        store: DedupStore | str | Path,
        window_s: float,
        scope: str = "",
    ) -> None:
        self.inner = inner
        self.store = store if isinstance(store, DedupStore) else DedupStore(store)
        self.window_s = window_s
        self.scope = scope

    def send(self, alert: Alert) -> bool:
        key = f"{self.scope}|{alert.dedup_key}" if self.scope else alert.dedup_key
        try:
            claimed_at = self.store.claim(key, self.window_s)
        except OSError as exc:
            log.warning(
                f"alert dedup state {self.store.path} unavailable ({exc}); "
                "delivering without dedup",
                extra={"path": str(self.store.path), "error": str(exc)},
            )
            return _safe_send(self.inner, alert)
        if claimed_at is None:
            log.info(
                f"alert {alert.dedup_key} already delivered to {self.scope or 'its sink'} "
                f"within {self.window_s:g}s; not sent again",
                extra={
                    "dedup_key": alert.dedup_key,
                    "scope": self.scope,
                    "window_s": self.window_s,
                },
            )
            return True
        delivered = _safe_send(self.inner, alert)
        if not delivered:
            try:
                self.store.release(key, claimed_at)
            except OSError as exc:
                log.warning(
                    f"alert dedup claim in {self.store.path} not released: {exc}",
                    extra={"path": str(self.store.path), "error": str(exc)},
                )
        return delivered


def _safe_send(sink: AlertSink, alert: Alert) -> bool:
    try:
        return sink.send(alert) is not False
    except Exception as exc:  # noqa: BLE001 - alerting must never break the pipeline
        log.error(
            f"alert delivery through {type(sink).__name__} failed: {exc}",
            extra={"sink": type(sink).__name__, "error": str(exc)},
        )
        return False


# --------------------------------------------------------------------------------------------
# Background delivery: the caller (a Spark micro-batch) never waits for a receiver
# --------------------------------------------------------------------------------------------

#: Puts the worker of a :class:`BackgroundAlertSink` to rest once the queue is empty.
_STOP = object()
#: Dedup keys named in the shutdown warning (the rest are counted).
_KEYS_LOGGED_MAX = 20


class BackgroundAlertSink:
    """Delivers alerts through ``inner`` on one daemon thread; ``send`` only enqueues.

    Why: a channel retries a hanging receiver for ``alert_timeout_s`` x ``alert_retries`` per
    alert; called inline, that stalls the streaming micro-batch and every alert behind it
    (SPEC §11 wants an anomaly alert within 1 s of its window becoming final). Here ``send``
    puts the alert on a bounded queue (``max_queued``, default 1000) and returns None
    ("accepted") at once; the worker delivers in order, and survives an ``inner`` that raises
    (:func:`_safe_send` logs it). A hanging receiver still delays the alerts queued behind it,
    but never the caller.

    When the queue is full (the receiver has been down or slow for ``max_queued`` alerts) the
    new alert is dropped rather than blocking the batch or growing memory without bound: ``send``
    returns False, ``dropped`` counts it, and one ERROR line names its kind and dedup key and
    says that an anomaly's row is still in the ``anomalies`` table (where on-call finds what was
    not paged). Alerts sent after :meth:`close` are dropped the same way.

    :meth:`close` stops accepting, waits up to ``timeout_s`` for the queue to drain and stops the
    worker; it returns how many accepted alerts were not delivered (a WARNING names them).
    ``delivered`` and ``failed`` count the alerts ``inner`` took or refused.
    """

    def __init__(
        self, inner: AlertSink, max_queued: int = 1000, *, name: str = "logstream-alerts"
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        self.inner = inner
        self.max_queued = max_queued
        self.dropped = 0
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when an alert is finished
        self._pending = 0  # accepted, not finished (queued or in flight)
        self._closed = False
        self._abandon = threading.Event()
        self._close_lock = threading.Lock()
        self._left: int | None = None
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    @property
    def pending(self) -> int:
        """Alerts accepted and not yet finished (queued or being delivered)."""
        with self._lock:
            return self._pending

    def send(self, alert: Alert) -> bool | None:
        """Queue ``alert``; None when accepted, False when dropped (queue full or closed)."""
        with self._lock:
            if self._closed:
                reason = "the alert sink is closed (the job is shutting down)"
            else:
                try:
                    self._queue.put_nowait(alert)
                except queue.Full:
                    reason = (
                        f"the alert queue is full ({self.max_queued} alerts waiting: the "
                        f"receiver is down or slow, see the delivery errors above)"
                    )
                else:
                    self._pending += 1
                    return None
            self.dropped += 1
            dropped = self.dropped
        log.error(
            f"alert {alert.kind} {alert.dedup_key} dropped, not delivered to any channel: "
            f"{reason}. An anomaly alert's row is still in the anomalies table",
            extra={
                "alert": alert.kind,
                "dedup_key": alert.dedup_key,
                "severity": alert.severity,
                "dropped_total": dropped,
            },
        )
        return False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._abandon.is_set():
                return
            delivered = _safe_send(self.inner, item)
            with self._idle:
                self._pending -= 1
                if delivered:
                    self.delivered += 1
                else:
                    self.failed += 1
                self._idle.notify_all()

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop accepting, give queued alerts up to ``timeout_s`` to be delivered, stop the
        worker; returns the number of accepted alerts left undelivered at the deadline (never
        handed to ``inner``, or still in flight to a hanging receiver; those ``inner`` refused
        were logged as they failed and count in ``failed``). Idempotent: later calls return
        the first result."""
        with self._close_lock:
            if self._left is not None:
                return self._left
            with self._idle:
                self._closed = True
                self._idle.wait_for(lambda: self._pending == 0, timeout=max(0.0, timeout_s))
                left = self._pending
            abandoned: list[str] = []
            if left:
                # the worker finishes its current attempt, then exits without taking another
                self._abandon.set()
                while True:
                    try:
                        abandoned.append(self._queue.get_nowait().dedup_key)
                    except queue.Empty:
                        break
                with self._lock:
                    left = self._pending  # the drained ones plus any still in flight
            # no producer is left, so there is room for the stop marker
            self._queue.put_nowait(_STOP)
            if not left:
                self._worker.join(timeout=1.0)
            if left:
                named = ", ".join(abandoned[:_KEYS_LOGGED_MAX])
                more = len(abandoned) - _KEYS_LOGGED_MAX
                log.warning(
                    f"{left} alert(s) not delivered at shutdown after waiting {timeout_s:g}s "
                    f"(the receiver is down or slow); never sent: {named or 'none'}"
                    f"{f' and {more} more' if more > 0 else ''}"
                    f"{'; one was still in flight' if left > len(abandoned) else ''}. "
                    "Anomaly alerts' rows are in the anomalies table",
                    extra={
                        "undelivered": left,
                        "abandoned": len(abandoned),
                        "timeout_s": timeout_s,
                    },
                )
            self._left = left
            return left


def dedup_state_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / "alerts" / "sent.json"


# --------------------------------------------------------------------------------------------
# Building sinks from the ``alert_sink`` setting, and the entry points
# --------------------------------------------------------------------------------------------

_CHANNELS: dict[str, type[_ChannelSink]] = {
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
    return _safe_send(sink, alert)


def _error_excerpt(error: BaseException | str | None) -> str:
    """The error's type and message, bounded (the head and the tail of long messages)."""
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    if len(text) <= _ERROR_EXCERPT_MAX:
        return text
    half = _ERROR_EXCERPT_MAX // 2
    return f"{text[:half]}\n… [{len(text) - 2 * half} characters cut] …\n{text[-half:]}"


def _airflow_run_url(dag_id: str, run_id: str) -> str:
    """The DAG run's page in the Airflow UI (``[api] base_url``), from inside Airflow only."""
    if "airflow" not in sys.modules:
        return ""
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("api", "base_url", fallback="http://localhost:8080/")
    except Exception:  # noqa: BLE001 - no Airflow config: no run link
        return ""
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


def task_failure_alert(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: one pipeline-failure alert per failed task instance.

    Links point at the task log and the DAG run in the Airflow UI; the error excerpt is bounded.
    Never raises (a failing callback would only hide the task's own failure).
    """
    try:
        ti = context.get("task_instance") or context.get("ti")
        dag_id = str(getattr(ti, "dag_id", None) or "?")
        task_id = str(getattr(ti, "task_id", None) or "?")
        run_id = str(context.get("run_id") or getattr(ti, "run_id", None) or "?")
        map_index = getattr(ti, "map_index", None)
        mapped = f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
        error = context.get("exception")
        excerpt = _error_excerpt(error)
        try:
            log_url = str(getattr(ti, "log_url", "") or "")
        except Exception:  # noqa: BLE001 - log_url needs Airflow config; skip the link
            log_url = ""
        details = {"dag_id": dag_id, "task_id": f"{task_id}{mapped}", "run_id": run_id}
        try_number = getattr(ti, "try_number", None)
        if try_number is not None:
            details["try_number"] = try_number
        if excerpt:
            details["error"] = excerpt
        links = {"log": log_url, "run": _airflow_run_url(dag_id, run_id) if ti else ""}
        alert = Alert(
            dedup_key=f"pipeline:{dag_id}:{task_id}{mapped}:{run_id}",
            kind="pipeline_failure",
            severity="critical",
            summary=(
                f"{dag_id}.{task_id}{mapped} failed: "
                f"{_one_line(excerpt, 300) if excerpt else 'see the task log'}"
            ),
            details=details,
            links={name: url for name, url in links.items() if url},
        )
    except Exception as exc:  # noqa: BLE001 - never fail the callback
        log.error(f"could not build the task failure alert: {exc}", extra={"error": str(exc)})
        return
    notify(alert)
