"""The console in headless Chromium, inside the real Airflow API server of ``conftest.py``.

Debian's ``/usr/bin/chromium``, driven by Playwright (no browser is downloaded). A user signs in
through Airflow's own login page (SimpleAuthManager, the generated admin password) and lands on
the page they asked for; the windows page draws charts whose numbers are those of a small day of
events written here, counted per minute by a plain-Python oracle in this module; values holding
``<script>`` and ``"><img onerror>`` payloads (service, path, user agent) show as text and run
nothing; anonymous requests are refused.

Cost, on top of the API server shared with ``test_console_airflow.py``: Chromium's start, one
sign-in and five tests; 15 s measured on 2 cores under a load average of 30 (Chromium's start
7.6 s of it; about 1 s on an idle machine).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from logstream.config import Settings
from logstream.runtime import airflow_local
from tests.include.console.conftest import UTC_TIME, write

CHROMIUM = Path("/usr/bin/chromium")
DAY = date(2026, 12, 5)  # a day of its own in the shared server's tables
TIMEOUT_MS = 60_000

#: A payload sets this window property if it ever runs.
FLAG = "__logstream_xss"
SCRIPT = f"<script>window.{FLAG}='script';alert('script')</script>"
IMG = f'"><img src=x onerror=window.{FLAG}=1>'


def _at(minute: int, second: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, 10, minute, second, tzinfo=UTC)


#: The day's events: (service, minute of hour 10, second, status, response time s, path, agent).
EVENTS = [
    ("shop", 0, 5, 200, 0.10, "/", "curl/8"),
    ("shop", 0, 15, 500, 0.30, "/cart", "curl/8"),
    ("shop", 0, 25, 200, 0.20, "/", "curl/8"),
    ("shop", 0, 59, 201, 0.40, "/cart", "curl/8"),
    ("shop", 1, 0, 404, 0.10, "/x", "curl/8"),
    ("shop", 1, 10, 200, 0.20, "/", "curl/8"),
    ("shop", 1, 20, 503, 0.90, "/", "curl/8"),
    ("shop", 1, 30, 200, 0.30, "/", "curl/8"),
    ("shop", 1, 40, 302, 0.20, "/", "curl/8"),
    ("shop", 2, 1, 200, 0.10, IMG, SCRIPT),
    ("shop", 2, 50, 304, 0.10, "/", "curl/8"),
    ("shop", 3, 0, 500, 0.50, "/", IMG),
    ("shop", 3, 10, 200, 0.10, "/", "curl/8"),
    ("shop", 3, 20, 400, 0.20, SCRIPT, "curl/8"),
    ("shop", 3, 59, 200, 0.30, "/", "curl/8"),
    (SCRIPT, 2, 30, 500, 1.00, IMG, SCRIPT),
    (SCRIPT, 2, 40, 200, 0.50, "/", IMG),
    (SCRIPT, 3, 5, 200, 0.50, SCRIPT, SCRIPT),
]
#: The job has finalised the minutes before this one (10:00 and 10:01); later ones are live.
FINAL_BEFORE_MINUTE = 2


def _minute_ms(minute: int) -> int:
    return int(_at(minute, 0).timestamp() * 1000)


def oracle() -> dict[str, dict[int, tuple[int, int]]]:
    """{service: {minute: (requests, errors)}}, errors being status >= 400, counted by hand."""
    counted: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for service, minute, _, status, *_ in EVENTS:
        cell = counted[service][minute]
        cell[0] += 1
        cell[1] += status >= 400
    return {s: {m: (n, e) for m, (n, e) in sorted(by.items())} for s, by in counted.items()}


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def write_day(data: Path) -> None:
    """Bronze events of :data:`EVENTS`, the final windows before :data:`FINAL_BEFORE_MINUTE`
    (as the job writes them), a quarantined copy of a hostile record and a hostile anomaly."""
    columns = list(zip(*EVENTS, strict=True))
    write(
        data / "events" / f"event_date={DAY}" / "event_hour=10",
        {
            "service": (pa.string(), list(columns[0])),
            "event_time": (
                UTC_TIME,
                [_at(m, s) for m, s in zip(columns[1], columns[2], strict=True)],
            ),
            "status_code": (pa.int32(), list(columns[3])),
            "response_time": (pa.float64(), list(columns[4])),
            "path": (pa.string(), list(columns[5])),
            "user_agent": (pa.string(), list(columns[6])),
            "user_id": (pa.string(), ["u"] * len(EVENTS)),
        },
    )
    final = [
        (service, minute, n, e)
        for service, minutes in oracle().items()
        for minute, (n, e) in minutes.items()
        if minute < FINAL_BEFORE_MINUTE
    ]
    common = {
        "window_start": (UTC_TIME, [_at(m, 0) for _, m, _, _ in final]),
        "window_end": (UTC_TIME, [_at(m + 1, 0) for _, m, _, _ in final]),
        "service": (pa.string(), [s for s, _, _, _ in final]),
    }
    write(
        data / "error_rate" / f"window_date={DAY}",
        {
            **common,
            "total_requests": (pa.int64(), [n for _, _, n, _ in final]),
            "error_count": (pa.int64(), [e for _, _, _, e in final]),
            "error_rate": (pa.float64(), [e / n * 100 for _, _, n, e in final]),
        },
    )
    times = [
        [r for s, m, _, _, r, _, _ in EVENTS if (s, m) == (service, minute)]
        for service, minute, _, _ in final
    ]
    write(
        data / "response_time" / f"window_date={DAY}",
        {
            **common,
            "request_count": (pa.int64(), [n for _, _, n, _ in final]),
            **{
                f"p{q}_response_time": (pa.float64(), [_nearest_rank(t, q / 100) for t in times])
                for q in (50, 95, 99)
            },
        },
    )
    raw = json.dumps({"service": SCRIPT, "path": IMG, "user_agent": SCRIPT}).encode()[:-1]
    write(
        data / "quarantine" / f"quarantine_date={DAY}",
        {
            "reason": (pa.string(), ["malformed_json"]),
            "detail": (pa.string(), [IMG]),
            "raw_value": (pa.binary(), [raw]),
            "raw_length": (pa.int32(), [len(raw)]),
            "kafka_topic": (pa.string(), ["logs"]),
            "kafka_partition": (pa.int32(), [0]),
            "kafka_offset": (pa.int64(), [7]),
            "kafka_timestamp": (UTC_TIME, [_at(2, 1)]),
        },
    )
    write(
        data / "anomalies" / f"window_date={DAY}",
        {
            "anomaly_id": (pa.string(), ["b1"]),
            "kind": (pa.string(), ["error_rate_spike"]),
            "entity": (pa.string(), [SCRIPT]),
            "window_start": (UTC_TIME, [_at(2, 0)]),
            "window_end": (UTC_TIME, [_at(3, 0)]),
            "observed": (pa.float64(), [50.0]),
            "threshold": (pa.float64(), [20.0]),
            "baseline": (pa.float64(), [0.0]),
            "severity": (pa.string(), ["warning"]),
            "detail": (pa.string(), [IMG]),
        },
    )


@pytest.fixture(scope="module")
def console(api_server: str, console_state: Settings) -> str:
    """The API server's URL, with this module's day written to its tables."""
    write_day(Path(console_state.data_root))
    return api_server


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (which never downloads one here)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # root in a container: no user namespaces for Chromium's sandbox
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page with a record of the dialogs it opened (an ``alert`` from a payload would)."""

    def __init__(self, page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._dialog)
        page.set_default_timeout(TIMEOUT_MS)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture(scope="module")
