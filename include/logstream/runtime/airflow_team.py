"""Airflow as a team runs it, on this machine: a PostgreSQL metadata database, the CeleryExecutor
with a Redis broker, and the api-server, scheduler, dag-processor, triggerer and a Celery worker
as separate processes.

It shares the embedded local Airflow's environment (:func:`logstream.runtime.airflow_local
.base_env`: DAGs, plugins, SimpleAuthManager's ``logstream`` admin with a generated password,
the API on 127.0.0.1, ``spark_default``) and adds its own: ``postgresql+psycopg2://`` metadata,
Celery's ``redis://`` broker and ``db+postgresql://`` result backend, the keys every component
must share (JWT secret, API secret key, Fernet key: generated once into ``secrets.json``,
``0600``), and every logstream setting as ``LOGSTREAM_*``, so tasks on the worker run with
exactly the settings the team was started with.

Everything lives under ``<state_dir>/airflow-team/`` (``0700``): ``run/`` (pid files),
``services/<component>.log`` (each process's output), ``logs/`` (task logs), the generated admin
password. Postgres and Redis keep their state in ``<state_dir>/postgres`` and
``<state_dir>/redis`` (:mod:`logstream.runtime.postgres`, :mod:`logstream.runtime.redis`). The
components serve no logs over HTTP (``--skip-serve-logs``): they share the local ``logs/``
folder, and Airflow's log servers would bind every interface.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError
from logstream.runtime import airflow_local
from logstream.runtime.postgres import Database, LocalPostgres, write_secret
from logstream.runtime.redis import LocalRedis
from logstream.runtime.server import HOST, ServerProcess, port_open

log = logging.getLogger(__name__)

DATABASE = "airflow"
DATABASE_OWNER = "airflow"


@dataclass(frozen=True)
class Component:
    """One Airflow process: its ``airflow`` subcommand and, for those that heartbeat, its key in
    the API server's ``/api/v2/monitor/health``."""

    name: str
    arguments: tuple[str, ...]
    health_key: str = ""


def components(settings: Settings, worker_concurrency: int) -> tuple[Component, ...]:
    """The five processes, in start order (the API server first: the others call it)."""
    return (
        Component(
            "api-server",
            ("api-server", "--host", HOST, "--port", str(settings.airflow_port), "--workers", "1"),
        ),
        Component("scheduler", ("scheduler", "--skip-serve-logs"), "scheduler"),
        Component("dag-processor", ("dag-processor",), "dag_processor"),
        Component("triggerer", ("triggerer", "--skip-serve-logs"), "triggerer"),
        Component(
            "celery-worker",
            ("celery", "worker", "--concurrency", str(worker_concurrency), "--skip-serve-logs"),
        ),
    )


