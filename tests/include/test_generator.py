"""The traffic generator: deterministic, realistic, truthful, and it really lands in Kafka."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer, TopicPartition

from logstream.cli import produce as produce_cli
from logstream.devtools.generator import (
    ACCESS_FORMATS,
    JSON_FORMATS,
    MALFORMED_KINDS,
    USER_EVENT_MALFORMED_KINDS,
    GeneratedRecord,
    GeneratorConfig,
    generate_logs,
    generate_user_events,
    iter_logs,
    merge_by_clock,
    produce,
)
from logstream.schemas import REASONS
from tests import oracle

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
FIFTEEN_MINUTES = timedelta(minutes=15)

#: Apache Common/Combined and nginx combined (+ optional $request_time), written independently.
ACCESS_LINE = re.compile(
    r"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>[^"]+)" (?P<status>\d{3}) (?P<bytes>\d+)'
    r'(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?(?: (?P<request_time>\d+\.\d{3}))?$'
)


@pytest.fixture(scope="module")
def logs() -> list[GeneratedRecord]:
    """Five minutes of traffic at 200 events/s."""
    return generate_logs(GeneratorConfig(seed=11, count=60_000, start=START))


@pytest.fixture(scope="module")
def user_events() -> list[GeneratedRecord]:
    return generate_user_events(GeneratorConfig(seed=11, count=60_000, start=START), 3_000)


def _valid(records: list[GeneratedRecord], late: bool = False) -> list[dict]:
    return [r.truth for r in records if r.truth is not None and r.late == late]


# -- determinism ------------------------------------------------------------------------------


def test_same_config_gives_identical_bytes_and_truth():
    config = GeneratorConfig(seed=5, count=3_000, start=START)
    first, second = generate_logs(config), generate_logs(config)
    assert first == second
    assert generate_user_events(config, 500) == generate_user_events(config, 500)


def test_another_seed_gives_other_records():
    one = generate_logs(GeneratorConfig(seed=1, count=2_000, start=START))
    two = generate_logs(GeneratorConfig(seed=2, count=2_000, start=START))
    assert [r.value for r in one] != [r.value for r in two]
    assert sum(a.value == b.value for a, b in zip(one, two, strict=True)) < 50


def test_default_start_ends_at_the_current_minute():
    now = datetime(2026, 11, 25, 10, 7, 31, 250_000, tzinfo=UTC)
    config = GeneratorConfig(seed=3, count=12_000, events_per_second=200)  # a 60 s span
    assert config.resolved_start(now) == datetime(2026, 11, 25, 10, 6, tzinfo=UTC)
    normal = _valid(generate_logs(config, now=now))
    assert min(t["event_time"] for t in normal) >= datetime(2026, 11, 25, 10, 5, 30, tzinfo=UTC)
    assert max(t["event_time"] for t in normal) <= datetime(2026, 11, 25, 10, 7, tzinfo=UTC)


def test_iterating_lazily_gives_the_same_records():
    config = GeneratorConfig(seed=9, count=1_000, start=START)
    assert list(iter_logs(config)) == generate_logs(config)


# -- mix ----------------------------------------------------------------------------------------


def test_mix_follows_the_configured_shares(logs):
    count = len(logs)
    assert count == 60_000
    assert sum(r.expected_reason is not None for r in logs) == round(0.01 * count)
    assert sum(r.late for r in logs) == round(0.02 * count)
    valid = [r for r in logs if r.truth is not None]
    formats = Counter(r.fmt for r in valid)
    assert set(formats) == set(JSON_FORMATS) | set(ACCESS_FORMATS)
    access_share = sum(formats[f] for f in ACCESS_FORMATS) / len(valid)
    assert 0.08 < access_share < 0.12
    assert all(r.topic == "logs" for r in logs)
    # several services with their own latency profiles
    medians = {}
    for service in ("auth", "search", "checkout"):
        times = sorted(
            t["response_time"]
            for t in _valid(logs)
            if t["service"] == service and t["response_time"] is not None
        )
        medians[service] = times[len(times) // 2]
    assert medians["auth"] < 0.1 < medians["search"] < 0.5 < medians["checkout"]


def test_every_malformed_kind_is_present_with_its_reason(logs):
    malformed = [r for r in logs if r.expected_reason is not None]
    assert {r.expected_reason for r in malformed} == set(MALFORMED_KINDS)
    assert set(MALFORMED_KINDS) <= set(REASONS)
    assert all(r.truth is None and not r.late for r in malformed)
    for record in malformed:
        kind, value = record.expected_reason, record.value
        if kind == "empty":
            assert value.strip() == b""
            continue
        if kind == "oversized":
            assert len(value) > 65_536
            assert isinstance(json.loads(value), dict)
            continue
        if kind == "invalid_json":
            assert value.startswith(b"{")
            with pytest.raises(json.JSONDecodeError):
                json.loads(value)
            continue
        if kind == "unrecognized_format":
            assert not value.lstrip().startswith((b"{", b"["))
            assert not ACCESS_LINE.match(value.decode())
            continue
        if kind == "partial_line":
            stamp, stream, tag, _ = value.decode().split(" ", 3)
            assert (stream, tag) == ("stdout", "P")
            assert datetime.fromisoformat(stamp[:26]).year >= 2020
            continue
        document = json.loads(value)
        assert len(value) <= 65_536
        if kind == "missing_timestamp":
            assert "timestamp" not in document
        elif kind == "invalid_timestamp":
            with pytest.raises(ValueError):
                datetime.fromisoformat(document["timestamp"])
        elif kind == "timestamp_out_of_range":
            assert _document_time(document["timestamp"]).year in (1990, 2100)
        elif kind == "invalid_field":
            assert document.get("status_code") == "abc" or document.get("response_time") == -1


def _document_time(value: int | str) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    seconds = value / 1000 if value > 10**11 else value
    return datetime.fromtimestamp(seconds, UTC)


# -- time ---------------------------------------------------------------------------------------


def test_late_records_are_at_least_15_minutes_behind(logs, user_events):
    for records in (logs, user_events):
        newest = None
        late_seen = 0
        for record in records:
            if record.truth is None:
                continue
            event_time = record.truth["event_time"]
            if record.late:
                late_seen += 1
                behind_clock = record.clock - event_time
                assert FIFTEEN_MINUTES <= behind_clock <= timedelta(hours=3)
                # also behind everything the stream has seen, so it is behind any watermark
                assert newest - event_time >= FIFTEEN_MINUTES
            else:
                newest = event_time if newest is None else max(newest, event_time)
        assert late_seen > 0


def test_normal_records_come_in_clock_order_with_little_disorder(logs, user_events):
    for records in (logs, user_events):
        clocks = [r.clock for r in records]
        assert clocks == sorted(clocks)
        newest = None
        for record in records:
            if record.truth is None or record.late:
                continue
            event_time = record.truth["event_time"]
            assert record.clock - timedelta(seconds=30) < event_time <= record.clock
            if newest is not None:
                assert event_time > newest - timedelta(seconds=30)
                newest = max(newest, event_time)
            else:
                newest = event_time


def test_timestamps_have_millisecond_precision(logs, user_events):
    for record in logs + user_events:
        if record.truth is not None:
            assert record.truth["event_time"].microsecond % 1000 == 0
            assert record.truth["event_time"].tzinfo is not None


# -- scenarios ----------------------------------------------------------------------------------


def test_ddos_burst_is_in_the_truth(logs):
    normal = _valid(logs)
    suspects = oracle.ddos_suspect(normal)
    bursts = [a for a in suspects if a["unique_users"] == 2 and a["observed"] > 150]
    assert len(bursts) == 1
    (burst,) = bursts
    in_burst = [
        t
        for t in normal
        if t["ip_address"] == burst["key"]
        and burst["window_start"] <= t["event_time"] < burst["window_end"]
    ]
    assert len({t["service"] for t in in_burst}) == 1


def test_scanner_is_a_suspicious_ip(logs):
    suspicious = oracle.suspicious_ip(oracle.ip_patterns(_valid(logs)))
    assert len(suspicious) == 1
    assert len(suspicious[0]["services_used"]) == 7


def test_error_burst_gives_two_minutes_of_30_to_50_percent_5xx(logs):
    normal = _valid(logs)
    payments = [t for t in normal if t["service"] == "payments"]
    server_errors = Counter()
    totals = Counter()
    for truth in payments:
        minute = truth["event_time"].replace(second=0, microsecond=0)
        totals[minute] += 1
        server_errors[minute] += (truth["status_code"] or 0) >= 500
    burst_minutes = [m for m in totals if totals[m] > 100 and server_errors[m] / totals[m] > 0.3]
    assert len(burst_minutes) == 2
    assert burst_minutes[1] - burst_minutes[0] == timedelta(minutes=1)
    assert all(0.3 < server_errors[m] / totals[m] < 0.5 for m in burst_minutes)
    spikes = oracle.error_rate_spike(oracle.error_rate_per_service(normal))
    assert [(a["key"], a["window_start"]) for a in spikes] == [("payments", burst_minutes[0])]


def test_late_batches_make_a_late_data_user(logs):
    assert oracle.late_data_user(_valid(logs, late=True))


def test_user_events_have_one_high_activity_user(user_events):
    normal = _valid(user_events)
    per_user = Counter(t["user_id"] for t in normal)
    (hot_user, count), (_, runner_up) = per_user.most_common(2)
    assert count > 60 > runner_up
    alerts = oracle.high_activity_user(normal)
    assert alerts
    assert {a["key"] for a in alerts} == {hot_user}
    hot_times = sorted(t["event_time"] for t in normal if t["user_id"] == hot_user)
    assert any(
        b - a <= timedelta(minutes=5) for a, b in zip(hot_times, hot_times[60:], strict=False)
    )


# -- truth matches the bytes ----------------------------------------------------------------


def test_json_truth_matches_the_serialized_value(logs):
    checked = Counter()
    for record in logs:
        if record.truth is None or record.fmt not in JSON_FORMATS:
            continue
        document = json.loads(record.value)
        truth = record.truth
        stamp = document["timestamp"]
        if record.fmt == "json_epoch_s":
            assert isinstance(stamp, int)
            assert datetime.fromtimestamp(stamp, UTC) == truth["event_time"]
        elif record.fmt == "json_epoch_ms":
            assert isinstance(stamp, int)
            assert (
                datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=stamp)
                == (truth["event_time"])
            )
        else:
            assert datetime.fromisoformat(stamp) == truth["event_time"]
        for name in ("level", "service", "message", "ip_address", "user_id", "request_id"):
            assert document.get(name) == truth[name], name
        for name in ("response_time", "status_code", "error_code"):
            assert document.get(name) == truth[name], name
        assert record.key == truth["service"].encode()
        checked[record.fmt] += 1
    assert set(checked) == set(JSON_FORMATS)


def test_access_line_truth_matches_the_serialized_value(logs):
    checked = Counter()
    for record in logs:
        if record.truth is None or record.fmt not in ACCESS_FORMATS:
            continue
        match = ACCESS_LINE.match(record.value.decode())
        assert match, record.value
        truth = record.truth
        assert datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z") == truth["event_time"]
        assert record.key == truth["service"].encode()
        assert match["ip"] == truth["ip_address"]
        assert match["user"] == "-" and truth["user_id"] is None
        assert match["method"] == truth["http_method"]
        assert match["path"] == truth["path"]
        assert match["protocol"] == truth["protocol"]
        assert int(match["status"]) == truth["status_code"]
        assert int(match["bytes"]) == truth["bytes_sent"]
        assert match["referrer"] == truth["referrer"]
        assert match["agent"] == truth["user_agent"]
        expected_time = float(match["request_time"]) if match["request_time"] else None
        assert expected_time == truth["response_time"]
        assert (match["agent"] is None) == (record.fmt == "apache_common")
        assert (match["request_time"] is not None) == (record.fmt == "nginx_combined")
        checked[record.fmt] += 1
    assert set(checked) == set(ACCESS_FORMATS)


def test_user_event_truth_matches_the_serialized_value(user_events):
    reasons = Counter(r.expected_reason for r in user_events if r.expected_reason)
    assert set(reasons) == set(USER_EVENT_MALFORMED_KINDS)
    for record in user_events:
        assert record.topic == "user-events"
        if record.truth is None:
            continue
        document = json.loads(record.value)
        truth = record.truth
        assert (
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=document["timestamp"])
            == (truth["event_time"])
        )
        for name in ("user_id", "action", "value", "session_id", "ip_address"):
            assert document[name] == truth[name]
        assert record.key == truth["user_id"].encode()


def test_config_rejects_impossible_values():
    from logstream.errors import ConfigError

    with pytest.raises(ConfigError, match="late_share"):
        GeneratorConfig(late_share=1.5)
    with pytest.raises(ConfigError, match="max_disorder_s"):
        GeneratorConfig(max_disorder_s=45)
    with pytest.raises(ConfigError, match="error_burst_service"):
        GeneratorConfig(error_burst_service="nope")


# -- Kafka and the command line -----------------------------------------------------------------


def _read_back(bootstrap: str, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    messages = []
    deadline = time.monotonic() + 60
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for message in consumer:  # stops after consumer_timeout_ms without records
                messages.append(message)
                if len(messages) >= expected:
                    break
        # nothing beyond what was read: the topic's end offsets add up to the same count
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        assert sum(consumer.end_offsets(partitions).values()) == len(messages)
    finally:
        consumer.close()
    return messages


def test_produce_lands_every_record_in_kafka(kafka_broker, topic):
    config = GeneratorConfig(
        seed=4, count=400, malformed_share=0.05, logs_topic=topic, user_events_topic=topic
    )
    records = list(merge_by_clock(generate_logs(config), generate_user_events(config, 100)))
    assert any(r.expected_reason == "oversized" for r in records)

    assert produce(records, kafka_broker.bootstrap, progress=False) == 500

    messages = _read_back(kafka_broker.bootstrap, topic, 500)
    assert len(messages) == 500
    assert Counter(m.value for m in messages) == Counter(r.value for r in records)
    assert Counter(m.key for m in messages) == Counter(r.key for r in records)


def _cli(command_line: str) -> argparse.Namespace:
    """Parse ``logstream produce <command_line>`` with the subcommand's own parser."""
    parser = argparse.ArgumentParser(prog="logstream")
    produce_cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["produce", *shlex.split(command_line)])


