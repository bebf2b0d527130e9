"""The embedded local Airflow: environment, one-time setup, and a detached ``airflow standalone``.

Everything lives under ``<state_dir>/airflow`` (git-ignored): SQLite metadata DB, logs, the
generated admin password. The DAGs folder is the checkout's ``dags/``, the plugins folder its
``plugins/`` (the console). :func:`base_env` is the environment every topology shares; the
team's Airflow (Postgres, Celery, one process per component) is
:mod:`logstream.runtime.airflow_team`.

The admin password is a plain file: it is created ``0600`` before Airflow first writes it (Airflow
appends to the existing file, keeping its mode) and checked again once Airflow answers; the state
folder and Airflow's home are ``0700``. The API server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from logstream.config import PROJECT_ROOT, Settings
from logstream.errors import ServiceError
from logstream.runtime.java import java_home
from logstream.runtime.server import port_open

ADMIN_USER = "logstream"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def base_env(settings: Settings, home: Path) -> dict[str, str]:
    """What every logstream Airflow shares, the embedded local one and the team's
    (:mod:`logstream.runtime.airflow_team`), set through environment variables (no airflow.cfg
    edits): Airflow's home, the checkout's DAGs and plugins, SimpleAuthManager's admin with a
    generated password in ``home``, the API server on 127.0.0.1, the ``spark_default``
    connection, and what tasks need to run spark-submit. The executor and the metadata database
    are each topology's own."""
    venv_bin = Path(sys.executable).parent
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        # the console (plugins/logstream_console.py), mounted in the API server
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # SimpleAuthManager: "user:role"; the password is generated into AIRFLOW_HOME
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(settings, home)),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{settings.airflow_port}",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
            {"conn_type": "spark", "host": settings.spark_master}
        ),
        # the spark provider runs spark-submit from PATH and needs JAVA_HOME
        "JAVA_HOME": java_home(),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOGSTREAM_STATE_DIR": str(settings.state_dir),
    }


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment variables that configure the embedded local Airflow: :func:`base_env` in
    ``airflow_home``, LocalExecutor on SQLite."""
    home = settings.airflow_home
    return {
        **base_env(settings, home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def password_file(settings: Settings, home: Path | None = None) -> Path:
    """The admin password file SimpleAuthManager writes in ``home`` (default: airflow_home)."""
    return (home or settings.airflow_home) / "simple_auth_manager_passwords.json.generated"


def console_url(settings: Settings) -> str:
    """The logstream console's first page in the local Airflow (``plugins/``)."""
    return f"http://127.0.0.1:{settings.airflow_port}/logstream/health"


def _private_dir(path: Path, tighten: bool) -> None:
    """Create ``path`` as ``0700`` (parents as the umask says); an existing folder is made
    ``0700`` only when ``tighten``."""
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    if created or tighten:
        path.chmod(PRIVATE_DIR_MODE)


def secure_password_file(settings: Settings, home: Path | None = None) -> Path:
    """Make the admin password file ``0600`` (created empty if missing: Airflow fills it)."""
    path = password_file(settings, home)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    os.close(descriptor)
    path.chmod(PRIVATE_FILE_MODE)
    return path


def check_password_file(settings: Settings, home: Path | None = None) -> None:
    """Raise when other users may read the admin password file (after Airflow wrote it)."""
    path = password_file(settings, home)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ServiceError(
            f"{path} is mode {mode:04o}: other local users can read the Airflow admin password; "
            f"run chmod 600 {path}"
        )


def prepare_home(settings: Settings, home: Path | None = None) -> None:
    """Private folders for the state (the project's own ``.local/`` or one created here) and for
    Airflow's home (default: airflow_home), and the password file ``0600`` before Airflow writes
    to it."""
    default_state = PROJECT_ROOT / ".local"
    _private_dir(settings.state_dir, tighten=settings.state_dir.resolve() == default_state)
    _private_dir(home or settings.airflow_home, tighten=True)
    secure_password_file(settings, home)


def _pid_file(settings: Settings) -> Path:
    return settings.airflow_home / "standalone.pid"


def start_standalone(settings: Settings, timeout: float = 600.0) -> str:
    """Start ``airflow standalone`` detached (idempotent); return the UI address once it answers."""
    url = f"http://127.0.0.1:{settings.airflow_port}"
    if running_pid(settings) is not None and port_open("127.0.0.1", settings.airflow_port):
        return url
    if port_open("127.0.0.1", settings.airflow_port):
        raise ServiceError(
            f"port {settings.airflow_port} is taken by another process; stop it or set "
            "LOGSTREAM_AIRFLOW_PORT"
        )
    prepare_home(settings)
    env = {**os.environ, **airflow_env(settings)}
    airflow = str(Path(sys.executable).parent / "airflow")
    log_file = settings.airflow_home / "standalone.log"
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            [airflow, "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )
    _pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(
                f"airflow standalone exited with code {process.returncode}; see {log_file}"
            )
        written = password_file(settings).exists() and password_file(settings).stat().st_size > 0
        if port_open("127.0.0.1", settings.airflow_port) and written:
            secure_password_file(settings)  # in case anything replaced the file meanwhile
            check_password_file(settings)
            return url
        time.sleep(1.0)
    raise ServiceError(f"Airflow did not answer on {url} within {timeout:.0f}s; see {log_file}")


def running_pid(settings: Settings) -> int | None:
    try:
        pid = int(_pid_file(settings).read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def stop_standalone(settings: Settings, timeout: float = 60.0) -> bool:
    """Stop the detached standalone process group. Returns False if it was not running."""
    pid = running_pid(settings)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(settings) is not None:
        time.sleep(0.5)
    if running_pid(settings) is not None:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    return True
