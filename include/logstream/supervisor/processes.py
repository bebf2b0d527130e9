"""The streaming job as operating-system processes: which processes are it, how it is started
detached, and how it is stopped.

A job is recognised by its command line alone: it runs ``jobs/stream_logs.py`` on this
``checkpoint_root``. A recorded pid counts only if the process is alive, is not a zombie, started
at the recorded kernel time (pid reuse) and is still the job. Processes are read from ``/proc``
(``ps`` for a single pid where there is no ``/proc``). The job runs in a session of its own, so
its process group is the job: spark-submit's JVM and the Python driver it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings, settings_arguments
from logstream.errors import LogstreamError
from logstream.supervisor.driver_log import rotate_log
from logstream.supervisor.state import JobRecord, SupervisorPaths, write_record

log = logging.getLogger(__name__)

#: The streaming job the supervisor runs.
JOB_PATH = PROJECT_ROOT / "jobs" / "stream_logs.py"
PIPELINES = ("logs", "user_events")
STOP_GRACE_SECONDS = 30.0
JVM_AFTER_DRIVER_SECONDS = 5.0


# -- reading the process table --------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    """One process as the process table shows it."""

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


def _boot_time() -> float:
    """When the machine booted (epoch seconds; 0 where there is no /proc)."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def process_started_at(info: ProcessInfo) -> float:
    """When ``info`` started (epoch seconds; 0 when the kernel start time is unknown)."""
    if info.start_ticks is None:
        return 0.0
    return _boot_time() + info.start_ticks / os.sysconf("SC_CLK_TCK")


# -- which processes are the job ------------------------------------------------------------------


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


def check_recorded(record: JobRecord, settings: Settings) -> tuple[ProcessInfo | None, str]:
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


def pipelines_of(cmdline: Sequence[str]) -> list[str]:
    """The pipelines a job command line runs (``--pipelines``; all of them without it)."""
    args = list(cmdline)
    for index, arg in enumerate(args):
        if arg == "--pipelines" and index + 1 < len(args):
            return [p for p in args[index + 1].split(",") if p]
        if arg.startswith("--pipelines="):
            return [p for p in arg.split("=", 1)[1].split(",") if p]
    return list(PIPELINES)


# -- start and stop -------------------------------------------------------------------------------


def job_arguments(settings: Settings, pipelines: Sequence[str]) -> list[str]:
    """The job's arguments: every setting as ``--set`` (so a driver on another host sees exactly
    the supervisor's configuration) and the pipelines."""
    return [*settings_arguments(settings), "--pipelines", ",".join(pipelines)]


def launch(settings: Settings, pipelines: Sequence[str]) -> JobRecord:
    """Start the job detached (own session, output appended to the log) and record it."""
    from logstream.runtime.java import java_home
    from logstream.runtime.spark import spark_submit_command

    unknown = set(pipelines) - set(PIPELINES)
    if unknown or not pipelines:
        raise LogstreamError(f"unknown pipeline(s) {sorted(unknown)}; use {', '.join(PIPELINES)}")
    paths = SupervisorPaths.of(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    rotate_log(paths.log)
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
    write_record(settings, record)
    log.info("streaming job started", extra={"pid": record.pid, "pipelines": ",".join(pipelines)})
    return record


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
    drivers = _python_drivers(members, pid) or members[:1]
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


def python_driver(pid: int) -> ProcessInfo | None:
    """The Python driver of the job started as ``pid`` (spark-submit's child that runs the job
    file), or None while it is not (or no longer) running."""
    return next(iter(_python_drivers(_members(pid), pid)), None)


def _python_drivers(members: list[ProcessInfo], pid: int) -> list[ProcessInfo]:
    """The members of the job started as ``pid`` that run the job file: its Python driver (the
    Python workers Spark forks do not)."""
    return [m for m in members if m.pid != pid and _is_python_driver(m)]


def _is_python_driver(info: ProcessInfo) -> bool:
    runs_python = bool(info.cmdline) and "python" in Path(info.cmdline[0]).name
    return runs_python and any(Path(arg).name == JOB_PATH.name for arg in info.cmdline[1:3])


def descendants(pid: int) -> list[ProcessInfo]:
    """The live processes below ``pid`` in the process tree (children, their children, ...)."""
    children: dict[int, list[ProcessInfo]] = {}
    for info in _live_processes():
        children.setdefault(info.ppid, []).append(info)
    found: list[ProcessInfo] = []
    frontier = [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child.pid)
    return found


def kill_process_tree(pid: int) -> None:
    """SIGKILL ``pid`` and everything below it at once (a machine that dies), then reap."""
    for member in [*descendants(pid), process_info(pid)]:
        if member is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGKILL)
    _reap(pid)
