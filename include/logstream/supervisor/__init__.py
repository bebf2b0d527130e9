"""Supervision of the streaming job (SPEC §7.1): one instance, health, restarts, checkpoint gate.

The ``log_stream_supervisor`` DAG (a watchdog that runs every minute) and operators call this
module; nothing here depends on Airflow. Public API:

* :func:`inspect` -> :class:`Health`: ``running`` / ``starting`` / ``stalled`` / ``failed`` /
  ``stopped`` / ``held``, with the last error excerpt of the driver log;
* :func:`validate_checkpoints`: refuses incompatible or corrupt checkpoints with a
  :class:`CheckpointError` that says which file, what is wrong and what the operator can do;
* :func:`supervise`: one watchdog step (start, restart with backoff, page on a restart loop);
* :func:`start_job` / :func:`stop_job` for operators, :func:`wait_for_progress` after a start.

How "exactly one instance" holds: every decision is taken under an exclusive ``fcntl`` lock on
``<state_dir>/supervisor/lock``; the job's driver runs detached in its own session (it outlives the
Airflow task that started it) and is recorded in ``<state_dir>/supervisor/stream.pid`` (pid, the
kernel's process start time, the command). A recorded pid counts only if the process is alive, is
not a zombie, started at the recorded time (pid reuse) and its command line is this job on this
checkpoint root; a job process nobody recorded (the pid file was lost) is found by scanning the
process table and adopted instead of starting a second one.

Nothing here deletes, moves or rewrites a checkpoint: a broken checkpoint stops supervision with an
alert until an operator restores it or moves it aside on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from logstream.alerts import Alert, notify
from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import LogstreamError, ServiceError

log = logging.getLogger(__name__)

#: The streaming job the supervisor runs.
JOB_PATH = PROJECT_ROOT / "jobs" / "stream_logs.py"
PIPELINES = ("logs", "user_events")
STOP_GRACE_SECONDS = 30.0
JVM_AFTER_DRIVER_SECONDS = 5.0
LOG_ROTATE_BYTES = 50 * 1024 * 1024
EXCERPT_LINES = 40
EXCERPT_BYTES = 2048
HISTORY_KEPT_SECONDS = 7 * 86_400

_ERROR_LINE = re.compile(r"Exception|Error|Traceback|stream_logs: ")
_STACK_FRAME = re.compile(r"^\s+(at |\.\.\. \d+ more)")
_LOG_VERSION = re.compile(r"^v(\d+)$")


class CheckpointError(LogstreamError):
    """A checkpoint the job would resume from is corrupt or belongs to another configuration."""

    def __init__(self, message: str, *, query: str, path: str, file: str, problem: str) -> None:
        super().__init__(message)
        self.query = query
        self.path = path
        self.file = file
        self.problem = problem


class RestartLoopError(LogstreamError):
    """The job failed again after ``supervisor_max_restarts`` restarts within the window."""


class JobFailedError(LogstreamError):
    """The job exited or a query failed right after a start."""


# -- state files ----------------------------------------------------------------------------------


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

    def as_dict(self) -> dict:
        return asdict(self)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


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


def read_history(settings: Settings) -> list[dict]:
    """Past restarts, oldest first: ``{"at": epoch seconds, "reason": ...}``."""
    data = _read_json(SupervisorPaths.of(settings).restarts)
    restarts = data.get("restarts", []) if isinstance(data, dict) else []
    return [r for r in restarts if isinstance(r, dict) and isinstance(r.get("at"), int | float)]


def _write_history(settings: Settings, restarts: list[dict], now: float) -> None:
    kept = [r for r in restarts if now - r["at"] < HISTORY_KEPT_SECONDS]
    _write_json(SupervisorPaths.of(settings).restarts, {"restarts": kept})


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


# -- processes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    state: str  # kernel state letter; Z = zombie
    start_ticks: int | None
    cmdline: tuple[str, ...]

    @property
    def alive(self) -> bool:
        return self.state not in {"Z", "X"}


def process_info(pid: int) -> ProcessInfo | None:
    """The process ``pid`` from /proc (``ps`` where there is no /proc), or None if it is gone."""
    if pid <= 0:
        return None
    if Path("/proc/self/stat").exists():
        proc = Path("/proc", str(pid))
        try:
            stat = (proc / "stat").read_text()
            raw = (proc / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        after = stat[stat.rindex(")") + 2 :].split()
        cmdline = tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
        return ProcessInfo(pid, int(after[1]), int(after[2]), after[0], int(after[19]), cmdline)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    shown = subprocess.run(
        ["ps", "-o", "ppid=,pgid=,stat=,command=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.split(None, 3)
    if len(shown) < 4:
        return None
    return ProcessInfo(
        pid, int(shown[0]), int(shown[1]), shown[2][:1], None, tuple(shown[3].split())
    )


def _live_processes() -> list[ProcessInfo]:
    """Every live process in /proc (empty where there is no /proc)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return []
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            info = process_info(int(entry.name))
            if info is not None and info.alive:
                found.append(info)
    return found


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (tests, the CLI); no-op otherwise."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_job_process(info: ProcessInfo, settings: Settings) -> bool:
    """True if the command line is the streaming job working on this checkpoint root."""
    root = f"checkpoint_root={settings.checkpoint_root}"
    runs_job = any(Path(arg).name == JOB_PATH.name for arg in info.cmdline)
    same_root = any(arg in (root, f"--set={root}") for arg in info.cmdline)
    return runs_job and same_root


