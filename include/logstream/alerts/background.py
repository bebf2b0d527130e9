"""Background delivery: the caller (a Spark micro-batch) never waits for a receiver, and no alert
is lost on the way.

The streaming job builds its channels once with
:func:`~logstream.alerts.routing.build_alert_sink` (without the dedup record: every anomaly
already carries its own dedup key) and delivers through a :class:`BackgroundAlertSink`: a bounded
queue and one worker thread, so a slow or hanging receiver never stalls a micro-batch. What the
queue cannot take, and what a channel fails to deliver after its retries, goes to the durable
outbox (:mod:`logstream.alerts.outbox`), which the worker delivers later, also after a restart.
The worker also groups and rate-limits the direct channels (:mod:`logstream.alerts.grouping`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from logstream.alerts import counters
from logstream.alerts.channels import LogAlertSink
from logstream.alerts.grouping import GroupingSink
from logstream.alerts.model import Alert, AlertSink, safe_send
from logstream.alerts.outbox import Outbox
from logstream.alerts.routing import DIRECT_CHANNELS, FanOutAlertSink

log = logging.getLogger(__name__)

#: Puts the worker of a :class:`BackgroundAlertSink` to rest once the queue is empty.
_STOP = object()
#: Dedup keys named in the shutdown warning (the rest are counted).
_KEYS_LOGGED_MAX = 20


class BackgroundAlertSink:
    """Delivers alerts through ``inner`` on one daemon thread; ``send`` only enqueues.

    Why: a channel retries a hanging receiver for ``alert_timeout_s`` x ``alert_retries`` per
    alert; called inline, that stalls the streaming micro-batch and every alert behind it. Here
    ``send`` puts the alert on a bounded queue (``max_queued``, default 1000) and returns None
    ("accepted") at once; the worker delivers in order, and survives an ``inner`` that raises.

    With an ``outbox`` (by default the one of ``inner``'s settings, when ``inner`` is the
    :class:`~logstream.alerts.routing.FanOutAlertSink` of ``build_alert_sink``):

    - a full queue, or a ``send`` after :meth:`close`, writes the alert to the outbox (fsync'd)
      and still returns None: it is accepted, durably;
    - a channel that fails after its retries gets the alert through the outbox; it is then
      considered down for ``retry_s`` (its next alerts go straight to the outbox, so a dead
      receiver does not slow the queue down), and the worker retries the outbox every
      ``retry_s`` while its queue is empty, oldest first, one channel at a time;
    - at :meth:`close`, what is still queued after ``timeout_s`` goes to the outbox.

    Without an outbox (a bare sink) a full queue drops the alert: ``send`` returns False, and
    one ERROR line names its kind and dedup key. ``delivered``, ``failed``, ``spilled`` and
    ``dropped`` count what happened here; :mod:`logstream.alerts.counters` has the totals by
    channel.
    """

    def __init__(
        self,
        inner: AlertSink,
        max_queued: int = 1000,
        *,
        name: str = "logstream-alerts",
        outbox: Outbox | None = None,
        retry_s: float | None = None,
        tick_s: float = 1.0,
    ) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be at least 1, got {max_queued}")
        settings = getattr(inner, "settings", None) if isinstance(inner, FanOutAlertSink) else None
        if outbox is None and settings is not None:
            outbox = Outbox.from_settings(settings)
        self.inner = inner
        self.outbox = outbox
        self.max_queued = max_queued
        self.retry_s = float(
            retry_s if retry_s is not None else getattr(settings, "alert_outbox_retry_s", 30)
        )
        self.tick_s = tick_s
        self.channels = self._channels(inner, settings)
        self.dropped = self.delivered = self.failed = self.spilled = 0
        self._down_until: dict[str, float] = {}
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

    @staticmethod
    def _channels(inner: AlertSink, settings: Any) -> dict[str, AlertSink]:
        if not isinstance(inner, FanOutAlertSink):
            return {"default": inner}
        channels: dict[str, AlertSink] = {}
        for name, sink in inner.named:
            if name in DIRECT_CHANNELS and settings is not None:
                sink = GroupingSink(
                    sink, name, settings.alert_group_seconds, settings.alert_kind_rate_per_hour
                )
            channels[name] = sink
        return channels

    @property
    def pending(self) -> int:
        """Alerts accepted and not yet finished (queued or being delivered)."""
        with self._lock:
            return self._pending

    def send(self, alert: Alert) -> bool | None:
        """Queue ``alert``; None when accepted (queued, or kept in the outbox), False when
        dropped (no outbox, and the queue is full or closed)."""
        with self._lock:
            if self._closed:
                reason, code = "the alert sink is closed (the job is shutting down)", "shutdown"
            else:
                try:
                    self._queue.put_nowait(alert)
                except queue.Full:
                    reason = (
                        f"the alert queue is full ({self.max_queued} alerts waiting: the "
                        f"receiver is down or slow, see the delivery errors above)"
                    )
                    code = "queue_full"
                else:
                    self._pending += 1
                    return None
        if self.outbox is not None:
            if self._spill(alert, None, code):
                return None
            return False  # the outbox logged and counted the drop
        with self._lock:
            self.dropped += 1
            dropped = self.dropped
        counters.count("logstream_alerts_dropped_total")
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

    def _spill(self, alert: Alert, channels: list[str] | None, reason: str) -> bool:
        assert self.outbox is not None
        kept = self.outbox.spill(alert, channels, reason)
        with self._lock:
            if kept:
                self.spilled += 1
            else:
                self.dropped += 1
        return kept

    # -- the worker ------------------------------------------------------------------------
    def _run(self) -> None:
        next_retry = time.monotonic()  # the outbox of an earlier run goes out first
        while True:
            try:
                item = self._queue.get(timeout=self.tick_s)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if self._abandon.is_set():
                if item is not None:  # taken while close() gave up: keep it, do not send
                    self._abandoned(item)
                return
            if item is not None:
                self._deliver(item)
            self._flush_groups()
            if (
                self.outbox is not None
                and time.monotonic() >= next_retry
                and self._queue.empty()
                and not self._closed
            ):
                self._redeliver()
                next_retry = time.monotonic() + self.retry_s

    def _abandoned(self, alert: Alert) -> None:
        if self.outbox is not None:
            self._spill(alert, None, "shutdown")
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _deliver(self, alert: Alert) -> None:
        now = time.monotonic()
        failed: list[str] = []
        for name, sink in self.channels.items():
            if self.outbox is not None and self._down_until.get(name, 0.0) > now:
                failed.append(name)  # known down: straight to the outbox
            elif not safe_send(sink, alert):
                failed.append(name)
                self._down_until[name] = time.monotonic() + self.retry_s
        if failed and self.outbox is not None:
            self._spill(alert, failed, "delivery_failed")
        with self._idle:
            self._pending -= 1
            if failed:
                self.failed += 1
            else:
                self.delivered += 1
            self._idle.notify_all()

    def _flush_groups(self, force: bool = False, deliver: bool = True) -> None:
        for name, sink in self.channels.items():
            if not isinstance(sink, GroupingSink):
                continue
            refused = sink.flush(force) if deliver else sink.due(force=True)
            for digest in refused:
                if self.outbox is not None:
                    self._spill(digest, [name], "delivery_failed")

    def _redeliver(self) -> None:
        """One round over the outbox, oldest first; a channel that fails is not tried again
        this round."""
        assert self.outbox is not None
        entries = self.outbox.entries()
        if not entries:
            return
        down: set[str] = set()
        done: set[str] = set()
        owed: dict[str, list[str]] = {}
        for entry in entries:
            if self._abandon.is_set():
                break
            alert = Alert.from_dict(entry["alert"])
            wanted = list(entry.get("channels") or self.channels)
            remaining = []
            for name in wanted:
                sink = self.channels.get(name)
                if sink is None:
                    log.error(
                        f"outbox alert {alert.kind} {alert.dedup_key} was for channel {name!r}, "
                        "which alert_sink no longer lists; logging it instead",
                        extra={"dedup_key": alert.dedup_key, "channel": name},
                    )
                    safe_send(LogAlertSink(), alert)
                elif name in down:
                    remaining.append(name)
                elif safe_send(sink, alert):
                    counters.count("logstream_alerts_redelivered_total", name)
                    self._down_until.pop(name, None)
                else:
                    down.add(name)
                    self._down_until[name] = time.monotonic() + self.retry_s
                    remaining.append(name)
            if remaining:
                owed[entry["id"]] = remaining
            else:
                done.add(entry["id"])
        self.outbox.settle(done, owed)

    # -- shutdown --------------------------------------------------------------------------
    def close(self, timeout_s: float = 10.0) -> int:
        """Stop accepting, give queued alerts up to ``timeout_s`` to be delivered, stop the
        worker; send the direct channels' held digests. Returns the number of accepted alerts
        neither delivered nor kept in the outbox (with an outbox, what is left at the deadline
        goes there: one still in flight to a hanging receiver may then arrive twice).
        Idempotent: later calls return the first result."""
        with self._close_lock:
            if self._left is not None:
                return self._left
            with self._idle:
                self._closed = True
                self._idle.wait_for(lambda: self._pending == 0, timeout=max(0.0, timeout_s))
                left = self._pending
            abandoned: list[Alert] = []
            if left:
                # the worker finishes its current attempt, then exits without taking another
                self._abandon.set()
                while True:
                    try:
                        abandoned.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                with self._lock:
                    left = self._pending  # the drained ones plus any still in flight
            # no producer is left, so there is room for the stop marker
            self._queue.put_nowait(_STOP)
            if not left:
                self._worker.join(timeout=1.0)
                self._flush_groups(force=True)
            else:
                self._flush_groups(force=True, deliver=False)
            if left and self.outbox is not None:
                kept = sum(self._spill(one, None, "shutdown") for one in abandoned)
                in_flight = left - len(abandoned)
                log.warning(
                    f"{left} alert(s) not delivered at shutdown after waiting {timeout_s:g}s "
                    f"(the receiver is down or slow); {kept} kept in the outbox {self.outbox.path}"
                    f" for the next start{'; one was still in flight' if in_flight else ''}",
                    extra={"undelivered": left, "spilled": kept, "timeout_s": timeout_s},
                )
                left = len(abandoned) - kept + in_flight
            elif left:
                named = ", ".join(one.dedup_key for one in abandoned[:_KEYS_LOGGED_MAX])
                more = len(abandoned) - _KEYS_LOGGED_MAX
                counters.count("logstream_alerts_dropped_total", amount=left)
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
