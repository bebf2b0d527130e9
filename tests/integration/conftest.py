"""Fixtures shared by integration modules: a real Airflow API server with the console plugin.

``airflow api-server`` runs with :func:`logstream.runtime.airflow_local.airflow_env` (SQLite in a
temporary home, the checkout's ``plugins/``) on a free loopback port, over the small hand-built
day of ``tests/include/console/conftest.py``. It is started once per test session (its start
costs tens of seconds) for the console's modules (``test_console_airflow.py``,
``test_console_browser.py``), and stopped at the end of the session; modules add their own days
of tables under :func:`console_state`'s ``data_root``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from logstream.config import Settings
from logstream.runtime import airflow_local
from tests.conftest import free_port
from tests.include.console import conftest as day_of_tables

START_TIMEOUT_S = 240


@pytest.fixture(scope="session")
def console_state(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the API server: a prepared Airflow home and the hand-built day of tables."""
    settings = Settings.load(
        env={},
        state_dir=tmp_path_factory.mktemp("console-airflow") / "state",
        airflow_port=free_port(),
    )
    airflow_local.prepare_home(settings)
    data = Path(settings.data_root)
    day_of_tables.metric_tables(data)
    day_of_tables.bronze(data)
    day_of_tables.findings_tables(data)
    day_of_tables.report_files(settings)
    day_of_tables.status_files(settings)
    return settings


@pytest.fixture(scope="session")
def api_server(console_state: Settings) -> Iterator[str]:
    """A real ``airflow api-server`` (one worker) with the local Airflow environment; its URL."""
    settings = console_state
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        **airflow_local.airflow_env(settings),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    log_file = settings.airflow_home / "api-server.log"
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            [airflow, "api-server", "--port", str(settings.airflow_port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{settings.airflow_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"api-server exited; see {log_file.read_text()[-3000:]}"
            try:
                if requests.get(f"{url}/api/v2/monitor/health", timeout=10).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or still starting on a busy machine
            assert time.monotonic() < deadline, f"no answer in {START_TIMEOUT_S}s; see {log_file}"
            time.sleep(1.0)
        # as start_standalone does once Airflow answers
        airflow_local.secure_password_file(settings)
        airflow_local.check_password_file(settings)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@pytest.fixture(scope="session")
def admin_password(api_server: str, console_state: Settings) -> str:
    """The generated admin password (Airflow writes it when the API server starts)."""
    passwords = json.loads(airflow_local.password_file(console_state).read_text())
    return passwords[airflow_local.ADMIN_USER]


@pytest.fixture(scope="session")
def token(api_server: str, admin_password: str) -> str:
    """A REST API token of the admin user (``POST /auth/token``)."""
    response = requests.post(
        f"{api_server}/auth/token",
        json={"username": airflow_local.ADMIN_USER, "password": admin_password},
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["access_token"]
