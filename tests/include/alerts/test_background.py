"""Background delivery with real threads and real slow sinks: ``send`` never waits for the
receiver; without an outbox a full queue drops with an error, with one it spills to the outbox
and the worker delivers it later (also after a restart); ``close`` reports what was left."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from logstream.alerts import counters
from logstream.alerts.background import BackgroundAlertSink
from logstream.alerts.model import Alert
from logstream.alerts.outbox import Outbox
from logstream.alerts.routing import FanOutAlertSink, build_alert_sink
from logstream.config import Settings
from tests.helpers import Receiver


class GatedSink:
    """A channel that hangs: each ``send`` waits until ``gate`` opens (at most ``hold_s``, so a
    failing test never leaves a thread stuck), then records the dedup key; keys in ``raise_on``
    raise instead, keys in ``refuse`` return False."""

    def __init__(
        self, hold_s: float = 2.0, raise_on: tuple[str, ...] = (), refuse: tuple[str, ...] = ()
    ) -> None:
        self.gate = threading.Event()
        self.hold_s = hold_s
        self.raise_on = raise_on
        self.refuse = refuse
        self.entered: list[str] = []  # keys whose delivery started
        self.received: list[str] = []  # keys delivered
        self._changed = threading.Condition()

    def send(self, alert: Alert) -> bool:
        with self._changed:
            self.entered.append(alert.dedup_key)
            self._changed.notify_all()
        self.gate.wait(self.hold_s)
        if alert.dedup_key in self.raise_on:
            raise RuntimeError(f"receiver exploded on {alert.dedup_key}")
        if alert.dedup_key in self.refuse:
            return False
        with self._changed:
            self.received.append(alert.dedup_key)
            self._changed.notify_all()
        return True

    def wait_entered(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.entered) >= count, timeout_s)

    def wait_received(self, count: int, timeout_s: float = 2.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.received) >= count, timeout_s)


@pytest.fixture
def gated() -> Iterator[GatedSink]:
    sink = GatedSink()
    yield sink
    sink.gate.set()  # let any worker still inside send() finish


def alerts_numbered(alert: Alert, count: int, prefix: str = "anomaly") -> list[Alert]:
    return [replace(alert, dedup_key=f"{prefix}:{n}") for n in range(count)]


def timed_sends(sink: BackgroundAlertSink, alerts: list[Alert]) -> tuple[list, float]:
    started = time.monotonic()
    results = [sink.send(one) for one in alerts]
    return results, time.monotonic() - started


def test_background_send_returns_at_once_and_delivers_in_order(gated, alert):
    background = BackgroundAlertSink(gated)
    batch = alerts_numbered(alert, 5)

    results, elapsed = timed_sends(background, batch)

    assert results == [None] * 5  # accepted
    assert elapsed < 0.5  # the sink holds each alert up to 2 s
    assert gated.wait_entered(1)
    assert gated.received == []  # nothing got through while the receiver hangs
    gated.gate.set()
    assert background.close(timeout_s=5.0) == 0  # close() itself waits for the queue to drain
    assert gated.received == [one.dedup_key for one in batch]
    assert (background.delivered, background.failed, background.dropped) == (5, 0, 0)
    assert background.close() == 0  # idempotent


def test_background_send_does_not_wait_for_a_slow_webhook(clean_env, alert, tmp_path):
    settings = Settings.load(env={}, state_dir=tmp_path, alert_timeout_s=3.0, alert_retries=1)
    with Receiver(delay_s=0.3) as slow:
        clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{slow.url}/hook")
        background = BackgroundAlertSink(build_alert_sink("webhook", settings))
        batch = alerts_numbered(alert, 2)

        results, elapsed = timed_sends(background, batch)
        left = background.close(timeout_s=5.0)

        assert results == [None, None]
        assert elapsed < 0.25  # two deliveries take >= 0.6 s
        assert left == 0
        assert [body["dedup_key"] for body in slow.json_bodies()] == ["anomaly:0", "anomaly:1"]


def test_full_queue_drops_with_an_error_and_never_blocks(gated, alert, caplog):
    caplog.set_level(logging.WARNING, logger="logstream")
    background = BackgroundAlertSink(gated, max_queued=2)
    first, *rest = alerts_numbered(alert, 5)
    assert background.send(first) is None
    assert gated.wait_entered(1)  # in flight, hanging: the queue is empty again

    results, elapsed = timed_sends(background, rest)

    assert results == [None, None, False, False]  # two fit in the queue, two do not
    assert elapsed < 0.5
    assert background.dropped == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    for key, message in zip(["anomaly:3", "anomaly:4"], errors, strict=True):
        assert key in message and alert.kind in message
        assert "queue is full" in message and "anomalies table" in message
    gated.gate.set()
    assert background.close(timeout_s=5.0) == 0
    assert gated.received == ["anomaly:0", "anomaly:1", "anomaly:2"]


def test_a_sink_that_raises_or_refuses_does_not_stop_the_worker(alert, caplog):
    sink = GatedSink(raise_on=("anomaly:0",), refuse=("anomaly:1",))
    sink.gate.set()
    background = BackgroundAlertSink(sink)

    for one in alerts_numbered(alert, 3):
        background.send(one)

    assert sink.wait_received(1)
    assert background.close(timeout_s=5.0) == 0
    assert sink.received == ["anomaly:2"]
    assert (background.delivered, background.failed) == (1, 2)
    assert any(
        "receiver exploded on anomaly:0" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR
    )


def test_close_with_a_hanging_sink_returns_what_was_left(gated, alert, caplog):
    caplog.set_level(logging.WARNING, logger="logstream")
    background = BackgroundAlertSink(gated, name="alerts-under-test")
    for one in alerts_numbered(alert, 3):
        background.send(one)
    assert gated.wait_entered(1)

    started = time.monotonic()
    left = background.close(timeout_s=0.2)
    elapsed = time.monotonic() - started

    assert left == 3  # one in flight, two never started
    assert 0.15 <= elapsed < 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "3 alert(s) not delivered" in warnings[0]
    assert "anomaly:1" in warnings[0] and "anomaly:2" in warnings[0]
    assert background.close(timeout_s=5.0) == 3  # idempotent, and returns at once
    assert background.send(replace(alert, dedup_key="late")) is False
    assert background.dropped == 1

    # the in-flight alert finishes, then the worker exits without taking the abandoned ones
    gated.gate.set()
    worker = next(t for t in threading.enumerate() if t.name == "alerts-under-test")
    worker.join(timeout=2.0)
    assert not worker.is_alive()
    assert gated.entered == ["anomaly:0"]


# -- with the durable outbox -----------------------------------------------------------------


class FlakySink:
    """Refuses its first ``failures`` alerts, then records what it gets."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[str] = []

    def send(self, alert: Alert) -> bool:
        if self.failures > 0:
            self.failures -= 1
            return False
        self.received.append(alert.dedup_key)
        return True


