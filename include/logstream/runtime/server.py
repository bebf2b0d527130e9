"""A local server process the project starts and stops (the Kafka broker, Alertmanager,
Prometheus): loopback ports, its pid file, a detached start that waits until it is ready, and a
SIGTERM-then-SIGKILL stop.

The process runs in a session of its own (it outlives the command that started it); its pid is
kept in a file so any later process finds it, and a pid file naming a dead process is removed.
What each server is (its command line, its configuration, how it answers "ready") stays with its
wrapper: :mod:`logstream.kafka.broker`, :mod:`logstream.ops.alertmanager`,
:mod:`logstream.ops.prometheus`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from logstream.errors import ServiceError

log = logging.getLogger(__name__)

#: Every local server listens on loopback only.
HOST = "127.0.0.1"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a zombie child still answers
    ``kill(pid, 0)`` but is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200 (a readiness endpoint such as ``/-/ready``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def read_port(port_file: Path) -> int:
    """The port recorded in ``port_file``, or 0 when there is none (missing, unreadable, not a
    port)."""
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def choose_port(port_file: Path, configured: int, *, name: str, change_port: str) -> int:
    """The port to start on, recorded in ``port_file``: ``configured`` when set (it must be free),
    else the recorded one when free, else a new free port, which later starts reuse.

    ``name`` is the server's name in messages, ``change_port`` what the operator does to use
    another port (how to configure it)."""
    if configured:
        if port_open(HOST, configured):
            raise ServiceError(
                f"port {HOST}:{configured} is taken by another process; stop it or {change_port}"
            )
        return configured
    port = read_port(port_file)
    if not port or port_open(HOST, port):
        if port:
            log.warning(
                f"{name}'s recorded port {port} is taken by another process; picking a new free "
                "port",
                extra={"port": port},
            )
        port = free_port()
    port_file.parent.mkdir(parents=True, exist_ok=True)
    port_file.write_text(str(port))
    return port


@dataclass(frozen=True)
class ServerStatus:
    """What ``status`` of a local server says: ``name`` as commands call it, whether it runs and
    answers, its pid, ``address`` (where it answers: a URL or host:port), ``data_dir`` (its state)
    and log file; when stopped, ``stopped_note`` (default: the folder) and the command that starts
    it (``start_with``, "" for none)."""

    name: str
    running: bool
    pid: int | None
    address: str
    data_dir: Path
    log_file: Path
    stopped_note: str = ""
    start_with: str = ""

    def describe(self) -> str:
        if self.running:
            return f"{self.name}: running (pid {self.pid}) at {self.address}; log {self.log_file}"
        note = self.stopped_note or f"folder {self.data_dir}"
        start = f"; start it with `{self.start_with}`" if self.start_with else ""
        return f"{self.name}: stopped ({note}){start}"


class ServerProcess:
    """One local server process: launched detached with its output in ``output``, found again
    through ``pid_file``, stopped with SIGTERM and, if it does not exit, SIGKILL.

    ``name`` is how messages name it ("Alertmanager", "the Kafka broker"); ``logs`` are the files
    an operator reads when it fails (default: ``output``), whose last lines errors include. A
    server's wrapper subclasses it and adds its command line, configuration and readiness check.
    """

    def __init__(
        self, name: str, pid_file: Path, output: Path, logs: Sequence[Path] | None = None
    ) -> None:
        self.name = name
        self.pid_file = Path(pid_file)
        self.output = Path(output)
        self.logs = tuple(logs) if logs is not None else (self.output,)

    def pid(self) -> int | None:
        """The pid in the pid file if that process is alive, else None (a stale file is
        removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def launch(
        self,
        command: Sequence[str],
        ready: Callable[[], bool],
        timeout: float,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        poll: float = 0.2,
        check_hint: str = "",
    ) -> int:
        """Launch ``command`` detached (in ``cwd``, with ``env`` or this process's environment),
        record its pid and wait until ``ready()``; its pid.

        If it exits first, or is not ready within ``timeout`` seconds (it is then stopped), a
        :class:`ServiceError` names the log files and, when it exited, shows their last lines;
        ``check_hint`` is appended to the log files (e.g. how to check its configuration)."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.output, "ab") as out:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=None if env is None else dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        where = " and ".join(str(path) for path in self.logs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"{self.name} exited with code {process.returncode} while starting; see "
                    f"{where}{check_hint}:\n{self.tail()}"
                )
            if ready():
                return process.pid
            time.sleep(poll)
        self.stop()
        raise ServiceError(
            f"{self.name} did not become ready within {timeout:.0f}s; see {where}{check_hint}"
        )

    def stop(self, timeout: float = 15.0, kill_after: float = 5.0) -> bool:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL and wait up to ``kill_after``.
        False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_after)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.1)
            if not alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of each log file that exists."""
        return "\n".join(
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in self.logs
            if path.exists()
        )


class HttpServerProcess(ServerProcess):
    """A local server process that serves HTTP on a loopback port and answers ``GET /-/ready``
    with 200 once ready (Prometheus, Alertmanager). Its port is ``configured_port``, or when that
    is 0 the one recorded in ``port_file`` at its first start (:func:`choose_port`);
    ``change_port`` tells the operator how to use another port."""

    def __init__(
        self,
        name: str,
        pid_file: Path,
        log_file: Path,
        port_file: Path,
        configured_port: int,
        change_port: str,
    ) -> None:
        super().__init__(name, pid_file, log_file)
        self.port_file = Path(port_file)
        self.configured_port = configured_port
        self.change_port = change_port

    @property
    def port(self) -> int:
        """The configured port, else the recorded one, else 0 (never started)."""
        return self.configured_port or read_port(self.port_file)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, or "" when it has no port yet."""
        return f"http://{HOST}:{self.port}" if self.port else ""

    def choose_port(self) -> int:
        """The port to start on now, recorded for later starts (:func:`choose_port`)."""
        return choose_port(
            self.port_file, self.configured_port, name=self.name, change_port=self.change_port
        )

    def answers(self, port: int | None = None) -> bool:
        """Whether ``/-/ready`` on ``port`` (default: its own) answers 200."""
        port = self.port if port is None else port
        return bool(port) and http_ok(f"http://{HOST}:{port}/-/ready")
