"""Where each network channel points: its address and secrets, from an Airflow connection or the
environment, resolved each time an alert is sent (a rotated secret takes effect at once).

- ``slack``: a Slack incoming webhook. Airflow connection ``logstream_slack`` with the webhook URL
  in ``host`` or ``password`` (or ``host=https://hooks.slack.com/services`` and the token part in
  ``password``), or the environment variable ``LOGSTREAM_SLACK_WEBHOOK_URL``.
- ``webhook``: a generic JSON webhook. Airflow connection ``logstream_webhook`` with the URL in
  ``extra.url``, or in ``host`` (a full URL, or a host name with ``port``, ``schema`` as the path
  and the connection type ``http``/``https`` as the scheme); optional request headers (for
  example a bearer token) in ``extra.headers``. Or the environment variable
  ``LOGSTREAM_ALERT_WEBHOOK_URL``.
- ``email``: SMTP. Airflow connection ``logstream_smtp`` with ``host``, ``port``, ``login``,
  ``password`` and ``extra`` ``{"from": "logstream@example.com", "to":
  "a@example.com,b@example.com", "starttls": true}`` (``"ssl": true`` for implicit TLS, usually
  port 465). Or the environment variables ``LOGSTREAM_SMTP_HOST``, ``LOGSTREAM_SMTP_PORT``
  (default 25), ``LOGSTREAM_SMTP_USER``, ``LOGSTREAM_SMTP_PASSWORD``, ``LOGSTREAM_SMTP_FROM``,
  ``LOGSTREAM_SMTP_TO`` (comma-separated), ``LOGSTREAM_SMTP_STARTTLS`` and ``LOGSTREAM_SMTP_SSL``
  (``true``/``false``, default false). Connection fields win; missing ones are taken from the
  environment. The sender defaults to the login when it is an address, else
  ``logstream@<hostname>``.

Airflow connections are consulted when the alert is sent from an Airflow process (a task or a
failure callback, where Airflow serves connections from its metadata DB or secrets backend) or
when ``AIRFLOW_CONN_<CONN_ID>`` is set in the environment; other processes (the Spark streaming
job) read the ``LOGSTREAM_*`` variables and never import Airflow for this. A channel without an
address raises :class:`UnconfiguredError`, whose message names the connection id and the
variable to set. Each target lists its :attr:`secrets` so delivery can redact them from logs.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Airflow connection ids per channel (override nothing else: one id per channel).
SLACK_CONN_ID = "logstream_slack"
WEBHOOK_CONN_ID = "logstream_webhook"
SMTP_CONN_ID = "logstream_smtp"


class UnconfiguredError(Exception):
    """A listed channel has no address; the message says what to set."""


@dataclass(frozen=True)
class HttpTarget:
    """A webhook URL (Slack or generic), its extra request headers and where they came from."""

    url: str
    source: str  # "Airflow connection 'logstream_slack'" or "LOGSTREAM_SLACK_WEBHOOK_URL"
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def secrets(self) -> list[str]:
        parts = urlsplit(self.url)
        return [self.url, parts.path, parts.query, parts.password or "", *self.headers.values()]


@dataclass(frozen=True)
class SmtpTarget:
    """An SMTP server, its credentials and addresses, and where they came from."""

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


def resolve_slack_target() -> HttpTarget:
    """The Slack incoming-webhook URL from ``logstream_slack`` or LOGSTREAM_SLACK_WEBHOOK_URL."""
    conn = _airflow_connection(SLACK_CONN_ID)
    if conn is not None:
        url = _url_from_connection(conn, token_in_password=True)
        if url:
            return HttpTarget(url, f"Airflow connection {SLACK_CONN_ID!r}")
    url = os.environ.get("LOGSTREAM_SLACK_WEBHOOK_URL", "").strip()
    if url:
        return HttpTarget(url, "LOGSTREAM_SLACK_WEBHOOK_URL")
    raise UnconfiguredError(
        f"alert channel 'slack' has no webhook URL: create the Airflow connection "
        f"{SLACK_CONN_ID!r} (URL in host or password) or set LOGSTREAM_SLACK_WEBHOOK_URL"
    )


def resolve_webhook_target() -> HttpTarget:
    """The generic webhook URL (and headers) from ``logstream_webhook`` or the environment."""
    conn = _airflow_connection(WEBHOOK_CONN_ID)
    if conn is not None:
        url = _url_from_connection(conn, token_in_password=False)
        headers = _extra(conn).get("headers") or {}
        if url:
            return HttpTarget(
                url,
                f"Airflow connection {WEBHOOK_CONN_ID!r}",
                {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
            )
    url = os.environ.get("LOGSTREAM_ALERT_WEBHOOK_URL", "").strip()
    if url:
        return HttpTarget(url, "LOGSTREAM_ALERT_WEBHOOK_URL")
    raise UnconfiguredError(
        f"alert channel 'webhook' has no URL: create the Airflow connection {WEBHOOK_CONN_ID!r} "
        f"(URL in host or extra.url) or set LOGSTREAM_ALERT_WEBHOOK_URL"
    )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def resolve_smtp_target() -> SmtpTarget:
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
        raise UnconfiguredError(
            f"alert channel 'email' has no SMTP {missing}: create the Airflow connection "
            f'{SMTP_CONN_ID!r} (host, port, login, password, extra {{"from", "to"}}) or set '
            f"LOGSTREAM_SMTP_HOST and LOGSTREAM_SMTP_TO"
        )
    implicit_tls = _flag(extra.get("ssl", env.get("LOGSTREAM_SMTP_SSL", "false")))
    port_text = pick(getattr(conn, "port", None), "LOGSTREAM_SMTP_PORT")
    try:
        port = int(port_text) if port_text else (465 if implicit_tls else 25)
    except ValueError:
        raise UnconfiguredError(
            f"alert channel 'email': SMTP port {port_text!r} from {source} is not a number"
        ) from None
    user = pick(getattr(conn, "login", None), "LOGSTREAM_SMTP_USER")
    sender = pick(extra.get("from"), "LOGSTREAM_SMTP_FROM") or (
        user if "@" in user else f"logstream@{socket.gethostname()}"
    )
    return SmtpTarget(
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