def signed_in(console: str, browser, admin_password: str) -> Iterator[Watched]:
    """A browser session signed in through Airflow's login page, landed on the windows page."""
    context = browser.new_context()
    watched = Watched(context.new_page())
    page = watched.page
    wanted = f"{console}/logstream/windows?day={DAY}"
    page.goto(wanted)
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(airflow_local.ADMIN_USER)
    page.get_by_label("Password").fill(admin_password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(wanted)
    try:
        yield watched
    finally:
        context.close()


def _chart(page, title: str) -> dict[str, dict[str, list]]:
    """The chart titled ``title`` as drawn: per series label, its x values (epoch ms, from
    ``data-x0`` and ``data-x``), its ``data-y`` values and how many points its lines and dots
    have; under ``__axis``, the chart's own texts (title, y-axis labels, legend)."""
    return page.evaluate(
        """title => {
            const svg = [...document.querySelectorAll('svg.chart')]
                .find(s => s.querySelector('title').textContent === title);
            if (!svg) return null;
            const out = {};
            for (const g of svg.querySelectorAll('g.series')) {
                const numbers = a => (g.getAttribute(a) || '').split(' ').filter(v => v !== '');
                const x0 = Number(g.dataset.x0);
                let points = 0;
                for (const line of g.querySelectorAll('polyline'))
                    points += line.getAttribute('points').split(' ').length;
                points += g.querySelectorAll('circle').length;
                out[g.dataset.series] = {
                    x: numbers('data-x').map(dx => String(x0 + 1000 * Number(dx))),
                    y: numbers('data-y'),
                    points,
                };
            }
            out.__axis = [...svg.querySelectorAll(':scope > text')].map(t => t.textContent);
            return out;
        }""",
        title,
    )


def _assert_nothing_ran(watched: Watched) -> None:
    """No payload ran (no flag, no dialog), and none became markup: the page's CSP would stop a
    script anyway, so the DOM itself must hold no element from the data."""
    page = watched.page
    assert page.evaluate(f"typeof window.{FLAG}") == "undefined"
    assert watched.dialogs == []
    assert page.locator("script").count() == 0  # the console's pages have no script at all
    assert page.locator("img").count() == 0


def test_login_through_airflow_lands_on_the_console(signed_in):
    page = signed_in.page
    assert page.locator("h1").inner_text() == "Metric windows"
    cookies = {c["name"] for c in page.context.cookies()}
    assert "_token" in cookies  # Airflow's UI session, set by its login page


def test_charts_show_the_numbers_of_the_day(signed_in):
    page = signed_in.page
    expected = oracle()
    # the services table: requests per service, busiest first
    rows = page.locator("main table").first.locator("tbody tr")
    shown = [tuple(rows.nth(i).locator("td").all_inner_texts()) for i in range(rows.count())]
    totals = {s: sum(n for n, _ in by.values()) for s, by in expected.items()}
    assert shown == [(s, str(totals[s])) for s in sorted(totals, key=lambda s: -totals[s])]
    assert shown[0] == ("shop", "15")  # by hand: 4 + 5 + 2 + 4

    for service, minutes in expected.items():
        final = [m for m in minutes if m < FINAL_BEFORE_MINUTE]
        live = [m for m in minutes if m >= FINAL_BEFORE_MINUTE]
        requests = _chart(page, f"{service}: requests/min")
        errors = _chart(page, f"{service}: error rate")
        assert requests is not None and errors is not None, f"no charts for {service!r}"
        for label, chosen in (("final", final), ("live", live)):
            xs = [str(_minute_ms(m)) for m in chosen]
            assert requests[label]["x"] == xs
            assert [int(v) for v in requests[label]["y"]] == [minutes[m][0] for m in chosen]
            assert requests[label]["points"] == len(chosen)  # every value is drawn
            assert errors[label]["x"] == xs
            assert [float(v) for v in errors[label]["y"]] == pytest.approx(
                [minutes[m][1] / minutes[m][0] * 100 for m in chosen], rel=1e-3
            )  # data-y has 4 significant digits
        top = max(n for n, _ in minutes.values())
        assert str(top) in requests["__axis"]  # the y axis runs up to the busiest minute
    # by hand: shop 10:00 1/4 errors, 10:01 2/5, 10:02 0/2, 10:03 2/4
    assert _chart(page, "shop: error rate")["final"]["y"] == ["25", "40"]
    assert _chart(page, "shop: error rate")["live"]["y"] == ["0", "50"]
    assert "50 %" in _chart(page, "shop: error rate")["__axis"]


def test_hostile_service_path_and_user_agent_show_as_text(signed_in, console):
    page = signed_in.page
    # the windows page: the hostile service as a heading, a chart title and a table cell
    assert SCRIPT in page.locator("h2").all_inner_texts()
    assert page.locator("main table").first.get_by_text(SCRIPT, exact=True).count() == 1
    _assert_nothing_ran(signed_in)
    # the quarantined record: its service, path and user agent in the raw sample, its detail
    page.goto(f"{console}/logstream/quarantine?day={DAY}")
    text = page.locator("main").inner_text()
    sample = page.locator("main table code").first.inner_text()
    assert '"user_agent": "' + SCRIPT in sample
    assert IMG.removeprefix('"') in sample  # JSON escapes the quote: \"><img ...>
    assert IMG in text  # the detail, as it is
    _assert_nothing_ran(signed_in)
    page.goto(f"{console}/logstream/anomalies?day={DAY}")
    text = page.locator("main").inner_text()
    assert SCRIPT in text and IMG in text
    _assert_nothing_ran(signed_in)


def test_the_signed_in_session_opens_the_json(signed_in, console):
    response = signed_in.page.context.request.get(f"{console}/logstream/api/windows?day={DAY}")
    assert response.status == 200
    data = response.json()
    assert data["services"] == [
        {"service": "shop", "requests": 15},
        {"service": SCRIPT, "requests": 3},
    ]


def test_anonymous_requests_are_refused(console, browser):
    context = browser.new_context()
    try:
        watched = Watched(context.new_page())
        page = watched.page
        page.goto(f"{console}/logstream/windows?day={DAY}")
        page.wait_for_url("**/auth/login**")
        back = parse_qs(urlsplit(page.url).query)["next"]
        assert back == [f"{console}/logstream/windows?day={DAY}"]  # where to go once signed in
        assert page.get_by_role("button", name="Sign in").is_visible()
        assert SCRIPT not in page.content()
        api = context.request.get(f"{console}/logstream/api/windows?day={DAY}")
        assert api.status == 401
        assert "shop" not in api.text()
        forged = context.request.get(
            f"{console}/logstream/api/windows?day={DAY}",
            headers={"Authorization": "Bearer eyJhbGciOiJIUzUxMiJ9.e30.forged"},
        )
        assert forged.status in (401, 403)
        assert watched.dialogs == []
    finally:
        context.close()
