"""At most one delivery per dedup key and channel within a window, across processes.

:func:`logstream.alerts.routing.notify` (the DAG failure callback and the batch jobs) wraps each
channel in a :class:`DedupAlertSink` over ``<state_dir>/alerts/sent.json``
(:func:`dedup_state_path`), so repeated Airflow runs and retried tasks do not page twice within
``alert_dedup_seconds``. A channel whose delivery failed is not recorded and is tried again by
the next call. A direct channel (Slack, webhook, e-mail) also gets at most ``rate_per_hour``
messages per alert kind and hour (``alert_kind_rate_per_hour``): an alert past the limit is not
sent to that channel (it still reaches the others, such as ``log`` and Alertmanager), is logged
at WARNING and counted in ``logstream_alerts_rate_limited_total``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from logstream.alerts import counters
from logstream.alerts.model import Alert, AlertSink, safe_send
from logstream.storage.fs import write_local_text

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)

_RATE_PREFIX = "rate|"
_RATE_WINDOW_S = 3600.0


def dedup_state_path(settings: Settings) -> Path:
    """Where :func:`~logstream.alerts.routing.notify` records what it sent."""
    return Path(settings.state_dir) / "alerts" / "sent.json"


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
        write_local_text(self.path, json.dumps(entries, sort_keys=True))

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

    def claim_rate(self, scope: str, limit: int, now: float | None = None) -> bool:
        """Record one message for ``scope`` unless ``limit`` were recorded in the last hour
        (in ``rates.json`` beside this store's file)."""
        now = time.time() if now is None else now
        prefix = f"{_RATE_PREFIX}{scope}|"
        with DedupStore(self.path.with_name("rates.json"))._locked() as entries:
            for stale in [k for k, sent in entries.items() if now - sent >= _RATE_WINDOW_S]:
                del entries[stale]
            if sum(1 for k in entries if k.startswith(prefix)) >= limit:
                return False
            entries[f"{prefix}{now!r}|{len(entries)}"] = now
            return True

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
        rate_per_hour: int | None = None,
    ) -> None:
        self.inner = inner
        self.store = store if isinstance(store, DedupStore) else DedupStore(store)
        self.window_s = window_s
        self.scope = scope
        self.rate_per_hour = rate_per_hour

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
            return safe_send(self.inner, alert)
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
        if self.rate_per_hour is not None and not self._within_rate(alert):
            return True
        delivered = safe_send(self.inner, alert)
        if not delivered:
            try:
                self.store.release(key, claimed_at)
            except OSError as exc:
                log.warning(
                    f"alert dedup claim in {self.store.path} not released: {exc}",
                    extra={"path": str(self.store.path), "error": str(exc)},
                )
        return delivered

    def _within_rate(self, alert: Alert) -> bool:
        try:
            allowed = self.store.claim_rate(f"{self.scope}|{alert.kind}", self.rate_per_hour or 1)
        except OSError:
            return True  # no rate record: a page too many beats a missed one
        if not allowed:
            counters.count("logstream_alerts_rate_limited_total", self.scope)
            log.warning(
                f"alert {alert.kind} {alert.dedup_key} not sent to {self.scope}: {alert.kind} "
                f"reached {self.rate_per_hour} messages in the last hour "
                "(alert_kind_rate_per_hour); the other channels still have it",
                extra={"dedup_key": alert.dedup_key, "scope": self.scope, "kind": alert.kind},
            )
        return allowed
