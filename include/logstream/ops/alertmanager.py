"""A local Prometheus Alertmanager (Debian's ``prometheus-alertmanager``) on loopback.

Started and stopped like the Kafka broker (``logstream up`` / ``logstream down``). Its state lives
in ``<state_dir>/alertmanager/``: ``data/`` (silences and the notification log),
``alertmanager.pid``, ``port`` (the port it listens on, kept between starts) and
``logs/alertmanager.log``. It listens on ``127.0.0.1`` only, with clustering (gossip, which would
bind 0.0.0.0:9094) switched off, on ``alertmanager_port``, or when that is 0 on a free port picked
at the first start and reused afterwards. The configuration is ``alertmanager_config`` (default
``deploy/alertmanager/alertmanager.yml``); Alertmanager runs in the config file's folder, so
the config's relative secret files (``secrets/...``) are found there.

:func:`recorded_url` is how the ``alertmanager`` alert sink finds it from any process.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BINARIES = ("prometheus-alertmanager", "alertmanager")
DEFAULT_CONFIG = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def data_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "alertmanager"


def _recorded_port(settings: Settings) -> int:
    if settings.alertmanager_port:
        return settings.alertmanager_port
    try:
        port = int((data_dir(settings) / "port").read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def recorded_url(settings: Settings) -> str:
    """``http://127.0.0.1:<port>`` of the local Alertmanager (the configured port, else the one
    recorded at its first start), or "" when none was ever started under this state_dir."""
    port = _recorded_port(settings)
    return f"http://{HOST}:{port}" if port else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone
    except (FileNotFoundError, IndexError):
        return True


def find_binary() -> str:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    raise ServiceError(
        "prometheus-alertmanager is not installed; install Debian's prometheus-alertmanager "
        "(`make system`) or set alert_sink without alertmanager"
    )


@dataclass(frozen=True)
class AlertmanagerStatus:
    running: bool
    pid: int | None
    url: str
    data_dir: Path
    log_file: Path

    def describe(self) -> str:
        if self.running:
            return f"alertmanager: running (pid {self.pid}) at {self.url}; log {self.log_file}"
        return f"alertmanager: stopped (data dir {self.data_dir}); start it with `logstream up`"


class LocalAlertmanager:
    """Start, stop and inspect the local Alertmanager of ``settings``."""

    def __init__(self, settings: Settings, config_file: str | Path | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir(settings)
        self.config_file = Path(
            config_file or settings.alertmanager_config or DEFAULT_CONFIG
        ).resolve()
        self.pid_file = self.data_dir / "alertmanager.pid"
        self.port_file = self.data_dir / "port"
        self.log_file = self.data_dir / "logs" / "alertmanager.log"

    @property
    def url(self) -> str:
        return recorded_url(self.settings)

    def start(self, timeout: float = 30.0) -> AlertmanagerStatus:
        """Start it (idempotent) and wait until ``/-/ready`` answers 200."""
        status = self.status()
        if status.running:
            return status
        if not self.config_file.is_file():
            raise ServiceError(
                f"Alertmanager configuration {self.config_file} does not exist; set "
                "LOGSTREAM_ALERTMANAGER_CONFIG to your alertmanager.yml"
            )
        binary = find_binary()
        port = self._choose_port()
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            f"--web.external-url=http://{HOST}:{port}/",
            "--cluster.listen-address=",  # no gossip: nothing binds 0.0.0.0:9094
            "--log.level=warn",
        ]
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                command,
                # the config's relative secret files (secrets/...) are read from the working
                # directory: its own folder
                cwd=self.config_file.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"Alertmanager exited with code {process.returncode} while starting; see "
                    f"{self.log_file} (check {self.config_file} with `amtool check-config`):\n"
                    f"{self._tail()}"
                )
            if self._ready(port):
                return self.status()
            time.sleep(0.2)
        self.stop()
        raise ServiceError(
            f"Alertmanager did not become ready within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM, then SIGKILL. Returns False if it was not running."""
        pid = self._pid()
        if pid is None:
            return False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if not _alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> AlertmanagerStatus:
        pid = self._pid()
        port = _recorded_port(self.settings)
        running = pid is not None and bool(port) and self._ready(port)
        return AlertmanagerStatus(running, pid, self.url, self.data_dir, self.log_file)

    # -- internals -------------------------------------------------------------------------
    def _choose_port(self) -> int:
        configured = self.settings.alertmanager_port
        if configured:
            if _port_open(configured):
                raise ServiceError(
                    f"port {HOST}:{configured} is taken by another process; stop it or set "
                    "LOGSTREAM_ALERTMANAGER_PORT to a free port (0 picks one)"
                )
            return configured
        port = _recorded_port(self.settings)
        if not port or _port_open(port):
            if port:
                log.warning(
                    f"Alertmanager's recorded port {port} is taken by another process; "
                    "picking a new free port",
                    extra={"port": port},
                )
            port = _free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(str(port))
        return port

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    @staticmethod
    def _ready(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/-/ready", timeout=1.0) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
