"""The console inside a real Airflow API server, started as ``logstream up`` configures it.

``airflow api-server`` runs with :func:`logstream.runtime.airflow_local.airflow_env` (SQLite in a
temporary home, the checkout's ``plugins/``) on a free loopback port, over the small hand-built
day of ``tests/include/console/conftest.py``. A token from ``POST /auth/token``
(SimpleAuthManager, the generated password) opens the console's JSON; no token, or a forged one,
does not. The admin password file must be ``0600`` after Airflow wrote it, the folders ``0700``,
and the server must listen on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import stat
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
from tests.include.reports.hostile import assert_shown_as_text

DAY = day_of_tables.DAY.isoformat()
START_TIMEOUT_S = 240


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def console_state(tmp_path_factory: pytest.TempPathFactory) -> Settings:
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


@pytest.fixture(scope="module")
def api_server(console_state: Settings) -> Iterator[str]:
    """A real ``airflow api-server`` (one worker) with the local Airflow environment."""
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
                if requests.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
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


@pytest.fixture(scope="module")
def token(api_server: str, console_state: Settings) -> str:
    passwords = json.loads(airflow_local.password_file(console_state).read_text())
    response = requests.post(
        f"{api_server}/auth/token",
        json={
            "username": airflow_local.ADMIN_USER,
            "password": passwords[airflow_local.ADMIN_USER],
        },
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["access_token"]


def test_console_json_with_the_rest_api_token(api_server, token):
    response = requests.get(
        f"{api_server}/logstream/api/windows",
        params={"day": DAY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    data = response.json()
    # hand-computed in tests/include/console/test_data.py: 60 + 120 final, 3 live
    assert data["services"][0] == {"service": "api", "requests": 183}
    assert data["final_through"] == "2026-12-01T10:02:00+00:00"


def test_console_rejects_requests_without_a_valid_token(api_server):
    anonymous = requests.get(f"{api_server}/logstream/api/health", timeout=30)
    assert anonymous.status_code == 401
    forged = requests.get(
        f"{api_server}/logstream/api/health",
        headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.e30.forged"},
        timeout=30,
    )
    assert forged.status_code in (401, 403)
    page = requests.get(f"{api_server}/logstream/health", allow_redirects=False, timeout=30)
    assert page.status_code == 303
    assert "/auth/login" in page.headers["location"]


def test_console_pages_open_with_the_ui_session_and_escape_hostile_values(api_server, token):
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    # the UI's session cookie, as a browser inside the Airflow UI sends it
    response = requests.get(
        f"{api_server}/logstream/windows",
        params={"day": DAY},
        cookies={COOKIE_NAME_JWT_TOKEN: token},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 200
    assert_shown_as_text(response.text, (day_of_tables.SCRIPT, day_of_tables.IMG))


def test_the_plugin_and_its_menu_entry_are_loaded(api_server, token):
    response = requests.get(
        f"{api_server}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    plugins = {p["name"]: p for p in response.json()["plugins"]}
    console = plugins["logstream_console"]
    assert [app["url_prefix"] for app in console["fastapi_apps"]] == ["/logstream"]
    assert [(v["name"], v["href"], v["url_route"]) for v in console["external_views"]] == [
        ("Logstream", "logstream/health", "logstream")
    ]


def test_password_file_and_folders_are_private(api_server, console_state):
    password_file = airflow_local.password_file(console_state)
    passwords = json.loads(password_file.read_text())
    assert set(passwords) == {airflow_local.ADMIN_USER}  # Airflow wrote it ...
    assert _mode(password_file) == 0o600  # ... into the 0600 file prepared for it
    assert _mode(console_state.state_dir) == 0o700
    assert _mode(console_state.airflow_home) == 0o700


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) in LISTEN state on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


def test_the_api_server_listens_on_loopback_only(api_server, console_state):
    assert _listening(console_state.airflow_port) == {"0100007F"}  # 127.0.0.1


def test_a_readable_password_file_is_refused(tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path / "state")
    airflow_local.prepare_home(settings)
    path = airflow_local.password_file(settings)
    assert _mode(path) == 0o600
    path.chmod(0o644)
    with pytest.raises(Exception, match="chmod 600"):
        airflow_local.check_password_file(settings)
    airflow_local.secure_password_file(settings)
    airflow_local.check_password_file(settings)
    assert _mode(path) == 0o600
