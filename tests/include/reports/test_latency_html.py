"""The latency report's HTML page: well-formed, every row present, one chart per stage, names
escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from logstream.reports.latency_html import render_html
from tests.include.reports.hostile import HOSTILE, assert_shown_as_text

HOUR = datetime(2026, 11, 25, 13, tzinfo=UTC)


class Collector(HTMLParser):
    """Tags, text and well-formedness (every non-void tag closed in order)."""

    VOID = {"meta", "br", "img", "input", "link", "hr"}
    SVG_LEAVES = {"rect", "line", "text", "title", "path"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def report_row(service: str, stage: str, avg: float, level: str | None, scope="service") -> dict:
    return {
        "report_hour": HOUR,
        "scope": scope,
        "service": service,
        "stage": stage,
        "unit": "records" if stage == "kafka_lag_records" else "ms",
        "count": 3,
        "p50": avg / 2,
        "p95": avg,
        "p99": avg * 1.5,
        "max": avg * 2,
        "avg": avg,
        "alert_level": level,
        "report_date": HOUR.date(),
    }


def test_html_report_lists_every_service_with_charts_and_escapes_names():
    hostile = "<script>alert(1)</script>"
    rows = [
        report_row("*", "end_to_end_ms", 900.0, "INFO", scope="all"),
        report_row("api", "end_to_end_ms", 300.0, "OK"),
        report_row(hostile, "end_to_end_ms", 2500.0, "CRITICAL"),
        report_row("web&co", "event_to_kafka_ms", -40.0, None),
        report_row("ingest_logs", "kafka_lag_records", 12.0, None, scope="query"),
    ]
    page = render_html(
        HOUR, rows, generated_at=HOUR + timedelta(hours=1), table="/data/latency_report"
    )
    parser = Collector()
    parser.feed(page)
    parser.close()

    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags  # the hostile name is text, not markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = "".join(parser.text)
    for service in ("api", hostile, "web&co", "ingest_logs", "*"):
        assert service in text
    assert parser.tags.count("svg") == 3  # one chart per stage present
    assert parser.tags.count("rect") == 3 * len(rows)  # p50, p95, p99 per row
    assert parser.tags.count("tr") == len(rows) + 1  # header + one row per report row
    assert "CRITICAL" in text and "2026-11-25T13" in text


def test_html_report_of_an_empty_hour_says_so():
    page = render_html(HOUR, [], generated_at=HOUR, table="t")
    parser = Collector()
    parser.feed(page)
    assert parser.errors == []
    assert "No events" in page and "svg" not in parser.tags


def test_the_page_states_the_spec_levels_it_applies():
    page = render_html(HOUR, [], generated_at=HOUR, table="t")
    assert (
        "(SPEC §5.1.8, on the average of end_to_end_ms and kafka_to_processed_ms): CRITICAL &gt; "
        "2000 ms, WARNING &gt; 1000, INFO &gt; 500, else OK.</p>"
    ) in page


def test_every_hostile_name_is_text_in_the_table_the_alerts_and_the_charts():
    rows = [
        report_row(
            value, "end_to_end_ms", 2500.0 if n % 2 else 300.0, "CRITICAL" if n % 2 else "OK"
        )
        for n, value in enumerate(HOSTILE)
    ]
    rows.append(report_row(HOSTILE[0], "batch_duration_ms", 900.0, None, scope="query"))
    page = render_html(HOUR, rows, generated_at=HOUR, table="</style><script>alert(9)</script>")
    text = assert_shown_as_text(page, shown=HOSTILE)
    assert "</style><script>alert(9)</script>" in text
