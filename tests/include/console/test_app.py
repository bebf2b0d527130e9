"""The console over HTTP: Airflow's authentication in front, JSON twins, escaped pages, served
report files. The app is mounted under ``/logstream`` in a parent app, as the API server does.

A signed-in user is Airflow's ``get_user`` dependency overridden with a user (FastAPI's own test
hook); the bearer tokens themselves are checked against a real API server in
``tests/integration/test_console_airflow.py``.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from logstream.config import Settings
from logstream.console.app import FILE_POLICY, PAGE_POLICY, URL_PREFIX, create_app
from logstream.runtime.server import free_port
from tests.include.console.conftest import DAY, IMG, SCRIPT
from tests.include.reports.hostile import assert_shown_as_text

API_PATHS = (
    "health",
    "windows",
    "anomalies",
    "quarantine",
    "late",
    "reconciliation",
    "latency",
    "quality",
)
#: page -> the hostile values it must show as text
PAGES = {
    "health": (SCRIPT,),  # a query's exception, a restart's reason
    "windows": (SCRIPT, IMG),  # services
    "anomalies": (SCRIPT, IMG),  # keys, details, the evidence filters
    "quarantine": (SCRIPT, IMG),  # a reason's detail, raw samples, late services
    "reports": (SCRIPT, IMG),  # the summary, changed keys, latency services, quality observed
}


def _mounted(settings: Settings) -> tuple[FastAPI, TestClient]:
    console = create_app(lambda: settings)
    parent = FastAPI()
    parent.mount(URL_PREFIX, console)
    return console, TestClient(parent)


@pytest.fixture(scope="module")
def anonymous(console_settings):
    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager().init()  # Airflow's SimpleAuthManager: the login page to redirect to
    return _mounted(console_settings)[1]


@pytest.fixture(scope="module")
def signed_in(console_settings):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    console, client = _mounted(console_settings)
    console.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(
        username="viewer", role="viewer"
    )
    return client


@pytest.mark.parametrize("path", API_PATHS)
def test_json_without_a_token_is_rejected(anonymous, path):
    response = anonymous.get(f"/logstream/api/{path}", params={"day": DAY.isoformat()})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("path", [*PAGES, ""])
def test_pages_without_a_session_redirect_to_the_login(anonymous, path):
    response = anonymous.get(f"/logstream/{path}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login?next=http")
    assert SCRIPT not in response.text


def test_report_files_need_a_session(anonymous):
    response = anonymous.get("/logstream/files/data_docs/index.html", follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize("page", PAGES)
def test_pages_show_hostile_values_as_text(signed_in, page):
    response = signed_in.get(f"/logstream/{page}", params={"day": DAY.isoformat()})
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    text = assert_shown_as_text(response.text, PAGES[page])
    assert "<script" not in response.text.lower()
    assert "<img" not in response.text.lower()
    assert "&lt;script&gt;" in response.text
    assert text  # the page is not empty


def test_pages_link_within_the_mount(signed_in):
    page = signed_in.get("/logstream/health").text
    assert 'href="/logstream/windows"' in page
    assert 'action="/logstream/windows"' in signed_in.get("/logstream/windows").text
    root = signed_in.get("/logstream/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (303, "/logstream/health")


def test_windows_page_links_a_hostile_service_as_a_quoted_parameter(signed_in):
    page = signed_in.get("/logstream/windows", params={"day": DAY.isoformat()}).text
    assert (
        'href="/logstream/windows?day=2026-12-01&amp;service=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"'
        in page
    )


def test_json_twins(signed_in):
    day = {"day": DAY.isoformat()}
    late = signed_in.get("/logstream/api/late", params=day).json()
    assert late["services"][0] == {
        "service": "api",
        "late_events": 2,
        "max_lateness_ms": 3000,
        "avg_lateness_ms": 2000.0,
    }
    one = signed_in.get("/logstream/api/windows", params={**day, "service": "api"}).json()
    assert one["windows"]["api"]["total_requests"] == [60, 120, 3]
    kinds = signed_in.get("/logstream/api/anomalies", params={**day, "kind": "late_data_user"})
    assert [a["entity"] for a in kinds.json()["anomalies"]] == [SCRIPT]
    quality = signed_in.get("/logstream/api/quality", params=day).json()
    assert quality["result"]["data_docs_link"] == "files/data_docs/index.html"
    # JSON carries the raw value (JSON-escaped by the encoder), served as JSON, never sniffed
    quarantine = signed_in.get("/logstream/api/quarantine", params=day)
    assert quarantine.headers["content-type"] == "application/json"
    assert quarantine.headers["x-content-type-options"] == "nosniff"
    assert quarantine.json()["reasons"][0]["samples"][0]["detail"] == SCRIPT


def test_a_bad_day_is_a_clear_400(signed_in):
    response = signed_in.get("/logstream/api/windows", params={"day": "<b>1</b>"})
    assert response.status_code == 400
    assert response.json() == {"detail": "day='<b>1</b>' is not a date; use YYYY-MM-DD"}
    page = signed_in.get("/logstream/windows", params={"day": "<b>1</b>"})
    assert page.status_code == 400
    assert "<b>" not in page.text


def test_report_files_are_served_sandboxed(signed_in):
    response = signed_in.get("/logstream/files/data_docs/index.html")
    assert response.status_code == 200
    assert response.text == "<html>docs</html>"
    assert response.headers["content-security-policy"] == FILE_POLICY
    for outside in ("files/..%2F..%2Fstatus%2Flogs.json", "files/status/logs.json"):
        assert signed_in.get(f"/logstream/{outside}").status_code == 404


def _signed_in_client(settings: Settings) -> tuple[FastAPI, TestClient]:
    from airflow.api_fastapi.core_api.security import get_user

    console, client = _mounted(settings)
    console.dependency_overrides[get_user] = lambda: object()
    return console, client


def test_a_data_root_on_an_unreadable_scheme_is_explained(tmp_path):
    unknown = Settings.load(env={}, state_dir=tmp_path, data_root="gs://bucket/logstream")
    console, client = _signed_in_client(unknown)
    try:
        response = client.get("/logstream/api/windows")
    finally:
        console.state.warmer.stop()
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "gs://" in detail and "hdfs://" in detail and "s3a://" in detail


def test_unreachable_shared_storage_is_a_clear_503(tmp_path):
    """Nothing listens on the WebHDFS port: the page says what could not be read and what to
    check (the tables on real HDFS and S3: tests/integration/test_console_remote.py)."""
    closed = free_port()
    unreachable = Settings.load(
        env={},
        state_dir=tmp_path,
        data_root=f"hdfs://127.0.0.1:{closed}/logstream",
        webhdfs_url=f"http://127.0.0.1:{closed}",
    )
    console, client = _signed_in_client(unreachable)
    try:
        api = client.get("/logstream/api/windows")
        page = client.get("/logstream/windows")
    finally:
        console.state.warmer.stop()
    assert api.status_code == 503 and page.status_code == 503
    assert "could not read" in api.json()["detail"] and "webhdfs_url" in api.json()["detail"]
    assert "could not read" in page.text
