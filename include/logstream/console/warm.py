"""Keeping today's and yesterday's reads warm in the API server.

The first read of a busy day opens thousands of small files (the stream writes one per
micro-batch): seconds, not the page budget. From the API server's start, a daemon thread reads
what the pages of today and yesterday read, again and again (:class:`Warmer`); a page view then
reads only the few files the stream added since. What it read is also kept on disk
(:mod:`logstream.console.tables`), so after an API server restart the first warm-up reads only
the files written meanwhile.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from logstream.config import Settings
from logstream.console import findings, windows
from logstream.console.tables import STORAGE_ERRORS, cache_folder
from logstream.errors import LogstreamError

log = logging.getLogger(__name__)

#: Seconds between two warm-ups while the console is in use (a page asked for in the last
#: :data:`IDLE_AFTER_S`), and otherwise (in one API server process only).
INTERVAL_S = 60.0
IDLE_AFTER_S = 15 * 60.0
IDLE_INTERVAL_S = 300.0


def warm_today(settings: Settings) -> None:
    """Read what the pages of today and yesterday read (the caches of
    :mod:`logstream.console.tables` keep it); today first."""
    today = datetime.now(UTC).date()
    for day in (today, today - timedelta(days=1)):
        windows.metric_windows(settings, day)
        findings.anomaly_rows(settings, day)
        findings.quarantine_by_reason(settings, day)
        findings.late_by_service(settings, day)


def lock_file(settings: Settings) -> Path:
    """Held by the one process that keeps the reads current while nobody uses the console."""
    return cache_folder(settings).parent / "warm.lock"


class Warmer:
    """Runs :func:`warm_today` in the background from the API server's start (:meth:`start`,
    called by :class:`logstream.console.app.StartWarmUp`) or the first request (:meth:`touch`).

    While pages are asked for, every :data:`INTERVAL_S`; otherwise every
    :data:`IDLE_INTERVAL_S`, and then only in the process holding :func:`lock_file` (an API
    server with several workers would otherwise read the same files in each). So a first view
    after hours without one reads only the last few minutes' files, and after a restart the first
    warm-up starts from the console's disk copies."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        interval_s: float = INTERVAL_S,
        idle_interval_s: float = IDLE_INTERVAL_S,
    ) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._idle_interval_s = idle_interval_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_request: float | None = None
        self._stopped = threading.Event()
        self._lock_fd: int | None = None

    def start(self) -> None:
        """The API server started: warm from now on (start the thread if it is not running)."""
        with self._lock:
            self._ensure_thread()

    def touch(self) -> None:
        """A page was asked for: keep warming (start the thread if it is not running)."""
        with self._lock:
            self._last_request = time.monotonic()
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        if not self._stopped.is_set() and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._run, name="console-warm-up", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop warming (for tests and shutdown); a later :meth:`touch` does not restart it."""
        self._stopped.set()
        with self._lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None

    def _in_use(self) -> bool:
        last = self._last_request
        return last is not None and time.monotonic() - last < IDLE_AFTER_S

    def _keeps_reads_current(self, settings: Settings) -> bool:
        """Whether this process holds :func:`lock_file` (taken if free; kept until :meth:`stop`
        or the process ends, when another process may take it)."""
        with self._lock:
            if self._lock_fd is not None:
                return True
            path = lock_file(settings)
            try:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:
                return False
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                return False
            self._lock_fd = descriptor
            return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            in_use = self._in_use()
            try:
                settings = self._settings()
                if in_use or self._keeps_reads_current(settings):
                    warm_today(settings)
            except (LogstreamError, *STORAGE_ERRORS, ValueError, pa.ArrowException) as exc:
                # a warm-up never breaks the server; the pages report what is wrong
                log.warning("console warm-up failed", extra={"error": str(exc)})
            self._stopped.wait(self._interval_s if in_use else self._idle_interval_s)
