"""``system_health`` (SPEC §5.1.7): the whole system per minute, with health_score = 100 if
error_rate < 1, 80 if < 5, 60 if < 10, else 40. Expected rows are counted by hand; the bands are
checked on both sides of each boundary."""

from __future__ import annotations

from logstream.catalog.families.system_health import SYSTEM_HEALTH
from tests.include.catalog.support import (
    assert_declared_invariants,
    assert_rows,
    ev,
    events,
    expected,
    shape,
    table,
)


def test_the_declaration_follows_the_spec():
    assert shape(SYSTEM_HEALTH) == ("events", (), "1 minute", None, "5 minutes", "total_requests")
    assert SYSTEM_HEALTH.key_filter == ()
    assert set(SYSTEM_HEALTH.metric("health_score").values) == {100, 80, 60, 40}


def test_one_row_per_minute_over_every_service(spark):
    frame = events(
        spark,
        [
            ev("12:00:00", service="api", user_id="u1", response_time=0.1, status_code=200),
            ev("12:00:10", service="api", user_id="u2", response_time=0.3, status_code=500),
            ev("12:00:20", service="web", user_id="u1", response_time=None, status_code=404),
            ev("12:00:59.999999", service="auth", user_id=None, response_time=0.2, status_code=200),
            ev("12:01:00", service="web", user_id="u3", response_time=0.5, status_code=200),
        ],
    )
    want = [
        expected(
            "12:00",
            "12:01",
            total_requests=4,
            active_services=3,
            active_users=2,
            avg_response_time=0.2,  # (0.1 + 0.3 + 0.2) / 3
            error_count=2,
            error_rate=50.0,
            health_score=40,
        ),
        expected(
            "12:01",
            "12:02",
            total_requests=1,
            active_services=1,
            active_users=1,
            avg_response_time=0.5,
            error_count=0,
            error_rate=0.0,
            health_score=100,
        ),
    ]
    assert_rows(table(SYSTEM_HEALTH, frame), want)
    assert_declared_invariants(SYSTEM_HEALTH, want)


def _minute(minute: int, requests: int, errors: int) -> list[dict]:
    """``requests`` events of one service in minute 12:<minute>, the first ``errors`` with 500."""
    return [
        ev(
            f"12:{minute:02d}:{number % 60:02d}.{number:06d}",
            service="api",
            status_code=500 if number < errors else 200,
        )
        for number in range(requests)
    ]


def test_health_score_bands_at_their_boundaries(spark):
    minutes = [
        (0, 101, 1),  # 0.99 % -> 100
        (1, 100, 1),  # exactly 1 % -> 80
        (2, 21, 1),  # 4.76 % -> 80
        (3, 20, 1),  # exactly 5 % -> 60
        (4, 11, 1),  # 9.09 % -> 60
        (5, 10, 1),  # exactly 10 % -> 40
        (6, 2, 2),  # 100 % -> 40
    ]
    rows = [
        event for minute, requests, errors in minutes for event in _minute(minute, requests, errors)
    ]

    def row(minute: int, requests: int, errors: int, rate: float, score: int) -> dict:
        return expected(
            f"12:{minute:02d}",
            f"12:{minute + 1:02d}",
            total_requests=requests,
            active_services=1,
            active_users=0,
            avg_response_time=None,
            error_count=errors,
            error_rate=rate,
            health_score=score,
        )

    want = [
        row(0, 101, 1, 100 / 101, 100),
        row(1, 100, 1, 1.0, 80),
        row(2, 21, 1, 100 / 21, 80),
        row(3, 20, 1, 5.0, 60),
        row(4, 11, 1, 100 / 11, 60),
        row(5, 10, 1, 10.0, 40),
        row(6, 2, 2, 100.0, 40),
    ]
    assert_rows(table(SYSTEM_HEALTH, events(spark, rows)), want)
    assert_declared_invariants(SYSTEM_HEALTH, want)
