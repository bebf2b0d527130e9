"""The console's data over the hand-built day of ``conftest.py``; every expected value is worked
out by hand from the rows written there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from logstream.console import findings, health, reports, windows
from logstream.console.tables import read_day
from tests.include.console.conftest import DAY, IMG, SCRIPT


def test_final_and_live_windows_per_service(console_settings):
    data = windows.metric_windows(console_settings, DAY)
    # the last final window of the day ends at 10:02 (the 2-minute window of SCRIPT does too)
    assert data["final_through"] == "2026-12-01T10:02:00+00:00"
    api = data["windows"]["api"]
    assert api["window_start"] == [
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:01:00Z",
        "2026-12-01T10:02:00Z",
    ]
    assert api["final"] == [True, True, False]
    minute = 60_000
    first = int(datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp() * 1000)
    assert api["window_start_ms"] == [first, first + minute, first + 2 * minute]
    # final windows as written
    assert api["total_requests"][:2] == [60, 120]
    assert api["requests_per_min"][:2] == [60.0, 120.0]
    assert api["error_rate"][:2] == [10.0, 0.0]
    assert api["p50_response_time"][:2] == [0.1, 0.2]
    assert api["p95_response_time"][:2] == [0.5, 0.6]
    assert api["p99_response_time"][:2] == [0.9, 1.0]
    # live 10:02 from bronze: 10:02:10 (200), 10:02:20 (500), 10:02:30 (404); 10:01:59 is final
    assert api["total_requests"][2] == 3
    assert api["requests_per_min"][2] == 3.0
    assert api["error_rate"][2] == pytest.approx(200 / 3)
    assert api["p50_response_time"][2] == pytest.approx(0.2)
    # a 2-minute window of 30 requests is 15 per minute
    assert data["windows"][SCRIPT]["requests_per_min"] == [15.0]
    # the live minute of IMG (10:03); "ghost" rows live in _staging, another day and hour 9
    assert data["windows"][IMG]["total_requests"] == [1]
    assert data["windows"][IMG]["final"] == [False]
    assert data["services"] == [
        {"service": "api", "requests": 183},
        {"service": SCRIPT, "requests": 30},
        {"service": IMG, "requests": 1},
    ]


def test_windows_of_one_service(console_settings):
    data = windows.metric_windows(console_settings, DAY, service=SCRIPT)
    assert list(data["windows"]) == [SCRIPT]
    assert data["windows"][SCRIPT]["total_requests"] == [30]


def test_a_day_without_tables_is_empty(console_settings):
    data = windows.metric_windows(console_settings, DAY - timedelta(days=30))
    assert data == {
        "day": "2026-11-01",
        "final_through": None,
        "services": [],
        "windows": {},
    }
    assert findings.anomaly_rows(console_settings, DAY - timedelta(days=30))["total"] == 0


def test_read_day_skips_staging_and_reads_only_the_asked_hours(console_settings):
    table = read_day(console_settings, "events", DAY, ["service"], hours=[9])
    assert table.column("service").to_pylist() == ["ghost"]
    services = read_day(console_settings, "error_rate", DAY, ["service"]).column("service")
    assert sorted(services.to_pylist()) == ["<script>alert(1)</script>", "api", "api"]


def test_anomalies_with_their_evidence(console_settings):
    data = findings.anomaly_rows(console_settings, DAY)
    assert data["total"] == 3
    assert data["by_kind"] == {"ddos_suspect": 1, "error_rate_spike": 1, "late_data_user": 1}
    # newest window first
    assert [a["anomaly_id"] for a in data["anomalies"]] == ["a1", "a2", "a3"]
    spike = data["anomalies"][0]
    root = Path(console_settings.data_root)
    assert (spike["entity"], spike["observed"], spike["baseline"], spike["threshold"]) == (
        "api",
        10.0,
        0.0,
        5.0,
    )
    assert spike["evidence"] == {
        "metric_table": str(root / "error_rate" / "window_date=2026-12-01"),
        "metric_filter": "service = \"api\" and window_start = '2026-12-01T10:01:00+00:00'",
        "bronze_table": str(root / "events"),
        "bronze_folders": ["event_date=2026-12-01/event_hour=10"],
        "bronze_filter": "service = \"api\" and event_time >= '2026-12-01T10:01:00+00:00' "
        "and event_time < '2026-12-01T10:02:00+00:00'",
    }
    ddos = data["anomalies"][1]
    assert ddos["evidence"]["metric_table"] == str(root / "ip_requests" / "window_date=2026-12-01")
    assert ddos["evidence"]["bronze_filter"].startswith('ip_address = "\\"><img')
    late = data["anomalies"][2]
    assert late["evidence"]["bronze_table"] == str(root / "late_events")
    assert late["evidence"]["bronze_filter"] == (
        'user_id = "<script>alert(1)</script>" and processing_time on 2026-12-01'
    )


def test_anomalies_of_one_kind(console_settings):
    data = findings.anomaly_rows(console_settings, DAY, kind="ddos_suspect")
    assert [a["anomaly_id"] for a in data["anomalies"]] == ["a2"]


def test_quarantine_by_reason_with_samples(console_settings):
    data = findings.quarantine_by_reason(console_settings, DAY)
    assert data["total"] == 4
    assert [(r["reason"], r["count"]) for r in data["reasons"]] == [
        ("malformed_json", 3),
        ("oversized", 1),
    ]
    samples = data["reasons"][0]["samples"]
    assert [s["kafka_offset"] for s in samples] == [5, 6, 7]
    assert samples[1]["raw"] == "{not json"
    oversized = data["reasons"][1]["samples"][0]
    assert oversized["raw_length"] == len(IMG) * 2000
    assert len(oversized["raw"]) == findings.SAMPLE_CHARS


def test_late_events_per_service(console_settings):
    assert findings.late_by_service(console_settings, DAY) == {
        "day": "2026-12-01",
        "total": 3,
        "services": [
            {
                "service": "api",
                "late_events": 2,
                "max_lateness_ms": 3000,
                "avg_lateness_ms": 2000.0,
            },
            {"service": SCRIPT, "late_events": 1, "max_lateness_ms": 500, "avg_lateness_ms": 500.0},
        ],
    }


def test_reconciliation_report(console_settings):
    data = reports.reconciliation(console_settings, DAY)
    assert data["summary"] == f"2 windows corrected ({SCRIPT})"
    assert data["report_file"] == "files/reconciliation/2026-12-01.json"
    assert data["changed_windows"] == 3
    assert data["by_family"] == [
        {"family": "error_rate", "change": "different", "windows": 1},
        {"family": "error_rate", "change": "missing_in_stream", "windows": 1},
        {"family": "response_time", "change": "different", "windows": 1},
    ]
    assert [(c["family"], c["window_start"][11:16]) for c in data["changes"]] == [
        ("error_rate", "10:01"),
        ("error_rate", "10:03"),
        ("response_time", "10:01"),
    ]


def test_latency_report_rows_and_pages(console_settings):
    data = reports.latency(console_settings, DAY)
    assert [(r["report_hour"][11:13], r["service"], r["p95"]) for r in data["rows"]] == [
        ("10", "api", 250.0),
        ("09", IMG, 150.0),
    ]
    assert data["pages"] == [
        {"hour": "2026-12-01T10", "link": "files/latency/2026-12-01T10.html"},
        {"hour": "2026-12-01T09", "link": "files/latency/2026-12-01T09.html"},
    ]


def test_quality_result_links_only_to_served_files(console_settings):
    result = reports.quality(console_settings, DAY)["result"]
    assert result["success"] is False
    assert result["data_docs_link"] == "files/data_docs/index.html"
    assert [s["docs_link"] for s in result["suites"]] == [
        "files/data_docs/validations/events.html",
        None,  # file:///etc/passwd is not a report
    ]
    assert reports.quality(console_settings, DAY - timedelta(days=1))["result"] is None


@pytest.mark.parametrize(
    "relative",
    [
        "../data/events",
        "../../../../etc/passwd",
        "quality/../../state.json",
        "status/logs.json",
        "data_docs/index.html\x00.png",
        "latency",
    ],
)
def test_served_files_stay_inside_the_report_folders(console_settings, relative):
    assert reports.served_file(console_settings, relative) is None


def test_served_file_inside_a_report_folder(console_settings):
    found = reports.served_file(console_settings, "data_docs/validations/events.html")
    assert (
        found == Path(console_settings.reports_dir).resolve() / "data_docs/validations/events.html"
    )


def test_pipeline_health(console_settings):
    now = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)
    data = health.pipeline_health(console_settings, now, hours=0.5)
    logs, user_events = data["queries"]
    assert (logs["query"], logs["batch_id"], logs["kafka_lag"], logs["age_seconds"]) == (
        "logs",
        41,
        250,
        10.0,
    )
    assert logs["windows_final_through"] == "2026-12-01T10:02:00+00:00"
    assert user_events["state"] == "failed"
    # the last half hour: 10:04:00 and 10:04:30 (09:30 is older; the cut line is skipped)
    ms = int(datetime(2026, 12, 1, 10, 4, tzinfo=UTC).timestamp() * 1000)
    assert data["series"]["logs"]["batch_duration_ms"] == [[ms, 1200], [ms + 30_000, 1500]]
    assert data["series"]["logs"]["kafka_lag"] == [[ms, 300], [ms + 30_000, 250]]
    restarts = data["supervisor"]["restarts"]
    assert [r["at"] for r in restarts] == ["2026-12-01T10:00:00+00:00", "2026-12-01T09:00:00+00:00"]
    assert data["supervisor"]["job"] is None


def test_a_chart_thins_long_series_keeping_spikes():
    from logstream.console.html import thin

    data = [(float(x), 1.0) for x in range(1000)]
    data[501] = (501.0, 50.0)
    data[700] = (700.0, None)
    thinned = thin(data, 100)
    assert len(thinned) == 100
    assert thinned[50] == (500.0, 50.0)  # points 500-509, the spike kept
    assert thinned[70] == (700.0, 1.0)  # a gap inside a run of values is not a gap
    assert thin(data[:10], 100) == data[:10]
