"""Keeping today's reads warm while someone uses the console.

The first read of a busy day opens thousands of small files (the stream writes one per
micro-batch): seconds, not the page budget. After the console's first request, a daemon thread
reads today's data for every page once a minute, for as long as a page was asked for in the last
:data:`IDLE_AFTER_S`; a page view then reads only the few files the stream added since.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa

from logstream.config import Settings
from logstream.console import findings, windows
from logstream.errors import LogstreamError

log = logging.getLogger(__name__)

#: Seconds between two warm-ups, and without a request before the thread stops.
INTERVAL_S = 60.0
IDLE_AFTER_S = 15 * 60.0


def warm_today(settings: Settings) -> None:
    """Read what today's pages read (the cache of :mod:`logstream.console.tables` keeps it)."""
    today = datetime.now(UTC).date()
    windows.metric_windows(settings, today)
    findings.anomaly_rows(settings, today)
    findings.quarantine_by_reason(settings, today)
    findings.late_by_service(settings, today)


class Warmer:
    """Runs :func:`warm_today` in the background from the first :meth:`touch` on."""

    def __init__(self, settings: Callable[[], Settings], interval_s: float = INTERVAL_S) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_request = 0.0
        self._stopped = threading.Event()

    def touch(self) -> None:
        """A page was asked for: keep warming (start the thread if it is not running)."""
        with self._lock:
            self._last_request = time.monotonic()
            if not self._stopped.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name="console-warm-up", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop warming (for tests and shutdown); a later :meth:`touch` does not restart it."""
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.is_set() and time.monotonic() - self._last_request < IDLE_AFTER_S:
            try:
                warm_today(self._settings())
            except (LogstreamError, OSError, ValueError, pa.ArrowException) as exc:
                # a warm-up never breaks the server; the pages report what is wrong
                log.warning("console warm-up failed", extra={"error": str(exc)})
            self._stopped.wait(self._interval_s)
