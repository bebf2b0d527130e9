"""The continuous demo scenario of ``make run``: live pace, its scenarios early in every cycle
(found by the independent oracle in the generated truth), and the detached process for real."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition

from logstream import catalog
from logstream.config import PROJECT_ROOT, Settings
from logstream.devtools.demo import DemoTraffic, live_records
from logstream.kafka.admin import ensure_topics
from tests import oracle

START = datetime(2026, 12, 7, 10, 0, 37, tzinfo=UTC)
RATE, CYCLE_S = 40.0, 600


class FakeClock:
    """Wall time that only moves when the code under test sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture(scope="module")
def two_cycles():
    clock = FakeClock(START)
    records = []
    for record in live_records(
        RATE, CYCLE_S, 7, "logs", "user-events", cycles=2, clock=clock.time, sleep=clock.sleep
    ):
        records.append((clock.time(), record))
    return clock, records


def _events(records, lo: datetime, hi: datetime) -> list[dict]:
    """Valid on-time log events of the records whose clock is in [lo, hi)."""
    return [
        record.truth
        for _, record in records
        if record.topic == "logs" and record.truth is not None and not record.late
        if lo <= record.clock < hi
    ]


def test_records_go_out_when_the_wall_clock_reaches_them(two_cycles):
    clock, records = two_cycles
    assert all(now >= record.clock.timestamp() - 1e-3 for now, record in records)
    # paced over both cycles, not sent in a burst: the fake wall clock moved ~20 minutes
    assert clock.slept == pytest.approx(2 * CYCLE_S, abs=5)
    log_clocks = [record.clock for _, record in records if record.topic == "logs"]
    assert len(log_clocks) == 2 * RATE * CYCLE_S
    # the second cycle starts where the first ended
    second = log_clocks[int(RATE * CYCLE_S)]
    assert START + timedelta(seconds=CYCLE_S) <= second < START + timedelta(seconds=CYCLE_S + 1)
    assert {record.topic for _, record in records} == {"logs", "user-events"}


@pytest.mark.parametrize("cycle", [0, 1])
def test_each_cycle_plays_its_scenarios_in_its_first_minutes(two_cycles, cycle):
    _, records = two_cycles
    begin = START + timedelta(seconds=cycle * CYCLE_S)
    events = _events(records, begin, begin + timedelta(seconds=CYCLE_S))
    # the first whole minutes after 30 s and after 60 s, worked out by hand from START (10:00:37)
    burst_minute = begin.replace(second=0) + timedelta(minutes=2)
    ddos_minute = begin.replace(second=0) + timedelta(minutes=1)

    ddos = oracle.ddos_suspect(events)
    # the burst from two accounts; the anonymous scanner's busy minutes look alike (0 users)
    assert [row["window_start"] for row in ddos if row["unique_users"] == 2] == [ddos_minute]

    spikes = oracle.error_rate_spike(oracle.error_rate_per_service(events))
    assert ("payments", burst_minute) in {(row["key"], row["window_start"]) for row in spikes}
    assert all(row["window_start"] <= burst_minute + timedelta(minutes=1) for row in spikes)

    scanners = oracle.suspicious_ip(oracle.ip_patterns(events))
    assert len(scanners) == 1
    # the 5-minute window that holds 40 % of the cycle (minute 4)
    assert scanners[0]["window_start"] == begin.replace(second=0)

    late = [r for _, r in records if r.late and begin <= r.clock < begin + timedelta(minutes=10)]
    malformed = [r for _, r in records if r.expected_reason and begin <= r.clock]
    assert late and malformed


def test_the_demo_profile_sets_a_short_delay_for_every_family():
    profile = yaml.safe_load((PROJECT_ROOT / "deploy" / "demo" / "logstream.yaml").read_text())
    settings = Settings.load(env={}, windows=profile["windows"])
    families = catalog.configured_families(settings.windows)
    # every family: one left at SPEC's 5-10 minutes would keep its windows open past the demo's
    # first three minutes
    assert {family.name: family.delay for family in families} == {
        family.name: "30 seconds" for family in catalog.configured_families({})
    }


def test_the_demo_process_sends_live_traffic_until_stopped(kafka_broker, settings, topic):
    ensure_topics(kafka_broker.bootstrap, [topic + "-ue"], 1)
    demo_settings = settings.replace(logs_topic=topic, user_events_topic=topic + "-ue")
    demo = DemoTraffic(demo_settings)
    began = datetime.now(UTC)
    status = demo.start(rate=100)
    try:
        assert status.running and demo.status().running
        time.sleep(4)
    finally:
        assert demo.stop()
    assert not demo.status().running and demo.pid() is None

    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, consumer_timeout_ms=3000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    received = list(consumer)
    consumer.close()
    # about 100 records/s for the ~4 s it ran (not all at once: the pace is the wall clock)
    assert 100 <= len(received) <= 1_500
    stamps = [record.timestamp / 1000 for record in received]
    assert max(stamps) - min(stamps) >= 2
    assert min(stamps) >= began.timestamp() - 1