def team_home(settings: Settings) -> Path:
    return Path(settings.state_dir) / "airflow-team"


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as its ``LOGSTREAM_<NAME>`` variable (what `Settings.load` reads back)."""
    values = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
        values[f"LOGSTREAM_{item.name.upper()}"] = text
    return values


def shared_keys(home: Path) -> dict[str, str]:
    """The keys every component must share, generated once into ``home/secrets.json`` (0600)."""
    from cryptography.fernet import Fernet

    path = home / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    keys = {
        "jwt_secret": secrets.token_urlsafe(48),
        "api_secret_key": secrets.token_urlsafe(48),
        "fernet_key": Fernet.generate_key().decode(),
    }
    write_secret(path, json.dumps(keys))
    return keys


def async_database_env(database: Database) -> dict[str, str]:
    """Airflow's async engine on the metadata database: ``postgresql+asyncpg`` when asyncpg is
    installed; without it, none (an empty URL), which leaves out only what needs it in Airflow
    3.3: the REST API's wait-for-a-run endpoint, multi-team lookups and async state-store reads
    (asyncpg comes with ``apache-airflow-providers-postgres``)."""
    if importlib.util.find_spec("asyncpg") is not None:
        return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database.url("postgresql+asyncpg")}
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": ""}


def team_env(
    settings: Settings,
    database: Database,
    broker_url: str,
    keys: Mapping[str, str],
    worker_concurrency: int,
) -> dict[str, str]:
    """The environment of every component: :func:`airflow_local.base_env` in the team's home,
    Postgres metadata, Celery on Redis, the shared keys and the logstream settings."""
    home = team_home(settings)
    base_url = f"http://{HOST}:{settings.airflow_port}"
    return {
        **airflow_local.base_env(settings, home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database.url("postgresql+psycopg2"),
        **async_database_env(database),
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": database.url("db+postgresql+psycopg2"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        # workers reach the API server's execution API here (default: localhost:8080)
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        **settings_env(settings),
    }


def check_celery() -> None:
    """Raise when the installed Celery cannot run Airflow's CeleryExecutor: Celery 5.7 removed
    ``celery.backends.database.retry``, which apache-airflow-providers-celery (3.26 and before)
    imports, so the scheduler and the worker fail to load the executor."""
    from importlib.metadata import version

    import celery.backends.database

    if not hasattr(celery.backends.database, "retry"):
        raise ServiceError(
            f"celery {version('celery')} cannot run apache-airflow-providers-celery "
            f"{version('apache-airflow-providers-celery')} (celery 5.7 removed "
            "celery.backends.database.retry, which the provider imports); install celery<5.7, "
            "e.g. pin celery[redis]>=5.5,<5.7 in pyproject.toml"
        )


class TeamAirflow:
    """Start, stop and inspect the team's Airflow of ``settings`` with its Postgres and Redis.

    ``worker_concurrency`` is how many tasks the Celery worker runs at once; ``overrides`` are
    more ``AIRFLOW__*`` variables for every component (e.g. a test's
    ``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        worker_concurrency: int = 2,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.home = team_home(settings)
        self.worker_concurrency = worker_concurrency
        self.overrides = dict(overrides or {})
        self.postgres = LocalPostgres(settings)
        self.redis = LocalRedis(settings)
        self.components = components(settings, worker_concurrency)
        self.processes = {
            c.name: ServerProcess(
                f"the Airflow {c.name}",
                self.home / "run" / f"{c.name}.pid",
                self.home / "services" / f"{c.name}.log",
            )
            for c in self.components
        }

    # -- where things are -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.settings.airflow_port}"

    @property
    def password_file(self) -> Path:
        return airflow_local.password_file(self.settings, self.home)

    def database(self) -> Database:
        """The metadata database (Postgres must have been started once)."""
        password = write_secret(self.postgres.password_file(DATABASE_OWNER))
        return Database(HOST, self.postgres.port, DATABASE, DATABASE_OWNER, password)

    def env(self) -> dict[str, str]:
        """The full environment of every component and ``airflow`` command: this process's,
        without its ``AIRFLOW*``/``LOGSTREAM_*`` variables, plus :func:`team_env`."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "LOGSTREAM_", "PYSPARK_GATEWAY_"))
        }
        keys = shared_keys(self.home)
        env = team_env(
            self.settings, self.database(), self.redis.url(), keys, self.worker_concurrency
        )
        return {**inherited, **env, **self.overrides}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 300.0) -> str:
        """Start Postgres, Redis, migrate the metadata database, then each component until it
        is ready, within ``timeout`` seconds each (idempotent); the API server's address."""
        started = time.monotonic()
        check_celery()
        api = self.processes["api-server"]
        if api.pid() is None and port_open(HOST, self.settings.airflow_port):
            raise ServiceError(
                f"port {self.settings.airflow_port} is taken by another process; stop it or set "
                "LOGSTREAM_AIRFLOW_PORT"
            )
        airflow_local.prepare_home(self.settings, self.home)
        self.postgres.start()
        self.postgres.ensure_database(DATABASE, DATABASE_OWNER)
        self.redis.start()
        self.migrate()
        for component in self.components:
            self._start(component, timeout)
        airflow_local.secure_password_file(self.settings, self.home)
        airflow_local.check_password_file(self.settings, self.home)
        log.info(
            "team Airflow ready",
            extra={"url": self.url, "seconds": round(time.monotonic() - started, 1)},
        )
        return self.url

    def airflow(self, *arguments: str, timeout: float = 600.0) -> subprocess.CompletedProcess:
        """Run ``airflow <arguments>`` with the team's environment; ServiceError if it fails."""
        command = [str(Path(sys.executable).parent / "airflow"), *arguments]
        result = subprocess.run(
            command,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=PROJECT_ROOT,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"`airflow {' '.join(arguments)}` failed (exit {result.returncode}):\n"
                f"{(result.stderr or result.stdout).strip()[-3000:]}"
            )
        return result

    def migrate(self) -> None:
        """``airflow db migrate`` on the Postgres metadata database (idempotent)."""
        self.airflow("db", "migrate")

    def _start(self, component: Component, timeout: float) -> None:
        process = self.processes[component.name]
        if process.pid() is not None:
            return
        # the secrets travel in the environment (readable by this user only), never on the
        # command line
        command = [str(Path(sys.executable).parent / "airflow"), *component.arguments]
        process.launch(
            command,
            lambda: self._ready(component),
            timeout,
            cwd=PROJECT_ROOT,
            env=self.env(),
            poll=1.0,
        )

    def _ready(self, component: Component) -> bool:
        if component.name == "api-server":
            written = self.password_file.exists() and self.password_file.stat().st_size > 0
            return written and self.health() is not None
        if component.name == "celery-worker":
            return bool(self.worker_pings())
        health = self.health() or {}
        return health.get(component.health_key, {}).get("status") == "healthy"

    def health(self) -> dict | None:
        """The API server's ``/api/v2/monitor/health`` (no login needed), None if it does not
        answer."""
        import requests

        try:
            answer = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return None
        return answer.json() if answer.status_code == 200 else None

    def worker_pings(self, timeout: float = 1.0) -> list[dict]:
        """The Celery workers that answer a ``ping`` through the broker."""
        from celery import Celery

        app = Celery(broker=self.redis.url())
        try:
            return app.control.ping(timeout=timeout) or []
        except Exception:  # noqa: BLE001 - a broker that does not answer: no worker yet
            return []
        finally:
            app.close()

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop the components (the worker first), then Redis and Postgres; what was running."""
        stopped = []
        for component in reversed(self.components):
            process = self.processes[component.name]
            group = process.pid()
            if process.stop(timeout=timeout):
                stopped.append(component.name)
            if group is not None:
                _end_group(group)
        for name, server in (("redis", self.redis), ("postgres", self.postgres)):
            if server.stop():
                stopped.append(name)
        return stopped

    def status(self) -> dict[str, bool]:
        """Whether each process runs (Postgres, Redis and the five components)."""
        states = {
            "postgres": self.postgres.status().running,
            "redis": self.redis.status().running,
        }
        states.update({name: p.pid() is not None for name, p in self.processes.items()})
        return states

    def token(self) -> str:
        """A REST API token for the ``logstream`` admin (``POST /auth/token``)."""
        from logstream.runtime.airflow_api import AirflowApi

        return AirflowApi(self.url, self.password_file, airflow_local.ADMIN_USER).token()


def _end_group(group: int, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, whatever is left of a component's process group (its uvicorn,
    executor and Celery pool children). Jobs the tasks started run in sessions of their own."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