def find_job_processes(settings: Settings) -> list[ProcessInfo]:
    """Running job instances on this checkpoint root (their top process: spark-submit/JVM),
    oldest first. Needs /proc; elsewhere only the pid file is trusted."""
    found = [
        info
        for info in _live_processes()
        if info.pid != os.getpid() and is_job_process(info, settings)
    ]
    pids = {info.pid for info in found}
    roots = [info for info in found if info.ppid not in pids]
    return sorted(roots, key=lambda info: (info.start_ticks or 0, info.pid))


def _check_recorded(record: JobRecord, settings: Settings) -> tuple[ProcessInfo | None, str]:
    """The recorded process if it is still our job, else None and why not."""
    _reap(record.pid)
    info = process_info(record.pid)
    if info is None or not info.alive:
        return None, f"the driver process {record.pid} is gone"
    command = " ".join(info.cmdline)[:160]
    if record.proc_start is not None and info.start_ticks not in (None, record.proc_start):
        return None, (
            f"the pid file is stale: pid {record.pid} now belongs to a process started later "
            f"({command})"
        )
    if not is_job_process(info, settings):
        return None, f"the pid file is stale: pid {record.pid} is not the streaming job ({command})"
    return info, ""


def _members(pid: int) -> list[ProcessInfo]:
    """The live processes of the job started as ``pid``: the process and, as it was started in a
    session of its own, its process group (spark-submit's JVM and the Python driver it runs)."""
    _reap(pid)
    members = {info.pid: info for info in _live_processes() if info.pgid == pid}
    leader = process_info(pid)
    if leader is not None and leader.alive:
        members.setdefault(pid, leader)
    return sorted(members.values(), key=lambda info: info.pid != pid)


