"""The oracle against hand-computed numbers: if these hold, it can judge the Spark pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import oracle

approx = pytest.approx


def at(minute: int, second: int = 0, ms: int = 0) -> datetime:
    """2026-11-25 10:mm:ss.fff UTC (minute may exceed 59 or be negative)."""
    base = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return base + timedelta(minutes=minute, seconds=second, milliseconds=ms)


def event(
    moment: datetime,
    service: str = "auth",
    user: str | None = "u1",
    ip: str | None = "10.0.0.1",
    rt: float | None = 0.1,
    status: int | None = 200,
    **extra,
) -> dict:
    return {
        "event_time": moment,
        "service": service,
        "user_id": user,
        "ip_address": ip,
        "response_time": rt,
        "status_code": status,
        **extra,
    }


def keys(rows: list[dict], *names: str) -> list[tuple]:
    return [tuple(row[name] for name in names) for row in rows]


# -- windows ----------------------------------------------------------------------------------


def test_tumbling_windows_are_epoch_aligned_and_end_exclusive():
    assert oracle.window_starts(at(0, 59, 999), 60) == [at(0)]
    assert oracle.window_starts(at(1), 60) == [at(1)]
    assert oracle.window_starts(at(4, 59), 300) == [at(0)]
    assert oracle.window_starts(at(7, 30), 300) == [at(5)]


def test_sliding_window_membership():
    # 1 min sliding 30 s: every event is in exactly two windows
    assert oracle.window_starts(at(0, 45), 60, 30) == [at(0), at(0, 30)]
    assert oracle.window_starts(at(0, 30), 60, 30) == [at(0), at(0, 30)]
    assert oracle.window_starts(at(0, 29, 999), 60, 30) == [at(-1, 30), at(0)]
    # 5 min sliding 2 min: windows start at even minutes; an event is in two or three of them
    assert oracle.window_starts(at(5), 300, 120) == [at(2), at(4)]
    assert oracle.window_starts(at(4, 59), 300, 120) == [at(0), at(2), at(4)]


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        oracle.window_starts(datetime(2026, 11, 25, 10, 0), 60)


def test_final_keeps_windows_ending_at_or_before_the_watermark():
    events = [event(at(0, 10)), event(at(1, 10)), event(at(2, 10)), event(at(7))]
    rows = oracle.error_rate_per_service(events)
    watermark = oracle.final_watermark(events, 300)
    assert watermark == at(2)
    assert keys(oracle.final(rows, watermark), "window_start", "window_end") == [
        (at(0), at(1)),
        (at(1), at(2)),  # ends exactly at the watermark: emitted
    ]


# -- §5.1 -------------------------------------------------------------------------------------


def test_response_time_per_service():
    events = [
        event(at(0, 1), rt=0.3),
        event(at(0, 2), rt=0.1),
        event(at(0, 3), rt=None),
        event(at(0, 59, 999), rt=0.2),
        event(at(1), rt=0.5),
        event(at(0, 30), service="search", rt=None),
    ]
    rows = oracle.response_time_per_service(events)
    assert keys(rows, "service", "window_start", "window_end") == [
        ("auth", at(0), at(1)),
        ("auth", at(1), at(2)),
        ("search", at(0), at(1)),
    ]
    first, second, search = rows
    assert first["request_count"] == 4  # the null response time still counts as a request
    assert first["avg_response_time"] == approx(0.2)
    assert (first["min_response_time"], first["max_response_time"]) == (0.1, 0.3)
    assert first["stddev_response_time"] == approx(0.1)  # sample stddev
    assert first["p50_response_time"] == 0.2
    assert first["p95_response_time"] == 0.3
    assert first["p99_response_time"] == 0.3
    assert first["response_times"] == [0.1, 0.2, 0.3]
    assert second["request_count"] == 1
    assert second["avg_response_time"] == 0.5
    assert second["stddev_response_time"] is None  # one value
    assert second["p99_response_time"] == 0.5
    assert search["request_count"] == 1
    for name in ("avg", "min", "max", "stddev", "p50", "p95", "p99"):
        assert search[f"{name}_response_time"] is None
    assert search["response_times"] == []


def test_exact_percentiles_are_the_value_at_rank_ceil_p_n():
    values = [float(v) for v in range(1, 101)]
    assert oracle.exact_percentile(values, 0.5) == 50.0
    assert oracle.exact_percentile(values, 0.95) == 95.0
    assert oracle.exact_percentile(values, 0.99) == 99.0
    assert oracle.exact_percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert oracle.exact_percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert oracle.exact_percentile([7.0], 0.0) == 7.0
    assert oracle.exact_percentile([], 0.5) is None


def test_percentile_rank_ok():
    values = [float(v) for v in range(1, 11)]
    assert oracle.percentile_rank_ok(values, 0.5, 5.0)
    assert not oracle.percentile_rank_ok(values, 0.5, 6.0)  # n/accuracy < 1: exact rank only
    assert not oracle.percentile_rank_ok(values, 0.5, 5.5)  # not one of the values
    assert not oracle.percentile_rank_ok(values, 0.5, None)
    assert oracle.percentile_rank_ok(values, 0.5, 7.0, accuracy=5)  # 2 ranks of slack
    assert not oracle.percentile_rank_ok(values, 0.5, 8.0, accuracy=5)
    # ties occupy several ranks
    ties = [1.0, 2.0, 2.0, 2.0, 3.0]
    assert oracle.percentile_rank_ok(ties, 0.6, 2.0)
    assert not oracle.percentile_rank_ok(ties, 0.2, 2.0)
    assert oracle.percentile_rank_ok(ties, 0.2, 1.0)
    # no values: only "no answer" is right
    assert oracle.percentile_rank_ok([], 0.5, None)
    assert not oracle.percentile_rank_ok([], 0.5, 1.0)
    # 100,000 values at accuracy 10,000: ten ranks of slack
    many = [float(v) for v in range(100_000)]
    assert oracle.percentile_rank_ok(many, 0.5, many[50_009])
    assert oracle.percentile_rank_ok(many, 0.5, many[49_989])
    assert not oracle.percentile_rank_ok(many, 0.5, many[50_010])
    assert not oracle.percentile_rank_ok(many, 0.5, many[49_988])


def test_error_rate_per_service():
    events = [
        event(at(0, 1), status=200),
        event(at(0, 2), status=400),  # 400 is the first error
        event(at(0, 3), status=500),
        event(at(0, 4), status=None),  # unknown status is not an error
        event(at(1, 0), status=399),
    ]
    rows = oracle.error_rate_per_service(events)
    assert keys(rows, "service", "window_start", "total_requests", "error_count") == [
        ("auth", at(0), 4, 2),
        ("auth", at(1), 1, 0),
    ]
    assert rows[0]["error_rate"] == 50.0
    assert rows[1]["error_rate"] == 0.0


def test_ip_patterns():
    events = [
        event(at(1), service="auth", user="u1", ip="A"),
        event(at(3), service="search", user="u2", ip="A"),
        event(at(4, 59, 999), service="auth", user=None, ip="A"),
        event(at(5), service="cart", user="u1", ip="A"),
        event(at(2), service="cart", user="u3", ip=None),  # no IP: no row
        event(at(2), service="cart", user="u3", ip="B"),
    ]
    rows = oracle.ip_patterns(events)
    assert rows == [
        {
            "ip_address": "A",
            "window_start": at(0),
            "window_end": at(5),
            "request_count": 3,
            "unique_users": 2,
            "services_used": ["auth", "search"],
        },
        {
            "ip_address": "A",
            "window_start": at(5),
            "window_end": at(10),
            "request_count": 1,
            "unique_users": 1,
            "services_used": ["cart"],
        },
        {
            "ip_address": "B",
            "window_start": at(0),
            "window_end": at(5),
            "request_count": 1,
            "unique_users": 1,
            "services_used": ["cart"],
        },
    ]


def test_sla_per_service():
    events = [
        event(at(0, 1), rt=0.5, status=200),
        event(at(0, 2), rt=1.0, status=200),  # exactly 1 s is fast
        event(at(0, 3), rt=1.5, status=503),
        event(at(0, 4), rt=None, status=201),  # no time: not fast; 201 is not "successful"
    ]
    (row,) = oracle.sla_per_service(events)
    assert row == {
        "service": "auth",
        "window_start": at(0),
        "window_end": at(1),
        "total_requests": 4,
        "fast_requests": 2,
        "successful_requests": 2,
        "availability_pct": 50.0,
        "performance_pct": 50.0,
    }


def test_user_activity():
    events = [
        event(at(0), service="auth", user="u1", rt=0.1),
        event(at(2), service="search", user="u1", rt=0.3),
        event(at(4, 59), service="auth", user="u1", rt=None),
        event(at(5), service="auth", user="u1", rt=None),
        event(at(1), service="auth", user=None, rt=0.9),  # anonymous: no row
    ]
    rows = oracle.user_activity(events)
    assert keys(rows, "user_id", "window_start", "activity_count", "distinct_services") == [
        ("u1", at(0), 3, 2),
        ("u1", at(5), 1, 1),
    ]
    assert rows[0]["avg_response_time"] == approx(0.2)
    assert rows[1]["avg_response_time"] is None


def test_service_popularity():
    events = [
        event(at(0, 1), user="u1"),
        event(at(0, 2), user="u1"),
        event(at(0, 3), user="u2"),
        event(at(0, 4), user=None),
        event(at(0, 5), service="cart", user="u1"),
    ]
    rows = oracle.service_popularity(events)
    assert keys(rows, "service", "window_start", "request_count", "unique_users") == [
        ("auth", at(0), 4, 2),
        ("cart", at(0), 1, 1),
    ]


@pytest.mark.parametrize(
    ("error_rate", "score"),
    [(0.0, 100), (0.99, 100), (1.0, 80), (4.99, 80), (5.0, 60), (9.99, 60), (10.0, 40), (100, 40)],
)
def test_health_score_bands(error_rate, score):
    assert oracle.health_score(error_rate) == score


def test_system_health():
    events = [event(at(0, s), service="auth", user=f"u{s % 3}", rt=0.2) for s in range(15)]
    events += [event(at(0, 30 + s), service="search", user=None, rt=None) for s in range(4)]
    events.append(event(at(0, 50), service="cart", user="u9", rt=0.8, status=500))
    events.append(event(at(1, 5), service="cart", user="u9", rt=None, status=404))
    rows = oracle.system_health(events)
    assert rows[0] == {
        "window_start": at(0),
        "window_end": at(1),
        "total_requests": 20,
        "active_services": 3,
        "active_users": 4,  # u0, u1, u2, u9
        "avg_response_time": approx((15 * 0.2 + 0.8) / 16),
        "error_count": 1,
        "error_rate": 5.0,
        "health_score": 60,
    }
    assert rows[1]["total_requests"] == 1
    assert rows[1]["avg_response_time"] is None
    assert (rows[1]["error_rate"], rows[1]["health_score"]) == (100.0, 40)


@pytest.mark.parametrize(
    ("avg_ms", "level"),
    [(0, "OK"), (500, "OK"), (500.5, "INFO"), (1000, "INFO"), (1001, "WARNING"), (2000, "WARNING"),
     (2000.1, "CRITICAL")],
)  # fmt: skip
def test_latency_alert_levels(avg_ms, level):
    assert oracle.latency_alert_level(avg_ms) == level


def test_processing_latency():
    events = [
        event(at(0, 10), processing_time=at(0, 10, 600)),
        event(at(0, 20), processing_time=at(0, 21, 400)),
        event(at(0, 30), service="cart", processing_time=at(0, 32, 500)),
        event(at(0, 40), service="cart", processing_time=at(0, 41, 500)),
    ]
    rows = oracle.processing_latency(events)
    assert rows == [
        {
            "service": "auth",
            "window_start": at(0),
            "window_end": at(1),
            "record_count": 2,
            "avg_latency_ms": 1000.0,
            "max_latency_ms": 1400.0,
            "min_latency_ms": 600.0,
            "alert_level": "INFO",  # 1000 is not above 1000
        },
        {
            "service": "cart",
            "window_start": at(0),
            "window_end": at(1),
            "record_count": 2,
            "avg_latency_ms": 2000.0,
            "max_latency_ms": 2500.0,
            "min_latency_ms": 1500.0,
            "alert_level": "WARNING",
        },
    ]


# -- §5.3 -------------------------------------------------------------------------------------


def user_event(moment: datetime, user: str, action: str, value: float | None) -> dict:
    return {"event_time": moment, "user_id": user, "action": action, "value": value}


def test_user_event_activity_slides_every_30_seconds():
    events = [
        user_event(at(0, 40), "u1", "view", 2.5),
        user_event(at(0, 10), "u1", "click", 1.0),
        user_event(at(0, 40), "u1", "add_to_cart", 10.0),
        user_event(at(1, 5), "u1", "logout", None),
        user_event(at(0, 10), None, "click", 1.0),  # no user: no row
    ]
    rows = oracle.user_event_activity(events)
    expected = [
        (at(-1, 30), at(0, 30), 1, 1, 1.0, ["click"]),
        (at(0), at(1), 3, 3, 13.5, ["click", "add_to_cart", "view"]),
        (at(0, 30), at(1, 30), 3, 3, 12.5, ["add_to_cart", "view", "logout"]),
        (at(1), at(2), 1, 1, None, ["logout"]),
    ]
    names = ("window_start", "window_end", "total_events", "unique_actions", "total_value")
    assert keys(rows, *names, "actions") == expected
    assert {row["user_id"] for row in rows} == {"u1"}


def test_action_metrics_slide_every_minute():
    events = [
        user_event(at(0, 30), "u1", "view", 2.0),
        user_event(at(1, 30), "u2", "view", 4.0),
        user_event(at(1, 45), "u1", "view", None),
        user_event(at(1, 50), "u3", "purchase", 99.5),
    ]
    rows = oracle.action_metrics(events)
    names = ("action", "window_start", "window_end", "action_count", "unique_users")
    assert keys(rows, *names, "avg_value", "max_value", "min_value") == [
        ("purchase", at(0), at(2), 1, 1, 99.5, 99.5, 99.5),
        ("purchase", at(1), at(3), 1, 1, 99.5, 99.5, 99.5),
        ("view", at(-1), at(1), 1, 1, 2.0, 2.0, 2.0),
        ("view", at(0), at(2), 3, 2, 3.0, 4.0, 2.0),
        ("view", at(1), at(3), 2, 2, 4.0, 4.0, 4.0),
    ]


# -- §5.2 anomalies -----------------------------------------------------------------------------


def rt_rows(service: str, averages: list[float | None]) -> list[dict]:
    return [
        {
            "service": service,
            "window_start": at(minute),
            "window_end": at(minute + 1),
            "avg_response_time": average,
        }
        for minute, average in enumerate(averages)
    ]


def test_response_time_zscore_flags_jumps_and_drops():
    rows = rt_rows("auth", [1.0, 1.1, 0.9, 1.0, 2.0]) + rt_rows("cart", [1.0, 1.1, 0.9, 1.0, 0.1])
    anomalies = oracle.response_time_zscore(rows)
    assert keys(anomalies, "kind", "key", "window_start", "observed", "threshold") == [
        ("response_time_zscore", "auth", at(4), 2.0, 2.0),
        ("response_time_zscore", "cart", at(4), 0.1, 2.0),
    ]
    assert anomalies[0]["baseline_mean"] == approx(1.0)
    assert anomalies[0]["z_score"] == approx(1.0 / (0.02 / 3) ** 0.5)
    assert anomalies[1]["z_score"] < -2


def test_response_time_zscore_needs_three_windows_and_a_spread():
    assert oracle.response_time_zscore(rt_rows("auth", [1.0, 1.1, 50.0])) == []
    assert oracle.response_time_zscore(rt_rows("auth", [1.0, 1.0, 1.0, 5.0])) == []
    # windows without an average are neither judged nor part of the baseline
    assert oracle.response_time_zscore(rt_rows("auth", [1.0, None, 1.1, None, 9.0])) == []
    assert oracle.response_time_zscore(rt_rows("auth", [1.0, 1.1, 0.9, 1.02])) == []


def test_response_time_zscore_looks_back_ten_windows_only():
    normal = [1.0, 1.1, 0.9, 1.0, 1.1, 0.9, 1.0, 1.1, 0.9, 1.0]
    anomalies = oracle.response_time_zscore(rt_rows("auth", [100.0, 100.0, *normal, 1.5]))
    assert keys(anomalies, "window_start", "observed") == [(at(12), 1.5)]
    assert anomalies[0]["baseline_mean"] == approx(1.0)
    # with the two 100 s windows in the baseline, 1.5 would be unremarkable
    assert oracle.response_time_zscore(rt_rows("auth", [100.0, 100.0, *normal, 1.5]), 12) == []


def er_rows(service: str, rates: dict[int, float]) -> list[dict]:
    return [
        {"service": service, "window_start": at(m), "window_end": at(m + 1), "error_rate": rate}
        for m, rate in rates.items()
    ]


def test_error_rate_spike_compares_with_the_previous_existing_window():
    rows = er_rows("auth", {0: 2.0, 1: 12.5, 3: 22.5, 4: 40.0}) + er_rows("cart", {0: 50.0})
    anomalies = oracle.error_rate_spike(rows)
    assert keys(anomalies, "kind", "key", "window_start", "observed", "threshold") == [
        ("error_rate_spike", "auth", at(1), 12.5, 10.0),  # +10.5 points
        ("error_rate_spike", "auth", at(4), 40.0, 10.0),  # +17.5 (minute 3 was +10.0: not > 10)
    ]
    assert anomalies[0]["baseline"] == 2.0
    assert anomalies[1]["change"] == approx(17.5)


def test_ddos_suspect():
    events = [event(at(0, i % 60), ip="X", user=f"u{i % 4}") for i in range(101)]
    events += [event(at(0, i % 60), ip="Y", user=f"u{i % 5}") for i in range(101)]  # 5 users
    events += [event(at(0, i % 60), ip="Z", user="u1") for i in range(100)]  # only 100
    events += [event(at(1, i % 60), ip="X", user="u1") for i in range(50)]
    anomalies = oracle.ddos_suspect(events)
    assert keys(anomalies, "kind", "key", "window_start", "window_end", "observed") == [
        ("ddos_suspect", "X", at(0), at(1), 101)
    ]
    assert anomalies[0]["unique_users"] == 4
    assert anomalies[0]["threshold"] == 100


def test_suspicious_ip():
    def row(ip: str, count: int, services: int) -> dict:
        return {
            "ip_address": ip,
            "window_start": at(0),
            "window_end": at(5),
            "request_count": count,
            "unique_users": 0,
            "services_used": [f"s{n}" for n in range(services)],
        }

    rows = [row("A", 1001, 6), row("B", 1001, 5), row("C", 1000, 6)]
    anomalies = oracle.suspicious_ip(rows)
    assert keys(anomalies, "kind", "key", "window_start", "observed", "threshold") == [
        ("suspicious_ip", "A", at(0), 1001, 1000)
    ]


def test_high_activity_user():
    events = [user_event(at(1, s), "u1", "click", 1.0) for s in range(51)]
    events += [user_event(at(1, s), "u2", "click", 1.0) for s in range(50)]
    anomalies = oracle.high_activity_user(events)
    # 10:01:00-10:01:50 lies in the windows starting 09:58 and 10:00 (5 min, sliding 2 min)
    assert keys(anomalies, "kind", "key", "window_start", "window_end", "observed") == [
        ("high_activity_user", "u1", at(-2), at(3), 51),
        ("high_activity_user", "u1", at(0), at(5), 51),
    ]


def test_late_data_user():
    late = [event(at(-30 - i), user="u1") for i in range(6)]
    late += [event(at(-30 - i), user="u2") for i in range(5)]
    late += [event(at(-30 - i), user=None) for i in range(10)]
    assert oracle.late_data_user(late) == [
        {
            "kind": "late_data_user",
            "key": "u1",
            "window_start": None,
            "window_end": None,
            "observed": 6,
            "threshold": 5,
        }
    ]