def wait_for(check, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_with_an_outbox_a_full_queue_spills_and_is_delivered_later(gated, alert, tmp_path):
    counters.reset()
    outbox = Outbox(tmp_path / "outbox.jsonl")
    background = BackgroundAlertSink(gated, max_queued=1, outbox=outbox, retry_s=0.1, tick_s=0.05)
    first, *rest = alerts_numbered(alert, 4)
    background.send(first)
    assert gated.wait_entered(1)  # in flight, hanging

    results, elapsed = timed_sends(background, rest)

    assert results == [None, None, None]  # one queued, two kept in the outbox: all accepted
    assert elapsed < 0.5
    assert [e["alert"]["dedup_key"] for e in outbox.entries()] == ["anomaly:2", "anomaly:3"]
    gated.gate.set()
    assert gated.wait_received(4)
    assert sorted(gated.received) == ["anomaly:0", "anomaly:1", "anomaly:2", "anomaly:3"]
    assert wait_for(lambda: not outbox.entries())
    assert background.close(timeout_s=5.0) == 0
    totals = counters.snapshot()
    assert (background.spilled, background.dropped) == (2, 0)
    assert totals["logstream_alerts_spilled_total"] == 2
    assert totals["logstream_alerts_redelivered_total"] == 2
    assert totals["logstream_alerts_dropped_total"] == 0


def test_a_failing_channel_gets_the_alert_later_and_the_others_once(alert, tmp_path):
    good, flaky = FlakySink(0), FlakySink(1)
    fan_out = FanOutAlertSink([good, flaky], ["good", "flaky"])
    outbox = Outbox(tmp_path / "outbox.jsonl")
    background = BackgroundAlertSink(fan_out, outbox=outbox, retry_s=0.1, tick_s=0.05)

    background.send(alert)

    assert wait_for(lambda: flaky.received == ["anomaly:abc123"])
    assert good.received == ["anomaly:abc123"]  # not sent twice
    assert background.close(timeout_s=5.0) == 0
    assert (background.delivered, background.failed, background.spilled) == (0, 1, 1)
    assert outbox.entries() == []


def test_alerts_queued_at_close_survive_a_restart(alert, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="logstream")
    outbox = Outbox(tmp_path / "outbox.jsonl")
    hanging = GatedSink(hold_s=1.0)
    background = BackgroundAlertSink(hanging, outbox=outbox)
    for one in alerts_numbered(alert, 3):
        background.send(one)
    assert hanging.wait_entered(1)

    left = background.close(timeout_s=0.2)

    assert left == 1  # the one in flight; the two queued are in the outbox
    assert [e["alert"]["dedup_key"] for e in outbox.entries()] == ["anomaly:1", "anomaly:2"]
    assert any("2 kept in the outbox" in r.getMessage() for r in caplog.records)
    assert background.send(replace(alert, dedup_key="late")) is None  # closed: kept too
    hanging.gate.set()

    working = GatedSink()
    working.gate.set()
    restarted = BackgroundAlertSink(working, outbox=Outbox(tmp_path / "outbox.jsonl"))
    assert working.wait_received(3)
    assert restarted.close(timeout_s=5.0) == 0
    assert working.received == ["anomaly:1", "anomaly:2", "late"]


def test_the_job_sink_groups_a_direct_channel_and_sends_the_digest_at_close(
    clean_env, receiver, alert, tmp_path
):
    settings = Settings.load(env={}, state_dir=tmp_path, alert_retries=1, alert_group_seconds=60)
    clean_env.setenv("LOGSTREAM_ALERT_WEBHOOK_URL", f"{receiver.url}/hook")
    background = BackgroundAlertSink(build_alert_sink("webhook,log", settings))
    for one in alerts_numbered(alert, 4):
        background.send(one)
    assert wait_for(lambda: len(receiver.requests) == 1)
    time.sleep(0.2)
    assert len(receiver.requests) == 1  # the other three are held for the group's digest

    assert background.close(timeout_s=5.0) == 0

    first, summary = receiver.json_bodies()
    assert first["dedup_key"] == "anomaly:0"
    assert summary["details"]["dedup_keys"] == ["anomaly:1", "anomaly:2", "anomaly:3"]
    assert summary["summary"].startswith("3 error_rate_spike alerts")