def terminate(pid: int, grace_seconds: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the job started as ``pid``: SIGTERM to its Python driver (the job then stops its
    queries and exits, and spark-submit's JVM with it), SIGKILL to whatever of the group is left
    after ``grace_seconds``, or ``JVM_AFTER_DRIVER_SECONDS`` after the Python driver is gone (the
    JVM has nothing left to finish; sinks and checkpoints are safe against a kill).
    Returns True when no process of the job is left."""
    members = _members(pid)
    if not members:
        return True
    # the Python driver runs the job file (Python workers that Spark forks do not)
    drivers = [m for m in members if m.pid != pid and _is_python_driver(m)] or members[:1]
    for member in drivers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member.pid, signal.SIGTERM)
    driver_pids = {m.pid for m in drivers}
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        left = _members(pid)
        if not left:
            return True
        if not driver_pids & {m.pid for m in left}:
            deadline = min(deadline, time.monotonic() + JVM_AFTER_DRIVER_SECONDS)
            driver_pids = set()
        time.sleep(0.5)
    log.warning("job still running after SIGTERM; killing it", extra={"pid": pid})
    for member in _members(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not _members(pid):
            return True
        time.sleep(0.2)
    return not _members(pid)


def _is_python_driver(info: ProcessInfo) -> bool:
    runs_python = bool(info.cmdline) and "python" in Path(info.cmdline[0]).name
    return runs_python and any(Path(arg).name == JOB_PATH.name for arg in info.cmdline[1:3])


# -- the driver log -------------------------------------------------------------------------------


def error_excerpt(
    log_path: str | Path,
    offset: int = 0,
    max_lines: int = EXCERPT_LINES,
    max_bytes: int = EXCERPT_BYTES,
) -> str:
    """The last error of the driver log from ``offset`` on: up to ``max_lines`` lines around the
    last line naming an exception or error (Java stack frames left out), at most ``max_bytes``.
    Without such a line, the log's last lines."""
    path = Path(log_path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(offset, size - 512 * 1024, 0))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [
        line.rstrip()[:300]
        for line in text.splitlines()
        if line.strip() and not _STACK_FRAME.match(line)
    ]
    if not lines:
        return ""
    anchors = [index for index, line in enumerate(lines) if _ERROR_LINE.search(line)]
    anchor = anchors[-1] if anchors else len(lines) - 1
    picked = [lines[anchor]]
    budget = max_bytes - len(picked[0].encode()) - 1
    after = lines[anchor + 1 : anchor + 1 + max_lines // 4]
    before = lines[max(0, anchor - max_lines) : anchor]
    for line in after:
        cost = len(line.encode()) + 1
        if len(picked) >= max_lines or cost > budget:
            break
        picked.append(line)
        budget -= cost
    for line in reversed(before):
        cost = len(line.encode()) + 1
        if len(picked) >= max_lines or cost > budget:
            break
        picked.insert(0, line)
        budget -= cost
    return "\n".join(picked)


def _rotate_log(path: Path) -> None:
    if path.exists() and path.stat().st_size > LOG_ROTATE_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))


# -- checkpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointReport:
    """One query's checkpoint as the supervisor read it."""

    query: str
    path: str
    query_id: str | None
    latest_batch: int | None
    committed_batch: int | None
    # Kafka offsets of the latest committed batch ({topic: {partition: offset}}); ingestion only
    committed_offsets: dict[str, dict[str, int]] | None = None


class _Storage:
    """Read-only access to a checkpoint root: a local folder or a URI pyarrow can open."""

    _SCHEMES = {"s3a": "s3", "s3n": "s3", "abfss": "abfs", "gcs": "gs"}

    def __init__(self, root: str) -> None:
        from pyarrow import fs as pafs

        self._pafs = pafs
        if "://" not in root or root.startswith("file://"):
            self.fs = pafs.LocalFileSystem()
            self.root = os.path.abspath(root.removeprefix("file://"))
        else:
            scheme, rest = root.split("://", 1)
            uri = f"{self._SCHEMES.get(scheme, scheme)}://{rest}"
            self.fs, self.root = pafs.FileSystem.from_uri(uri)

    def children(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of the direct children; dot-files (Hadoop .crc, temp files) left out."""
        selector = self._pafs.FileSelector(path, allow_not_found=True)
        return sorted(
            (info.base_name, info.type == self._pafs.FileType.Directory)
            for info in self.fs.get_file_info(selector)
            if not info.base_name.startswith(".")
        )

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != self._pafs.FileType.NotFound

    def read(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as stream:
            return stream.read()


def expected_topic(settings: Settings, query: str) -> str | None:
    """The Kafka topic an ingestion query's checkpoint must belong to."""
    return {
        "ingest_logs": settings.logs_topic,
        "ingest_user_events": settings.user_events_topic,
    }.get(query)


def _remedy(path: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = f"{path}.broken-{stamp}"
    move = f"mv {shlex.quote(path)} {shlex.quote(target)}"
    if "://" in path and not path.startswith("file://"):
        move = f"hadoop fs -mv {path} {target}"
    return (
        "The supervisor does not start the job on it and never resets it. Restore the folder "
        "from a backup, or, to start this query from scratch on purpose (it re-reads Kafka from "
        "`starting_offsets`, so rows landed before may land again), move it aside with "
        f"`{move}` and trigger log_stream_supervisor with action=start."
    )


def _bad(query: str, path: str, file: str, problem: str, kind: str) -> CheckpointError:
    message = f"checkpoint of query {query} is {kind}: {path}/{file}: {problem}. {_remedy(path)}"
    return CheckpointError(message, query=query, path=path, file=file, problem=problem)


def _parse_log_file(
    raw: bytes, *, query: str, path: str, file: str, min_lines: int
) -> list[str | dict | None]:
    """Spark's metadata-log format: ``v<N>``, then one JSON value (or ``-``) per line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(query, path, file, "not UTF-8 text", "corrupt") from None
    lines = text.split("\n")
    if not lines or not _LOG_VERSION.match(lines[0].lstrip("\x00").strip()):
        raise _bad(
            query,
            path,
            file,
            f"first line is {lines[0][:40]!r} instead of a log version such as 'v1'",
            "corrupt",
        )
    values: list[str | dict | None] = [lines[0].strip()]
    for number, line in enumerate(lines[1:], start=2):
        if line == "-":
            values.append(None)
            continue
        if not line and number == len(lines):
            continue  # trailing newline
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            raise _bad(
                query, path, file, f"line {number} is not JSON ({line[:60]!r})", "corrupt"
            ) from None
    if len(values) < min_lines:
        raise _bad(query, path, file, f"{len(values)} line(s), expected {min_lines}+", "corrupt")
    return values


def _numbered(storage: _Storage, folder: str) -> list[int]:
    return sorted(int(name) for name, is_dir in storage.children(folder) if name.isdigit())


def validate_checkpoint(
    storage: _Storage, path: str, query: str, topic: str | None
) -> CheckpointReport:
    """Read one query's checkpoint the way Spark will; raise :class:`CheckpointError` if Spark
    would fail on it or silently start over (missing metadata, unreadable logs, other topic)."""
    children = dict(storage.children(path))
    logs_present = any(name in children for name in ("offsets", "commits", "sources", "state"))
    if "metadata" not in children:
        if logs_present:
            raise _bad(
                query,
                path,
                "metadata",
                "missing while offsets/commits exist (Spark would start the query under a new "
                "id from `starting_offsets`)",
                "corrupt",
            )
        return CheckpointReport(query, path, None, None, None)
    try:
        metadata = json.loads(storage.read(f"{path}/metadata").decode("utf-8").split("\n")[0])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(query, path, "metadata", "not a JSON object", "corrupt") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("id"), str):
        raise _bad(query, path, "metadata", "has no query id", "corrupt")

    offsets: dict[int, list] = {}
    for batch in _numbered(storage, f"{path}/offsets"):
        file = f"offsets/{batch}"
        offsets[batch] = _parse_log_file(
            storage.read(f"{path}/{file}"), query=query, path=path, file=file, min_lines=3
        )
    commits = _numbered(storage, f"{path}/commits")
    for batch in commits:
        file = f"commits/{batch}"
        _parse_log_file(
            storage.read(f"{path}/{file}"), query=query, path=path, file=file, min_lines=2
        )
    state_folder = f"{path}/logstream_state"
    for name, _ in storage.children(state_folder):
        try:
            json.loads(storage.read(f"{state_folder}/{name}"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise _bad(
                query, path, f"logstream_state/{name}", "not valid JSON", "corrupt"
            ) from None

    latest = max(offsets) if offsets else None
    committed = max((b for b in commits if b in offsets), default=None)
    committed_offsets = None
    if topic is not None and latest is not None:
        source = offsets[latest][2]
        if not isinstance(source, dict) or not all(isinstance(v, dict) for v in source.values()):
            raise _bad(
                query,
                path,
                f"offsets/{latest}",
                f"the source offsets {str(source)[:80]!r} are not Kafka offsets",
                "incompatible",
            )
        if set(source) != {topic}:
            raise _bad(
                query,
                path,
                f"offsets/{latest}",
                f"written for topic(s) {sorted(source)}, but the job is configured for "
                f"{topic!r} (logs_topic / user_events_topic changed?)",
                "incompatible",
            )
        if committed is not None:
            committed_offsets = offsets[committed][2]
    return CheckpointReport(query, path, metadata["id"], latest, committed, committed_offsets)


def validate_checkpoints(settings: Settings) -> list[CheckpointReport]:
    """Check every query checkpoint under ``checkpoint_root``; raise :class:`CheckpointError` at
    the first corrupt or incompatible one. A missing root is fine (first start)."""
    root = settings.checkpoint_root.rstrip("/")
    try:
        storage = _Storage(root)
    except (ImportError, OSError, ValueError) as exc:
        raise LogstreamError(
            f"cannot read the checkpoint root {root} from the supervisor ({exc}); give this host "
            "access to it (pyarrow filesystem credentials) so checkpoints can be checked"
        ) from exc
    reports = []
    for name, is_dir in storage.children(storage.root):
        if is_dir:
            reports.append(
                validate_checkpoint(
                    storage, f"{storage.root}/{name}", name, expected_topic(settings, name)
                )
            )
    return reports


def check_checkpoints(settings: Settings) -> list[CheckpointReport]:
    """:func:`validate_checkpoints`, plus a critical alert when a checkpoint is refused."""
    try:
        return validate_checkpoints(settings)
    except CheckpointError as exc:
        notify(
            Alert(
                dedup_key=f"supervisor:checkpoint:{exc.query}",
                kind="checkpoint_invalid",
                severity="critical",
                summary=f"streaming job not started: checkpoint of {exc.query} refused",
                details={
                    "query": exc.query,
                    "file": f"{exc.path}/{exc.file}",
                    "problem": exc.problem,
                    "message": str(exc),
                },
                links={"checkpoint": exc.path},
            ),
            settings.alert_sink,
            settings,
        )
        raise


# -- health ---------------------------------------------------------------------------------------


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def kafka_end_offsets(settings: Settings, topic: str, attempts: int = 2) -> dict[str, int] | None:
    """The topic's latest offsets per partition, or None if Kafka cannot tell right now (no
    broker, or no partition metadata yet: an empty answer must not read as "no lag")."""
    from kafka import KafkaConsumer, TopicPartition

    for attempt in range(1, attempts + 1):
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                enable_auto_commit=False,
                request_timeout_ms=10_000,
                client_id="logstream-supervisor",
            )
        except Exception as exc:  # noqa: BLE001 - an unreachable broker makes lag unknown
            log.info("kafka not reachable for lag", extra={"error": str(exc), "try": attempt})
            continue
        try:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
                if len(ends) == len(partitions):
                    return {str(tp.partition): int(offset) for tp, offset in ends.items()}
            log.info("no partition metadata for lag", extra={"topic": topic, "try": attempt})
        except Exception as exc:  # noqa: BLE001
            log.info("kafka end offsets unavailable", extra={"topic": topic, "error": str(exc)})
        finally:
            consumer.close()
    return None


def kafka_lag_now(settings: Settings, report: CheckpointReport, topic: str) -> int | None:
    """Records in ``topic`` the query has not committed yet (Kafka end offsets now minus the
    checkpoint's latest committed offsets); None when either side is unknown."""
    if report.committed_offsets is None:
        return None
    ends = kafka_end_offsets(settings, topic)
    if ends is None:
        return None
    done = report.committed_offsets.get(topic, {})
    return sum(max(0, end - int(done.get(partition, 0))) for partition, end in ends.items())


@dataclass(frozen=True)
class Health:
    """What :func:`inspect` found."""

    state: str  # running | starting | stalled | failed | stopped | held
    reason: str
    pid: int | None = None
    alive: bool = False  # pid is a live, verified instance of the job (safe to signal)
    started_at: float | None = None
    pipelines: list[str] = field(default_factory=list)
    recorded: bool = True  # False: a job process nobody recorded (adopted by supervise)
    note: str = ""  # why the pid file was not used, when an unrecorded instance was found
    duplicates: list[int] = field(default_factory=list)  # extra instances on the same checkpoint
    queries: dict[str, dict] = field(default_factory=dict)
    error_excerpt: str = ""
    log: str = ""

    @property
    def needs_start(self) -> bool:
        return self.state in {"stopped", "failed", "stalled"}

    def as_dict(self) -> dict:
        return asdict(self)


def _pipelines_of(cmdline: Sequence[str]) -> list[str]:
    args = list(cmdline)
    for index, arg in enumerate(args):
        if arg == "--pipelines" and index + 1 < len(args):
            return [p for p in args[index + 1].split(",") if p]
        if arg.startswith("--pipelines="):
            return [p for p in arg.split("=", 1)[1].split(",") if p]
    return list(PIPELINES)


def _boot_time() -> float:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _process_started_at(info: ProcessInfo) -> float:
    if info.start_ticks is None:
        return 0.0
    return _boot_time() + info.start_ticks / os.sysconf("SC_CLK_TCK")


def _query_summary(status: dict, now: float) -> dict:
    updated = _epoch(status.get("updated_at"))
    return {
        "state": status.get("state"),
        "updated_at": status.get("updated_at"),
        "age_s": round(now - updated, 1) if updated else None,
        "batch_id": status.get("batch_id"),
        "kafka_lag": status.get("kafka_lag"),
        "totals": status.get("totals", {}),
        "exception": (status.get("exception") or "")[:EXCERPT_BYTES] or None,
    }


def inspect(settings: Settings, now: float | None = None) -> Health:
    """The job's health from the pid file, the process table, the status files and, to tell a
    stall from an idle stream, Kafka's end offsets against the checkpoints. Read-only."""
    from logstream.stream.status import read_statuses

    now = time.time() if now is None else now
    paths = SupervisorPaths.of(settings)
    record = read_record(settings)
    held = _read_json(paths.hold)
    running = find_job_processes(settings)
    info, gone_reason = (None, "")
    if record is not None:
        info, gone_reason = _check_recorded(record, settings)
    recorded = info is not None
    if info is None and running:
        info = running[0]
    duplicates = [p.pid for p in running if info is not None and p.pid != info.pid]
    excerpt_offset = record.log_offset if record else 0

    if info is None:
        if held:
            return Health("held", f"stopped by an operator at {held.get('at')}", log=str(paths.log))
        if record is None:
            return Health("stopped", "not started yet (no pid file)", log=str(paths.log))
        return Health(
            "failed",
            gone_reason,
            pid=record.pid,
            started_at=record.started_at,
            pipelines=record.pipelines,
            error_excerpt=error_excerpt(paths.log, excerpt_offset),
            log=str(paths.log),
        )

    started_at = record.started_at if recorded and record else _process_started_at(info)
    pipelines = record.pipelines if recorded and record else _pipelines_of(info.cmdline)
    base = {
        "pid": info.pid,
        "alive": True,
        "started_at": started_at,
        "pipelines": pipelines,
        "recorded": recorded,
        "note": gone_reason,
        "duplicates": duplicates,
        "log": str(paths.log),
    }
    # status files written by this run of the job (older ones belong to an earlier run)
    current = {
        status["query"]: status
        for status in read_statuses(settings.status_dir)
        if status.get("query") and (_epoch(status.get("updated_at")) or 0) >= started_at - 1
    }
    queries = {name: _query_summary(status, now) for name, status in current.items()}
    failed = {n: s for n, s in current.items() if s.get("state") == "failed" or s.get("exception")}
    if failed:
        name, status = sorted(failed.items())[0]
        first_line = (status.get("exception") or "terminated").strip().splitlines()[0][:300]
        excerpt = error_excerpt(paths.log, excerpt_offset) or (status.get("exception") or "")
        return Health(
            "failed",
            f"query {name} terminated with an exception: {first_line}",
            queries=queries,
            error_excerpt=excerpt[:EXCERPT_BYTES],
            **base,
        )

    expected = {f"ingest_{p}" for p in pipelines} | set(current)
    ages = {
        name: now - (_epoch(current[name].get("updated_at")) or started_at)
        if name in current
        else now - started_at
        for name in expected
    }
    old = sorted(name for name in expected if ages[name] > settings.supervisor_stall_seconds)
    if old:
        lag = _job_kafka_lag(settings, pipelines, current)
        if lag:
            worst = max(old, key=lambda name: ages[name])
            return Health(
                "stalled",
                f"no progress from {worst} for {ages[worst]:.0f}s "
                f"(limit {settings.supervisor_stall_seconds}s) while Kafka lag is {lag}",
                queries=queries,
                error_excerpt=error_excerpt(paths.log, excerpt_offset),
                **base,
            )
    waiting = sorted(
        f"ingest_{p}" for p in pipelines if not _has_progress(current.get(f"ingest_{p}"))
    )
    if waiting:
        return Health(
            "starting", f"waiting for the first progress of {waiting}", queries=queries, **base
        )
    return Health("running", "all queries report progress", queries=queries, **base)


def _has_progress(status: dict | None) -> bool:
    return bool(status) and ("batch_id" in status or status.get("state") == "idle")


def _job_kafka_lag(settings: Settings, pipelines: Sequence[str], current: dict) -> int | None:
    """Kafka records the job's ingestion has not committed: measured now where the checkpoint
    and the broker can be read, else the last value the status files report."""
    total: int | None = None
    for pipeline in pipelines:
        query = f"ingest_{pipeline}"
        topic = expected_topic(settings, query)
        lag = None
        with contextlib.suppress(LogstreamError, OSError, ImportError, ValueError):
            storage = _Storage(settings.checkpoint_root.rstrip("/"))
            path = f"{storage.root}/{query}"
            if topic and storage.exists(path):
                lag = kafka_lag_now(
                    settings, validate_checkpoint(storage, path, query, topic), topic
                )
        if lag is None:
            lag = (current.get(query) or {}).get("kafka_lag")
        if lag is not None:
            total = (total or 0) + int(lag)
    return total


# -- restart policy (pure) ------------------------------------------------------------------------


def restarts_in_window(restart_times: Sequence[float], now: float, window_minutes: int) -> int:
    return sum(1 for at in restart_times if 0 <= now - at < window_minutes * 60)


def backoff_delay(recent_restarts: int, base_seconds: float) -> float:
    """Delay before the next restart: 0 without recent restarts, then base x 2^(n-1)."""
    return 0.0 if recent_restarts <= 0 else base_seconds * 2 ** (recent_restarts - 1)


def window_bucket(now: float, window_minutes: int) -> int:
    """The restart window ``now`` falls in: one page per restart loop and window."""
    return math.floor(now / (window_minutes * 60))


@dataclass(frozen=True)
class Decision:
    action: str  # none | start | restart | wait | page
    reason: str
    restarts_in_window: int = 0
    backoff_remaining_s: float = 0.0


def decide(state: str, restart_times: Sequence[float], now: float, settings: Settings) -> Decision:
    """What one watchdog step does for a job in ``state`` given the past restarts."""
    if state in {"running", "starting"}:
        return Decision("none", f"job is {state}")
    if state == "held":
        return Decision("none", "job is held stopped by an operator; trigger with action=start")
    if state == "stopped":
        return Decision("start", "job not running yet")
    recent = restarts_in_window(restart_times, now, settings.supervisor_restart_window_minutes)
    if recent >= settings.supervisor_max_restarts:
        return Decision(
            "page",
            f"{recent} restarts within {settings.supervisor_restart_window_minutes} minutes "
            f"(limit {settings.supervisor_max_restarts}): restart loop",
            recent,
        )
    if recent:
        last = max(t for t in restart_times if now - t >= 0)
        remaining = backoff_delay(recent, settings.supervisor_backoff_seconds) - (now - last)
        if remaining > 0:
            return Decision("wait", f"backing off {remaining:.0f}s more", recent, remaining)
    return Decision("restart", f"job is {state}", recent)


# -- actions --------------------------------------------------------------------------------------


def job_arguments(settings: Settings, pipelines: Sequence[str]) -> list[str]:
    """The job's arguments: every setting as ``--set`` (so a driver on another host sees exactly
    the supervisor's configuration) and the pipelines."""
    args: list[str] = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        args += ["--set", f"{item.name}={text}"]
    return [*args, "--pipelines", ",".join(pipelines)]


def _launch(settings: Settings, pipelines: Sequence[str]) -> JobRecord:
    """Start the job detached (own session, output appended to the log) and record it."""
    from logstream.runtime.java import java_home
    from logstream.runtime.spark import spark_submit_command

    unknown = set(pipelines) - set(PIPELINES)
    if unknown or not pipelines:
        raise LogstreamError(f"unknown pipeline(s) {sorted(unknown)}; use {', '.join(PIPELINES)}")
    paths = SupervisorPaths.of(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    _rotate_log(paths.log)
    command = spark_submit_command(settings, JOB_PATH, job_arguments(settings, pipelines))
    env = dict(os.environ)
    if "JAVA_HOME" not in env:
        env["JAVA_HOME"] = java_home()
    with paths.log.open("ab") as out:
        offset = out.tell()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"\n==== {stamp} supervisor: starting {shlex.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the Airflow task; its own process group
            cwd=PROJECT_ROOT,
            env=env,
        )
    info = process_info(process.pid)
    record = JobRecord(
        pid=process.pid,
        started_at=time.time(),
        proc_start=info.start_ticks if info else None,
        command=command,
        pipelines=list(pipelines),
        checkpoint_root=settings.checkpoint_root,
        log=str(paths.log),
        log_offset=offset,
    )
    _write_json(paths.pid_file, record.as_dict())
    log.info("streaming job started", extra={"pid": record.pid, "pipelines": ",".join(pipelines)})
    return record


def _adopt(settings: Settings, health: Health) -> None:
    """Record a job process that runs without a (valid) pid file instead of starting another."""
    if health.recorded or health.pid is None:
        return
    info = process_info(health.pid)
    if info is None:
        return
    paths = SupervisorPaths.of(settings)
    record = JobRecord(
        pid=info.pid,
        started_at=health.started_at or time.time(),
        proc_start=info.start_ticks,
        command=list(info.cmdline),
        pipelines=health.pipelines,
        checkpoint_root=settings.checkpoint_root,
        log=str(paths.log),
        log_offset=paths.log.stat().st_size if paths.log.exists() else 0,
        adopted=True,
    )
    _write_json(paths.pid_file, record.as_dict())
    log.warning("adopted an unrecorded job process", extra={"pid": info.pid})


def _stop_duplicates(settings: Settings, health: Health) -> None:
    """More than one instance on one checkpoint: keep the recorded one, stop the others."""
    for pid in health.duplicates:
        log.warning("stopping a second job instance", extra={"pid": pid, "kept": health.pid})
        terminate(pid)
    if health.duplicates:
        notify(
            Alert(
                dedup_key=f"supervisor:duplicate:{health.pid}",
                kind="pipeline_failure",
                severity="warning",
                summary=(
                    f"stopped {len(health.duplicates)} extra streaming job instance(s) "
                    f"{health.duplicates} on {settings.checkpoint_root}; kept pid {health.pid}"
                ),
                details={"kept": health.pid, "stopped": health.duplicates},
            ),
            settings.alert_sink,
            settings,
        )


@dataclass(frozen=True)
class Outcome:
    """What one :func:`supervise` step did (returned to Airflow as XCom)."""

    action: str  # none | started | restarted | waiting | stopped
    reason: str
    state: str
    pid: int | None = None
    started_at: float | None = None
    pipelines: list[str] = field(default_factory=list)
    restarts_in_window: int = 0
    backoff_remaining_s: float = 0.0

    @property
    def launched(self) -> bool:
        return self.action in {"started", "restarted"}

    def as_dict(self) -> dict:
        return asdict(self)


def _page_restart_loop(settings: Settings, health: Health, decision: Decision, now: float) -> None:
    window = settings.supervisor_restart_window_minutes
    excerpt = health.error_excerpt or "(the driver log has no error lines)"
    notify(
        Alert(
            dedup_key=f"supervisor:restart_loop:{window_bucket(now, window)}",
            kind="restart_loop",
            severity="critical",
            summary=(
                f"logstream streaming job keeps failing: {decision.restarts_in_window} restarts "
                f"in {window} min; not restarting. Last state: {health.state}: {health.reason}"
            ),
            details={
                "restarts_in_window": decision.restarts_in_window,
                "window_minutes": window,
                "reason": health.reason,
                "last_error": excerpt,
            },
            links={"log": health.log},
        ),
        settings.alert_sink,
        settings,
    )


def supervise(
    settings: Settings,
    action: str = "supervise",
    pipelines: Sequence[str] | None = None,
    now: float | None = None,
    grace_seconds: float = STOP_GRACE_SECONDS,
) -> Outcome:
    """One watchdog step under the supervisor lock.

    ``supervise``: start the job if it never ran, restart it (checkpoint checked first) if it died
    or stalled, after the backoff; page and raise :class:`RestartLoopError` on a restart loop.
    ``start``: an operator's start: clears the hold and the restart history, then supervises.
    ``stop``: stop the job and hold it stopped until the next ``start``.
    """
    if action not in {"supervise", "start", "stop"}:
        raise LogstreamError(f"unknown action {action!r}; use supervise, start or stop")
    with supervisor_lock(settings):
        if action == "stop":
            return _stop_locked(settings, grace_seconds)
        now = time.time() if now is None else now
        paths = SupervisorPaths.of(settings)
        if action == "start":
            paths.hold.unlink(missing_ok=True)
            _write_history(settings, [], now)
        health = inspect(settings, now)
        _adopt(settings, health)
        _stop_duplicates(settings, health)
        history = read_history(settings)
        decision = decide(health.state, [r["at"] for r in history], now, settings)
        common = {"state": health.state, "restarts_in_window": decision.restarts_in_window}
        if decision.action == "none":
            return Outcome(
                "none", decision.reason, pid=health.pid, pipelines=health.pipelines, **common
            )
        if decision.action == "wait":
            log.info("restart deferred", extra={"remaining_s": decision.backoff_remaining_s})
            return Outcome(
                "waiting",
                f"{health.reason}; {decision.reason}",
                backoff_remaining_s=decision.backoff_remaining_s,
                **common,
            )
        if decision.action == "page":
            _page_restart_loop(settings, health, decision, now)
            raise RestartLoopError(
                f"the streaming job failed again after {decision.restarts_in_window} restarts "
                f"within {settings.supervisor_restart_window_minutes} minutes; on-call was paged "
                f"and it is not restarted. Last problem: {health.reason}. Last error:\n"
                f"{health.error_excerpt or '(none in the driver log)'}\nFix the cause (driver "
                f"log: {health.log}), then trigger log_stream_supervisor with action=start."
            )
        if health.alive and health.pid is not None:  # stalled, or a failed query in a live process
            terminate(health.pid, grace_seconds)
        check_checkpoints(settings)
        record = read_record(settings)
        # a restart runs what was running; a first start or an operator's start what was asked
        chosen = (
            list(record.pipelines)
            if record is not None and action == "supervise"
            else list(pipelines or PIPELINES)
        )
        if decision.action == "restart":
            history.append({"at": now, "reason": f"{health.state}: {health.reason}"[:500]})
            _write_history(settings, history, now)
        launched = _launch(settings, chosen)
        if decision.action == "restart":
            notify(
                Alert(
                    dedup_key=f"supervisor:restart:{int(now)}",
                    kind="pipeline_failure",
                    severity="warning",
                    summary=f"streaming job restarted from its checkpoint: {health.reason}",
                    details={"reason": health.reason, "last_error": health.error_excerpt},
                    links={"log": health.log},
                ),
                settings.alert_sink,
                settings,
            )
        return Outcome(
            "restarted" if decision.action == "restart" else "started",
            f"{health.state}: {health.reason}",
            health.state,
            launched.pid,
            launched.started_at,
            launched.pipelines,
            decision.restarts_in_window + (decision.action == "restart"),
        )


def _stop_locked(settings: Settings, grace_seconds: float = STOP_GRACE_SECONDS) -> Outcome:
    paths = SupervisorPaths.of(settings)
    stopped = []
    record = read_record(settings)
    if record is not None:
        info, _ = _check_recorded(record, settings)
        if info is not None:
            stopped.append(info.pid)
    stopped += [p.pid for p in find_job_processes(settings) if p.pid not in stopped]
    for pid in stopped:
        if not terminate(pid, grace_seconds):
            raise ServiceError(f"the streaming job (pid {pid}) did not stop after SIGKILL")
    paths.pid_file.unlink(missing_ok=True)
    _write_json(paths.hold, {"at": datetime.now(UTC).isoformat(timespec="seconds")})
    return Outcome("stopped", f"stopped pid(s) {stopped}" if stopped else "was not running", "held")


def start_job(settings: Settings, pipelines: Sequence[str] | None = None) -> Outcome:
    """Operator start: clear a hold and the restart history, start if not already running."""
    return supervise(settings, action="start", pipelines=pipelines)


def stop_job(settings: Settings, grace_seconds: float = STOP_GRACE_SECONDS) -> Outcome:
    """Operator stop: SIGTERM the job (SIGKILL after ``grace_seconds``) and hold it stopped, so
    the watchdog does not bring it back until :func:`start_job` or a run with action=start."""
    return supervise(settings, action="stop", grace_seconds=grace_seconds)


def wait_for_progress(
    settings: Settings, started_at: float, timeout: float = 180.0, poll: float = 1.0
) -> Health:
    """After a start: wait until every ingestion query reports progress from this run.

    Raises :class:`JobFailedError` (with the log excerpt) if the job dies or a query fails, and
    :class:`ServiceError` if it is still starting after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        health = inspect(settings)
        if health.state == "failed":
            raise JobFailedError(
                f"the streaming job failed {time.time() - started_at:.0f}s after its start: "
                f"{health.reason}. Last error:\n{health.error_excerpt or '(none)'}\n"
                f"Driver log: {health.log}"
            )
        if health.state in {"held", "stopped"}:
            raise JobFailedError(f"the streaming job is {health.state}: {health.reason}")
        if health.state == "running":
            return health
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the streaming job (pid {health.pid}) reported no progress within {timeout:.0f}s "
                f"of its start ({health.reason}); it is left running. Check the driver log "
                f"{health.log} and the Spark master's capacity"
            )
        time.sleep(poll)
