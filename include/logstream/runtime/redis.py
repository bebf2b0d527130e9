"""A local Redis server (Debian's ``redis-server``) on loopback: the team Airflow's Celery broker
(:mod:`logstream.runtime.airflow_team`).

Its state lives in ``<state_dir>/redis/``: ``redis.pid``, ``port`` (a free port picked at the
first start and reused afterwards), ``password`` (generated, ``0600``), ``redis.conf`` (``0600``:
it holds the password, which therefore never appears on a command line), ``data/`` (the
append-only file: queued task messages survive a restart) and ``logs/redis.log``. It listens on
``127.0.0.1`` only, in protected mode, and every client must authenticate.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.runtime.postgres import PRIVATE_FILE_MODE, write_secret
from logstream.runtime.server import HOST, ServerProcess, ServerStatus, choose_port, read_port


def find_binary() -> str:
    path = shutil.which("redis-server")
    if not path:
        raise ServiceError(
            "redis-server is not installed; install Debian's redis-server (`make system`)"
        )
    return path


class LocalRedis(ServerProcess):
    """Start, stop (SIGTERM, then SIGKILL; False if it was not running) and inspect the local
    Redis of ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = Path(settings.state_dir) / "redis"
        self.log_file = self.folder / "logs" / "redis.log"
        self.port_file = self.folder / "port"
        self.config_file = self.folder / "redis.conf"
        super().__init__("Redis", self.folder / "redis.pid", self.log_file)

    @property
    def port(self) -> int:
        """The recorded port, 0 before the first start."""
        return read_port(self.port_file)

    @property
    def password(self) -> str:
        return write_secret(self.folder / "password")

    def url(self, database: int = 0) -> str:
        """``redis://:<password>@127.0.0.1:<port>/<database>`` (the password is URL-safe)."""
        return f"redis://:{self.password}@{HOST}:{self.port}/{database}"

    def _write_config(self, port: int) -> None:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {HOST}",
            f"port {port}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f"dir {data}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            'logfile ""',  # standard output: the log file
            "loglevel warning",
        ]
        descriptor = os.open(
            self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE
        )
        with os.fdopen(descriptor, "w") as out:
            out.write("\n".join(lines) + "\n")
        self.config_file.chmod(PRIVATE_FILE_MODE)

    def start(self, timeout: float = 30.0) -> ServerStatus:
        """Start it (idempotent) and wait until an authenticated PING answers."""
        status = self.status()
        if status.running:
            return status
        binary = find_binary()
        port = choose_port(
            self.port_file,
            0,
            name=self.name,
            change_port=f"delete {self.port_file} to pick another free port",
        )
        self._write_config(port)
        self.launch(
            [binary, str(self.config_file)],
            lambda: self._answers(port),
            timeout,
            cwd=self.folder,
            check_hint=f" (its configuration: {self.config_file})",
        )
        return self.status()

    def _answers(self, port: int) -> bool:
        import redis

        client = redis.Redis(host=HOST, port=port, password=self.password, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def status(self) -> ServerStatus:
        pid = self.pid()
        running = pid is not None and bool(self.port) and self._answers(self.port)
        return ServerStatus(
            "redis",
            running,
            pid,
            f"{HOST}:{self.port}" if self.port else "",
            self.folder / "data",
            self.log_file,
            stopped_note=f"data dir {self.folder / 'data'}",
        )
