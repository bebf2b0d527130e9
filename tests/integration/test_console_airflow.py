"""The console inside a real Airflow API server, started as ``logstream up`` configures it.

The server (``api_server`` in ``tests/integration/conftest.py``) runs with
:func:`logstream.runtime.airflow_local.airflow_env` (SQLite in a temporary home, the checkout's
``plugins/``) on a free loopback port, over the small hand-built day of
``tests/include/console/conftest.py``. A token from ``POST /auth/token``
(SimpleAuthManager, the generated password) opens the console's JSON; no token, or a forged one,
does not. The admin password file must be ``0600`` after Airflow wrote it, the folders ``0700``,
and the server must listen on 127.0.0.1 only.
"""

from __future__ import annotations

import fcntl
import json
import stat
import time
from pathlib import Path

import pytest
import requests

from logstream.config import Settings
from logstream.runtime import airflow_local
from tests.include.console import conftest as day_of_tables
from tests.include.reports.hostile import assert_shown_as_text

DAY = day_of_tables.DAY.isoformat()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


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
    assert [m["middleware"] for m in console["fastapi_root_middlewares"]] == [
        "logstream.console.app.StartWarmUp"
    ]
    assert [(v["name"], v["href"], v["url_route"]) for v in console["external_views"]] == [
        ("Logstream", "logstream/health", "logstream")
    ]


def test_the_warm_up_started_with_the_server(api_server, console_state):
    from logstream.console.warm import lock_file

    path = lock_file(console_state)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    # held by the API server's warm-up, taken when the server started (no request needed)
    with open(path, "a") as held, pytest.raises(BlockingIOError):
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)


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
