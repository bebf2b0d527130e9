"""The supervisor's own state files and its lock, under ``<state_dir>/supervisor/``.

``stream.pid`` records the running job (:class:`JobRecord`: a local pid, or a cluster's driver
id), ``restarts.json`` the restart history, ``hold.json`` an operator's stop, ``lock`` serialises
decisions, and ``stream.log`` is the driver's output (for a driver on a cluster, spark-submit's
output; the driver's own is on the cluster). The folder is always local to the supervising host.
Files are replaced atomically; an unreadable file reads as absent (with a warning), so a damaged
state file never stops supervision.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.storage.fs import write_local_text

log = logging.getLogger(__name__)

#: How long a restart stays in the history file.
HISTORY_KEPT_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class SupervisorPaths:
    """Where the supervisor keeps its state (always a local folder of the supervising host)."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> SupervisorPaths:
        return cls(Path(settings.state_dir) / "supervisor")

    @property
    def pid_file(self) -> Path:
        return self.root / "stream.pid"

    @property
    def log(self) -> Path:
        return self.root / "stream.log"

    @property
    def restarts(self) -> Path:
        return self.root / "restarts.json"

    @property
    def hold(self) -> Path:
        return self.root / "hold.json"

    @property
    def lock(self) -> Path:
        return self.root / "lock"


@dataclass(frozen=True)
class JobRecord:
    """What the pid file holds about the running job."""

    pid: int
    started_at: float  # epoch seconds
    proc_start: int | None  # kernel start time (clock ticks since boot); guards against pid reuse
    command: list[str]
    pipelines: list[str]
    checkpoint_root: str
    log: str
    log_offset: int = 0  # where this run's output starts in the log
    adopted: bool = False  # found running, not started by the supervisor
    # where the driver runs (logstream.supervisor.drivers): local (pid above) or standalone,
    # yarn, k8s with the cluster's id of the driver (pid 0)
    deploy: str = "local"
    driver_id: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _write_json(path: Path, data: Any) -> None:
    write_local_text(path, json.dumps(data, indent=2, default=str))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("unreadable supervisor state file", extra={"path": str(path), "error": exc})
        return None


def read_record(settings: Settings) -> JobRecord | None:
    """The pid file's record, or None (never started, stopped, or unreadable)."""
    data = _read_json(SupervisorPaths.of(settings).pid_file)
    if not isinstance(data, dict):
        return None
    known = {f.name for f in fields(JobRecord)}
    try:
        return JobRecord(**{k: v for k, v in data.items() if k in known})
    except TypeError:
        return None


def write_record(settings: Settings, record: JobRecord) -> None:
    """Record ``record`` as the running job."""
    _write_json(SupervisorPaths.of(settings).pid_file, record.as_dict())


def clear_record(settings: Settings) -> None:
    """Forget the running job (after it was stopped)."""
    SupervisorPaths.of(settings).pid_file.unlink(missing_ok=True)


def read_history(settings: Settings) -> list[dict]:
    """Past restarts, oldest first: ``{"at": epoch seconds, "reason": ...}``."""
    data = _read_json(SupervisorPaths.of(settings).restarts)
    restarts = data.get("restarts", []) if isinstance(data, dict) else []
    return [r for r in restarts if isinstance(r, dict) and isinstance(r.get("at"), int | float)]


def write_history(settings: Settings, restarts: list[dict], now: float) -> None:
    """Keep ``restarts`` younger than :data:`HISTORY_KEPT_SECONDS` at ``now`` as the history."""
    kept = [r for r in restarts if now - r["at"] < HISTORY_KEPT_SECONDS]
    _write_json(SupervisorPaths.of(settings).restarts, {"restarts": kept})


def read_hold(settings: Settings) -> dict | None:
    """The operator's hold (``{"at": ISO time}``), or None when the job is not held stopped."""
    return _read_json(SupervisorPaths.of(settings).hold)


def write_hold(settings: Settings) -> None:
    """Hold the job stopped until an operator starts it."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    _write_json(SupervisorPaths.of(settings).hold, {"at": stamp})


def clear_hold(settings: Settings) -> None:
    """Release an operator's hold."""
    SupervisorPaths.of(settings).hold.unlink(missing_ok=True)


@contextlib.contextmanager
def supervisor_lock(settings: Settings, timeout: float = 120.0) -> Iterator[None]:
    """Exclusive lock for one decision (inspect -> start/stop); not re-entrant."""
    path = SupervisorPaths.of(settings).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"another supervisor action has held {path} for {timeout:.0f}s; wait for "
                        "it to finish (a start or stop takes up to a minute) and try again"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