def test_cli_dry_run_writes_values_as_lines(tmp_path, settings, capsys):
    target = tmp_path / "out" / "logs.txt"
    args = _cli(f"--count 2000 --user-events 300 --seed 8 --quiet --dry-run {target}")
    assert args.handler(args, settings) == 0

    lines = target.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 2001
    config = GeneratorConfig(seed=8, count=2000)
    assert lines[100:110] == [r.value for r in generate_logs(config)][100:110]
    user_lines = (tmp_path / "out" / "logs.user-events.txt").read_bytes().split(b"\n")
    assert len(user_lines) == 301
    summary = capsys.readouterr().out
    assert "2,000 to logs, 300 to user-events" in summary
    assert "malformed 23 (empty=" in summary
    assert "late 46" in summary
    assert "seed=8" in summary


def test_cli_produces_to_kafka_at_the_requested_rate(kafka_broker, topic, settings, capsys):
    user_topic = f"{topic}-users"
    args = _cli(
        f"--count 1500 --user-events 500 --seed 3 --rate 4000 "
        f"--topic {topic} --user-events-topic {user_topic}"
    )
    started = time.monotonic()
    assert args.handler(args, settings) == 0
    assert time.monotonic() - started >= 0.45  # 2000 records at 4000/s
    assert len(_read_back(kafka_broker.bootstrap, topic, 1500)) == 1500
    assert len(_read_back(kafka_broker.bootstrap, user_topic, 500)) == 500
    captured = capsys.readouterr()
    assert f"1,500 to {topic}" in captured.out
    assert f"500 to {user_topic}" in captured.out
    assert "\rproduce: 2,000/2,000 (100.0%)" in captured.err


def test_short_runs_keep_bursts_a_minor_share():
    records = generate_logs(GeneratorConfig(seed=6, count=2_000, start=START))  # ten seconds
    per_ip = Counter(r.truth["ip_address"] for r in records if r.truth is not None)
    assert per_ip.most_common(1)[0][1] <= 0.25 * len(records)


def test_user_events_alone_cover_their_own_span():
    now = datetime(2026, 11, 25, 10, 7, 31, tzinfo=UTC)
    records = generate_user_events(GeneratorConfig(seed=6, count=0), 2_000, now=now)
    clocks = [r.clock for r in records]
    assert clocks[0] >= datetime(2026, 11, 25, 10, 6, 50, tzinfo=UTC)  # 10 s before 10:07
    assert clocks[-1] < datetime(2026, 11, 25, 10, 7, tzinfo=UTC)
    assert Counter(r.truth["user_id"] for r in records if r.truth).most_common(1)[0][1] > 60
