"""``processing_latency`` (SPEC §5.1.8): processing time minus event time in ms per service and
minute, with alert level CRITICAL > 2000 ms, WARNING > 1000, INFO > 500, else OK (on the mean).
Expected rows are worked out by hand; the levels are checked on both sides of each threshold."""

from __future__ import annotations

from logstream.catalog.families.processing_latency import PROCESSING_LATENCY
from tests.include.catalog.support import (
    assert_declared_invariants,
    assert_rows,
    ev,
    events,
    expected,
    ms_after,
    shape,
    table,
    ts,
)


def test_the_declaration_follows_the_spec():
    assert shape(PROCESSING_LATENCY) == (
        "events",
        ("service",),
        "1 minute",
        None,
        "10 minutes",
        "record_count",
    )
    assert PROCESSING_LATENCY.key_filter == ()
    assert set(PROCESSING_LATENCY.metric("alert_level").values) == {
        "CRITICAL",
        "WARNING",
        "INFO",
        "OK",
    }


def _latencies(service: str, *milliseconds: int, clock: str = "12:00:10") -> list[dict]:
    moment = ts(clock)
    return [
        ev(moment, service=service, processing_time=ms_after(moment, latency))
        for latency in milliseconds
    ]


def _row(service: str, count: int, avg: float, high: float, low: float, level: str) -> dict:
    return expected(
        "12:00",
        "12:01",
        service=service,
        record_count=count,
        avg_latency_ms=avg,
        max_latency_ms=high,
        min_latency_ms=low,
        alert_level=level,
    )


def test_alert_levels_at_their_thresholds(spark):
    rows = [
        *_latencies("a_ok", 500, 500),  # exactly 500 -> OK
        *_latencies("b_info", 500, 501),  # 500.5 -> INFO
        *_latencies("c_info", 1000),  # exactly 1000 -> INFO
        *_latencies("d_warning", 1000, 1001),  # 1000.5 -> WARNING
        *_latencies("e_warning", 2000),  # exactly 2000 -> WARNING
        *_latencies("f_critical", 2000, 2001),  # 2000.5 -> CRITICAL
        *_latencies("g_skewed", -100, 300),  # processed "before" it happened: kept as is
    ]
    want = [
        _row("a_ok", 2, 500.0, 500.0, 500.0, "OK"),
        _row("b_info", 2, 500.5, 501.0, 500.0, "INFO"),
        _row("c_info", 1, 1000.0, 1000.0, 1000.0, "INFO"),
        _row("d_warning", 2, 1000.5, 1001.0, 1000.0, "WARNING"),
        _row("e_warning", 1, 2000.0, 2000.0, 2000.0, "WARNING"),
        _row("f_critical", 2, 2000.5, 2001.0, 2000.0, "CRITICAL"),
        _row("g_skewed", 2, 100.0, 300.0, -100.0, "OK"),
    ]
    assert_rows(table(PROCESSING_LATENCY, events(spark, rows)), want)
    assert_declared_invariants(PROCESSING_LATENCY, want)


def test_the_window_is_the_event_time_not_the_processing_time(spark):
    rows = [
        *_latencies("api", 3000, clock="12:00:59.900"),  # processed at 12:01:02.9
        *_latencies("api", 200, clock="12:01:00"),  # at the window's end: the next one
    ]
    want = [
        _row("api", 1, 3000.0, 3000.0, 3000.0, "CRITICAL"),
        expected(
            "12:01",
            "12:02",
            service="api",
            record_count=1,
            avg_latency_ms=200.0,
            max_latency_ms=200.0,
            min_latency_ms=200.0,
            alert_level="OK",
        ),
    ]
    assert_rows(table(PROCESSING_LATENCY, events(spark, rows)), want)
    assert_declared_invariants(PROCESSING_LATENCY, want)
