"""Grouping and per-kind rate limits for the direct channels (Slack, webhook, e-mail).

Without Alertmanager these channels page people directly, so a burst of one kind of alert (fifty
DDoS suspects in a minute, a flapping service) must not become fifty pages. A
:class:`GroupingSink` in front of a channel:

- sends the first alert of a *group* (its kind and service) at once, so a new problem pages
  without delay;
- holds the group's next alerts until ``window_s`` after that, then sends them as ONE digest
  alert (:func:`digest`: how many, the most severe severity, the first summaries and dedup keys),
  and starts a new window;
- sends at most ``rate_per_hour`` messages per kind per hour; what the limit holds back waits in
  the group's digest, sent when the limit allows again (or at shutdown).

Nothing is dropped: held alerts are counted (``logstream_alerts_grouped_total``,
``logstream_alerts_rate_limited_total``) and end up in a digest. The digests become due with
time, so the owner calls :meth:`GroupingSink.flush` regularly (the background worker does, about
once a second) and gets back the digests the channel refused, for its outbox.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from logstream.alerts import counters
from logstream.alerts.model import Alert, AlertSink, safe_send

#: Most severe first; unknown severities rank last.
SEVERITY_ORDER = ("critical", "error", "warning", "info")
#: Summaries and dedup keys listed in a digest (the rest are counted).
DIGEST_LISTED = 10
_HOUR_S = 3600.0


def _rank(severity: str) -> int:
    lowered = severity.lower()
    return SEVERITY_ORDER.index(lowered) if lowered in SEVERITY_ORDER else len(SEVERITY_ORDER)


def digest(alerts: list[Alert], listed: int = DIGEST_LISTED) -> Alert:
    """One alert standing for ``alerts`` (all of one kind and service): its dedup key is derived
    from theirs, its severity is theirs at worst, and it lists the first ``listed`` summaries."""
    if len(alerts) == 1:
        return alerts[0]
    first = alerts[0]
    keys = [a.dedup_key for a in alerts]
    worst = min(alerts, key=lambda a: _rank(a.severity)).severity
    where = f" for {first.service}" if first.service else ""
    details: dict = {
        "alerts": len(alerts),
        "first_at": first.created_at,
        "last_at": alerts[-1].created_at,
        "summaries": [a.summary for a in alerts[:listed]],
        "dedup_keys": keys[:listed],
    }
    if len(alerts) > listed:
        details["not_listed"] = len(alerts) - listed
    links = {}
    for alert in alerts:
        for name, value in alert.links.items():
            links.setdefault(name, value)
    return Alert(
        dedup_key="digest:" + hashlib.sha256("|".join(keys).encode()).hexdigest()[:24],
        kind=first.kind,
        severity=worst,
        summary=f"{len(alerts)} {first.kind} alerts{where}, the first: {first.summary}",
        details=details,
        links=links,
        service=first.service,
    )


@dataclass
class _Group:
    until: float  # held alerts go out as a digest from this (monotonic) time on
    held: list[Alert] = field(default_factory=list)


class GroupingSink:
    """``inner`` (one direct channel, named ``channel``) behind grouping and a per-kind rate
    limit; ``send`` returns True for an alert it holds (it will be in a digest)."""

    def __init__(
        self,
        inner: AlertSink,
        channel: str,
        window_s: float = 60.0,
        rate_per_hour: int = 20,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.channel = channel
        self.window_s = window_s
        self.rate_per_hour = max(1, rate_per_hour)
        self.clock = clock
        self._groups: dict[tuple[str, str], _Group] = {}
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _allowed(self, kind: str, now: float) -> bool:
        sent = self._sent.setdefault(kind, deque())
        while sent and now - sent[0] >= _HOUR_S:
            sent.popleft()
        return len(sent) < self.rate_per_hour

    def send(self, alert: Alert) -> bool:
        now = self.clock()
        key = (alert.kind, alert.service)
        with self._lock:
            group = self._groups.get(key)
            if group is not None and (now < group.until or group.held):
                group.held.append(alert)
                counters.count("logstream_alerts_grouped_total", self.channel)
                return True
            if not self._allowed(alert.kind, now):
                self._groups[key] = _Group(until=now, held=[alert])
                counters.count("logstream_alerts_rate_limited_total", self.channel)
                return True
            self._groups[key] = _Group(until=now + self.window_s)
            self._sent[alert.kind].append(now)
        return safe_send(self.inner, alert)

    @property
    def held(self) -> int:
        with self._lock:
            return sum(len(group.held) for group in self._groups.values())

    def due(self, force: bool = False) -> list[Alert]:
        """The digests whose window has ended and whose kind is within its rate (every held
        group when ``force``); each one restarts its group's window."""
        now = self.clock()
        out: list[Alert] = []
        with self._lock:
            for key, group in list(self._groups.items()):
                if not force and now < group.until:
                    continue
                if not group.held:
                    del self._groups[key]
                    continue
                if not force and not self._allowed(key[0], now):
                    continue
                out.append(digest(group.held))
                self._sent.setdefault(key[0], deque()).append(now)
                self._groups[key] = _Group(until=now + self.window_s)
        return out

    def flush(self, force: bool = False) -> list[Alert]:
        """Send the due digests; returns those ``inner`` did not deliver."""
        return [one for one in self.due(force) if not safe_send(self.inner, one)]
