"""A local PostgreSQL server (Debian's ``postgresql``) on loopback: the team Airflow's metadata
database and Celery result backend (:mod:`logstream.runtime.airflow_team`).

Its state lives in ``<state_dir>/postgres/``: ``postgres.pid``, ``port`` (a free port picked at
the first start and reused afterwards), ``logs/postgres.log`` and one ``<role>.password`` file
(``0600``, generated, never a default) per role: the superuser ``postgres`` and each database
owner :meth:`LocalPostgres.ensure_database` creates. It listens on ``127.0.0.1`` only, with no
Unix socket, and every role logs in with SCRAM-SHA-256.

Postgres refuses to run as root. Run by root, the server runs as the ``postgres`` system user,
which cannot enter the private (``0700``) state folder: its data folder is then
``<postgres user's home>/logstream/<key>/data``, owned by that user, where ``key`` names the
state folder (recorded in ``<state_dir>/postgres/data_dir``). Run by anyone else, the server runs
as that user with its data in ``<state_dir>/postgres/data``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from logstream.config import Settings
from logstream.errors import ServiceError
from logstream.runtime.server import HOST, ServerProcess, ServerStatus, choose_port, read_port

log = logging.getLogger(__name__)

#: The system user that runs the server when logstream runs as root.
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
PRIVATE_FILE_MODE = 0o600


def binaries() -> Path:
    """The folder of Debian's PostgreSQL server binaries (the newest installed version)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not found:
        raise ServiceError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/postgres); "
            "install Debian's postgresql (`make system`)"
        )
    return Path(found[-1]).parent


def write_secret(path: Path, value: str | None = None) -> str:
    """The secret in ``path``: read if the file exists, else ``value`` (default: 32 random URL-safe
    bytes) written to a new ``0600`` file."""
    if path.exists():
        return path.read_text().strip()
    secret = value or secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    return secret


@dataclass(frozen=True)
class Database:
    """A database on the local server and the role that owns it (its password is secret)."""

    host: str
    port: int
    name: str
    user: str
    password: str

    def url(self, scheme: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL, e.g. ``postgresql+psycopg2://user:password@127.0.0.1:port/name``
        (``db+postgresql`` for Celery's result backend)."""
        return (
            f"{scheme}://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{self.name}"
        )


class LocalPostgres(ServerProcess):
    """Initialise (once), start, stop and inspect the local PostgreSQL server of ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = Path(settings.state_dir) / "postgres"
        self.log_file = self.folder / "logs" / "postgres.log"
        self.port_file = self.folder / "port"
        super().__init__("PostgreSQL", self.folder / "postgres.pid", self.log_file)

    # -- where things are -----------------------------------------------------------------
    @property
    def run_as(self) -> str | None:
        """The system user the server runs as: ``postgres`` for root, else None (this user)."""
        return SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        """The server's data folder (see the module's docstring)."""
        if self.run_as is None:
            return self.folder / "data"
        key = hashlib.sha256(str(self.folder.resolve()).encode()).hexdigest()[:16]
        return Path(pwd.getpwnam(self.run_as).pw_dir) / "logstream" / key / "data"

    @property
    def port(self) -> int:
        """The recorded port, 0 before the first start."""
        return read_port(self.port_file)

    def password_file(self, role: str) -> Path:
        return self.folder / f"{role}.password"

    def _as_server_user(self, command: list[str]) -> list[str]:
        """``command`` run as the server's user (exec'd in place: the pid stays the server's)."""
        if self.run_as is None:
            return command
        return [
            "setpriv",
            f"--reuid={self.run_as}",
            f"--regid={self.run_as}",
            "--init-groups",
            "--",
            *command,
        ]

    def _chown(self, path: Path) -> None:
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- lifecycle ------------------------------------------------------------------------
    def initialise(self) -> None:
        """``initdb`` the data folder once, the superuser's password generated (SCRAM only)."""
        data = self.data_dir
        if (data / "PG_VERSION").exists():
            return
        password = write_secret(self.password_file(SUPERUSER))
        parent = data.parent
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (parent.parent, parent):
            self._chown(folder)
        # initdb reads the password from a file its user can read: one in the 0700 parent,
        # removed right after
        pwfile = parent / "initdb.pw"
        descriptor = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(descriptor, "w") as out:
            out.write(password + "\n")
        self._chown(pwfile)
        command = [
            str(binaries() / "initdb"),
            f"--pgdata={data}",
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        try:
            result = subprocess.run(
                self._as_server_user(command), capture_output=True, text=True, cwd=parent
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceError(
                f"initdb of {data} failed (exit {result.returncode}); fix the cause below or "
                f"delete {data} to start afresh:\n{result.stderr.strip()[-2000:]}"
            )

    def start(self, timeout: float = 60.0) -> ServerStatus:
        """Initialise if needed, start (idempotent) and wait until the superuser can log in."""
        status = self.status()
        if status.running:
            return status
        self.initialise()
        port = choose_port(
            self.port_file,
            0,
            name=self.name,
            change_port=f"delete {self.port_file} to pick another free port",
        )
        command = [
            str(binaries() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(port),
            "-c", f"listen_addresses={HOST}",
            "-c", "unix_socket_directories=",  # TCP on loopback only
            "-c", "password_encryption=scram-sha-256",
            "-c", "log_min_messages=warning",
            "-c", "shared_buffers=64MB",
        ]  # fmt: skip
        self.launch(
            self._as_server_user(command),
            lambda: self._answers(port),
            timeout,
            cwd=self.data_dir.parent,
            poll=0.3,
        )
        return self.status()

    def stop(self, timeout: float = 30.0, kill_after: float = 5.0) -> bool:
        """Fast shutdown (SIGINT: open sessions are ended, then a clean checkpoint); SIGTERM and
        SIGKILL only if it does not exit in ``timeout`` seconds. False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is None:
            return True
        return super().stop(timeout=5.0, kill_after=kill_after)

    def remove(self) -> None:
        """Stop it and delete its data folder and ``<state_dir>/postgres``."""
        self.stop()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        if self.run_as is not None:
            with contextlib.suppress(OSError):  # the shared logstream/ folder, once empty
                self.data_dir.parent.parent.rmdir()
        shutil.rmtree(self.folder, ignore_errors=True)

    def status(self) -> ServerStatus:
        pid = self.pid()
        running = pid is not None and bool(self.port) and self._answers(self.port)
        return ServerStatus(
            "postgres",
            running,
            pid,
            f"{HOST}:{self.port}" if self.port else "",
            self.data_dir,
            self.log_file,
            stopped_note=f"data dir {self.data_dir}",
        )

    # -- databases ------------------------------------------------------------------------
    def _connect(self, port: int, database: str = "postgres", timeout: int = 2):
        import psycopg2

        return psycopg2.connect(
            host=HOST,
            port=port,
            user=SUPERUSER,
            password=self.password_file(SUPERUSER).read_text().strip(),
            dbname=database,
            connect_timeout=timeout,
        )

    def _answers(self, port: int) -> bool:
        import psycopg2

        try:
            self._connect(port, timeout=1).close()
        except psycopg2.OperationalError:
            return False
        return True

    def ensure_database(self, name: str, owner: str) -> Database:
        """Database ``name`` owned by login role ``owner`` (created with a generated password
        the first time; not a superuser). The server must be running."""
        from psycopg2 import sql

        password = write_secret(self.password_file(owner))
        connection = self._connect(self.port)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(owner)),
                    (password,),
                )
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(name), sql.Identifier(owner)
                        )
                    )
        finally:
            connection.close()
        return Database(HOST, self.port, name, owner, password)
