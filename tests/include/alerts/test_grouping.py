"""Grouping and per-kind rate limits of the direct channels (logstream.alerts.grouping), on a
hand-driven clock; expected messages written by hand."""

from __future__ import annotations

from dataclasses import replace

from logstream.alerts import counters
from logstream.alerts.grouping import GroupingSink, digest
from logstream.alerts.model import Alert


class Recorder:
    def __init__(self, result: bool = True) -> None:
        self.sent: list[Alert] = []
        self.result = result

    def send(self, alert: Alert) -> bool:
        self.sent.append(alert)
        return self.result


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spike(n: int, service: str = "api", severity: str = "warning") -> Alert:
    return Alert(
        f"anomaly:{n}",
        "error_rate_spike",
        severity,
        f"spike {n}",
        links={"table": "/t"},
        created_at=f"2026-01-01T00:0{n}:00+00:00",
        service=service,
    )


def test_first_alert_goes_at_once_the_rest_of_the_window_as_one_digest():
    counters.reset()
    inner, clock = Recorder(), Clock()
    sink = GroupingSink(inner, "slack", window_s=60, rate_per_hour=100, clock=clock)

    assert sink.send(spike(1)) is True
    assert [a.dedup_key for a in inner.sent] == ["anomaly:1"]
    clock.now += 10
    assert sink.send(spike(2)) is True
    assert sink.send(spike(3, severity="critical")) is True
    assert sink.send(spike(4, service="web")) is True  # another group: at once
    assert [a.dedup_key for a in inner.sent] == ["anomaly:1", "anomaly:4"]
    assert sink.held == 2

    clock.now += 49  # 59 s after the first
    assert sink.flush() == []
    assert len(inner.sent) == 2
    clock.now += 1
    assert sink.flush() == []
    sent = inner.sent[2]
    assert sent.kind == "error_rate_spike" and sent.service == "api"
    assert sent.severity == "critical"  # the worst of the group
    assert sent.summary == "2 error_rate_spike alerts for api, the first: spike 2"
    assert sent.details == {
        "alerts": 2,
        "first_at": "2026-01-01T00:02:00+00:00",
        "last_at": "2026-01-01T00:03:00+00:00",
        "summaries": ["spike 2", "spike 3"],
        "dedup_keys": ["anomaly:2", "anomaly:3"],
    }
    assert sent.links == {"table": "/t"}
    assert sent.dedup_key.startswith("digest:")
    assert sink.held == 0
    assert counters.snapshot()["logstream_alerts_grouped_total"] == 2


def test_a_digest_key_is_stable_for_the_same_alerts():
    alerts = [spike(1), spike(2)]
    assert digest(alerts).dedup_key == digest(list(alerts)).dedup_key
    assert digest(alerts).dedup_key != digest([spike(1), spike(3)]).dedup_key
    assert digest([spike(5)]) == spike(5)  # one alert is its own digest


def test_a_digest_lists_ten_and_counts_the_rest():
    many = [replace(spike(1), dedup_key=f"k{n}", summary=f"s{n}") for n in range(13)]
    details = digest(many).details
    assert details["alerts"] == 13
    assert details["summaries"] == [f"s{n}" for n in range(10)]
    assert details["not_listed"] == 3


def test_the_kind_rate_limit_holds_messages_until_the_hour_allows():
    counters.reset()
    inner, clock = Recorder(), Clock()
    sink = GroupingSink(inner, "email", window_s=0, rate_per_hour=2, clock=clock)

    for n, service in enumerate(["a", "b", "c", "d"]):
        sink.send(spike(n, service=service))
        clock.now += 1
    assert [a.service for a in inner.sent] == ["a", "b"]  # two messages of the kind per hour
    assert sink.held == 2
    assert counters.snapshot()["logstream_alerts_rate_limited_total"] == 2

    clock.now += 100
    assert sink.flush() == []
    assert len(inner.sent) == 2  # still within the hour
    clock.now = 1000.0 + 3600  # the first message is an hour old: one slot free
    sink.flush()
    assert [a.service for a in inner.sent] == ["a", "b", "c"]
    assert sink.held == 1
    assert sink.flush(force=True) == []  # shutdown sends what is left regardless
    assert [a.service for a in inner.sent] == ["a", "b", "c", "d"]


def test_digests_the_channel_refuses_are_returned_for_the_outbox():
    inner, clock = Recorder(result=False), Clock()
    sink = GroupingSink(inner, "webhook", window_s=5, rate_per_hour=10, clock=clock)
    assert sink.send(spike(1)) is False  # the first goes out at once, and fails
    sink.send(spike(2))
    sink.send(spike(3))
    clock.now += 5
    (refused,) = sink.flush()
    assert refused.details["dedup_keys"] == ["anomaly:2", "anomaly:3"]
