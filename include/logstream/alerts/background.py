"""Background delivery: the caller (a Spark micro-batch) never waits for a receiver.

The streaming job builds its channels once with
:func:`~logstream.alerts.routing.build_alert_sink` (without the dedup record: every anomaly
already carries its own dedup key) and delivers through a :class:`BackgroundAlertSink`: a bounded
queue and one worker thread, so a slow or hanging receiver never stalls a micro-batch; alerts
queued at shutdown get up to 10 s to go out.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from logstream.alerts.model import Alert, AlertSink, safe_send

log = logging.getLogger(__name__)

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
    (:func:`safe_send` logs it). A hanging receiver still delays the alerts queued behind it,
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
            delivered = safe_send(self.inner, item)
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
