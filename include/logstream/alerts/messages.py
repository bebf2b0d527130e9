"""What each channel's message looks like, built from an :class:`Alert` by pure functions.

- Slack gets ``text`` (severity and summary, what notifications show) and ``blocks`` (summary,
  details, links, dedup key). The alert's text (kind, summary, details, link names, dedup key)
  is escaped (``&``, ``<``, ``>``), so text from a log line cannot forge a Slack link or
  mention; every text is cut to Slack's field limits.
- The webhook gets ``{"source": "logstream", "dedup_key", "kind", "severity", "summary",
  "details", "links", "created_at"}``.
- E-mail gets the subject ``[logstream][SEVERITY] summary`` on one line, a plain-text body with
  details and links, and the header ``X-Logstream-Dedup-Key``.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from logstream.alerts.model import SEVERITY_STYLE, Alert

_SUMMARY_MAX = 200  # subject lines and Slack notification text
_TEXT_MAX = 2_900  # Slack section text limit is 3000 characters
_FIELD_MAX = 1_900  # Slack field text limit is 2000 characters


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs (newlines included) collapsed to single spaces, cut to
    ``limit`` characters with a trailing ellipsis."""
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
    emoji, label = SEVERITY_STYLE.get(alert.severity.lower(), (":bell:", alert.severity.upper()))
    summary = one_line(alert.summary, _SUMMARY_MAX)
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
    message["Subject"] = f"[logstream][{alert.severity_label}] {one_line(alert.summary, 200)}"
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
