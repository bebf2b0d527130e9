"""The durable outbox: alerts not delivered yet, on disk until a channel takes them.

``<state_dir>/alerts/outbox.jsonl`` (:func:`outbox_path`), one JSON object per line: ``id``,
``alert`` (:meth:`Alert.as_dict`), ``channels`` (the channel names still owed the alert; null =
every channel), ``reason`` (``queue_full``, ``delivery_failed``, ``shutdown``), ``spilled_at``
(epoch seconds) and ``attempts``. Appends are fsync'd before :meth:`Outbox.spill` returns, so an
alert the caller was told is safe survives a crash and a restart. Every change holds an exclusive
lock on ``outbox.jsonl.lock``, so several processes may spill into one outbox; the background
worker of the streaming job (:mod:`logstream.alerts.background`) delivers it.

Bounds: an outbox holds at most ``max_entries`` alerts (a spill beyond that is refused) and
alerts older than ``max_age_s`` are removed when the worker settles a delivery round. Either way
the alert is logged at ERROR with its kind and dedup key and counted in
``logstream_alerts_dropped_total``: never dropped silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from logstream.alerts import counters
from logstream.alerts.model import Alert

if TYPE_CHECKING:
    from logstream.config import Settings

log = logging.getLogger(__name__)

_KEYS_LOGGED_MAX = 10


def outbox_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / "alerts" / "outbox.jsonl"


class Outbox:
    """Alerts waiting for delivery, in a JSON-lines file (see the module docstring)."""

    def __init__(
        self, path: str | Path, max_entries: int = 10_000, max_age_s: float = 2 * 86_400
    ) -> None:
        self.path = Path(path)
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._size: int | None = None  # entries, as last read or written by this process

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox:
        return cls(
            outbox_path(settings), settings.alert_outbox_max, settings.alert_outbox_max_age_s
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _read(self) -> list[dict]:
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                Alert.from_dict(entry["alert"])
            except (ValueError, KeyError, TypeError) as exc:
                # a line cut by a crash mid-append; it was never acknowledged to a caller
                log.warning(
                    f"alert outbox {self.path} line {number} unreadable ({exc}); skipped",
                    extra={"path": str(self.path), "line": number},
                )
                continue
            entries.append(entry)
        return entries

    def spill(self, alert: Alert, channels: list[str] | None = None, reason: str = "") -> bool:
        """Append ``alert`` (owed to ``channels``, None = all) durably; False when it could not
        be kept (outbox full or unwritable: logged at ERROR and counted as dropped)."""
        entry = {
            "id": uuid.uuid4().hex,
            "alert": alert.as_dict(),
            "channels": channels,
            "reason": reason,
            "spilled_at": time.time(),
            "attempts": 0,
        }
        line = json.dumps(entry, default=str) + "\n"
        try:
            with self._locked():
                if self._size is None:
                    self._size = len(self._read())
                if self._size >= self.max_entries:
                    problem = (
                        f"the outbox {self.path} is full ({self.max_entries} alerts; raise "
                        "alert_outbox_max or bring the receivers back)"
                    )
                else:
                    with open(self.path, "a") as out:
                        out.write(("\n" if _cut_short(self.path) else "") + line)
                        out.flush()
                        os.fsync(out.fileno())
                    self._size += 1
                    problem = ""
        except OSError as exc:
            problem = f"the outbox {self.path} is not writable ({exc})"
        if problem:
            _dropped([alert], problem)
            return False
        counters.count("logstream_alerts_spilled_total")
        counters.set_gauge("logstream_alerts_outbox_pending", self._size or 0)
        return True

    def entries(self) -> list[dict]:
        """Every waiting entry, oldest first."""
        with self._locked():
            found = self._read()
        self._size = len(found)
        counters.set_gauge("logstream_alerts_outbox_pending", self._size)
        return found

    def settle(self, delivered: set[str], still_owed: dict[str, list[str]]) -> int:
        """Remove the ``delivered`` entries, narrow the ``still_owed`` ones to the channels that
        still failed (one attempt more), drop entries past ``max_age_s``; returns what is left.
        Entries spilled meanwhile are kept."""
        now = time.time()
        with self._locked():
            kept, expired = [], []
            for entry in self._read():
                if entry["id"] in delivered:
                    continue
                if entry["id"] in still_owed:
                    entry["channels"] = still_owed[entry["id"]]
                    entry["attempts"] = int(entry.get("attempts", 0)) + 1
                if now - float(entry.get("spilled_at", now)) > self.max_age_s:
                    expired.append(entry)
                    continue
                kept.append(entry)
            self._rewrite(kept)
        self._size = len(kept)
        counters.set_gauge("logstream_alerts_outbox_pending", self._size)
        if expired:
            _dropped(
                [Alert.from_dict(e["alert"]) for e in expired],
                f"they waited in the outbox {self.path} longer than alert_outbox_max_age_s="
                f"{self.max_age_s:g}s (the receivers stayed down)",
            )
        return len(kept)

    def _rewrite(self, entries: list[dict]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w") as out:
            out.writelines(json.dumps(entry, default=str) + "\n" for entry in entries)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _cut_short(path: Path) -> bool:
    """Whether ``path`` ends inside a line (an append cut by a crash)."""
    try:
        with open(path, "rb") as data:
            data.seek(0, os.SEEK_END)
            if data.tell() == 0:
                return False
            data.seek(-1, os.SEEK_END)
            return data.read(1) != b"\n"
    except FileNotFoundError:
        return False


def _dropped(alerts: list[Alert], problem: str) -> None:
    counters.count("logstream_alerts_dropped_total", amount=len(alerts))
    named = ", ".join(f"{a.kind} {a.dedup_key}" for a in alerts[:_KEYS_LOGGED_MAX])
    more = len(alerts) - _KEYS_LOGGED_MAX
    log.error(
        f"{len(alerts)} alert(s) dropped, never delivered: {problem}: {named}"
        f"{f' and {more} more' if more > 0 else ''}. Anomaly alerts' rows are in the "
        "anomalies table",
        extra={"dropped": len(alerts), "dedup_key": alerts[0].dedup_key if alerts else ""},
    )
