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

import shutil
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError
from logstream.runtime.server import HOST, HttpServerProcess, ServerStatus

BINARIES = ("prometheus-alertmanager", "alertmanager")
DEFAULT_CONFIG = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def data_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "alertmanager"


def recorded_url(settings: Settings) -> str:
    """``http://127.0.0.1:<port>`` of the local Alertmanager (the configured port, else the one
    recorded at its first start), or "" when none was ever started under this state_dir."""
    return LocalAlertmanager(settings).url


def find_binary() -> str:
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    raise ServiceError(
        "prometheus-alertmanager is not installed; install Debian's prometheus-alertmanager "
        "(`make system`) or set alert_sink without alertmanager"
    )


class AlertmanagerStatus(ServerStatus):
    """The local Alertmanager's status; ``url`` is where its API answers."""

    @property
    def url(self) -> str:
        return self.address


class LocalAlertmanager(HttpServerProcess):
    """Start, stop (SIGTERM, then SIGKILL; False if it was not running) and inspect the local
    Alertmanager of ``settings``."""

    def __init__(self, settings: Settings, config_file: str | Path | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir(settings)
        self.config_file = Path(
            config_file or settings.alertmanager_config or DEFAULT_CONFIG
        ).resolve()
        self.log_file = self.data_dir / "logs" / "alertmanager.log"
        super().__init__(
            "Alertmanager",
            self.data_dir / "alertmanager.pid",
            self.log_file,
            self.data_dir / "port",
            settings.alertmanager_port,
            "set LOGSTREAM_ALERTMANAGER_PORT to a free port (0 picks one)",
        )

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
        port = self.choose_port()
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={HOST}:{port}",
            f"--web.external-url=http://{HOST}:{port}/",
            "--cluster.listen-address=",  # no gossip: nothing binds 0.0.0.0:9094
            "--log.level=warn",
        ]
        self.launch(
            command,
            lambda: self.answers(port),
            timeout,
            # the config's relative secret files (secrets/...) are read from the working
            # directory: its own folder
            cwd=self.config_file.parent,
            check_hint=f" (check {self.config_file} with `amtool check-config`)",
        )
        return self.status()

    def status(self) -> AlertmanagerStatus:
        pid = self.pid()
        running = pid is not None and self.answers()
        return AlertmanagerStatus(
            "alertmanager",
            running,
            pid,
            self.url,
            self.data_dir,
            self.log_file,
            stopped_note=f"data dir {self.data_dir}",
            start_with="logstream up",
        )
